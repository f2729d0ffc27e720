"""The one shape of every `python -m core.X` command: parse, log to the terminal, and turn the
errors a user can act on into one line on stderr and exit status 2 (3: training stopped on request,
its state saved for --resume)."""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

from .device import keep_freed_memory
from .errors import EXIT_STOPPED, Stopped, VaeMineError

log = logging.getLogger(__name__)


def run_cli(parser: argparse.ArgumentParser, body: Callable[[argparse.Namespace], int | None],
            argv: list[str] | None = None) -> int:
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    keep_freed_memory()
    try:
        return body(args) or 0
    except Stopped as e:
        print(f"stopped: {e}", file=sys.stderr)
        return EXIT_STOPPED
    except (VaeMineError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


@contextmanager
def stop_on_signals(what: str) -> Iterator[threading.Event]:
    """SIGTERM (a scheduler's or core.campaign's deadline) and a first Ctrl-C set the event, for the
    work to stop at its next safe point (`what` says what then happens); a second Ctrl-C interrupts
    at once. Only the main thread takes signals: elsewhere (the explorer's lab) nothing is installed."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def ask(signum, frame):
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()
        log.warning("%s: %s", signal.Signals(signum).name, what)

    old = {sig: signal.signal(sig, ask) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
