"""Stopping long work at a safe point: SIGTERM and a first Ctrl-C ask, a second Ctrl-C interrupts.

Training (its loop saves its state and raises Stopped) and the runners of runs side by side use it.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


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
