"""The one shape of every `python -m core.X` command: parse, log to the terminal, and turn the
errors a user can act on into one line on stderr and exit status 2 (3: training stopped on request,
its state saved for --resume)."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable

from .device import keep_freed_memory
from .errors import EXIT_STOPPED, Stopped, VaeMineError


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
