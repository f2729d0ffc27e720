"""The one shape of every `python -m core.X` command: parse, log to the terminal, and turn the
errors a user can act on into one line on stderr and exit status 2 (3: training stopped on request,
its state saved for --resume)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Iterable

from ..library.device import keep_freed_memory
from ..library.errors import EXIT_STOPPED, Stopped, VaeMineError, is_disk_full

log = logging.getLogger(__name__)


def run_cli(
    parser: argparse.ArgumentParser, body: Callable[[argparse.Namespace], int | None], argv: list[str] | None = None
) -> int:
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    keep_freed_memory()
    try:
        return body(args) or 0
    except Stopped as e:
        print(f"stopped: {e}", file=sys.stderr)
        return EXIT_STOPPED
    except VaeMineError as e:  # the project's own errors; anything else is a bug and keeps its traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if not is_disk_full(e):
            raise
        where = f" writing {e.filename}" if e.filename else ""
        print(f"error: no space left on the disk{where}: free space there and run the command again", file=sys.stderr)
        return 2


def given_flags(
    add_arguments: Callable[[argparse.ArgumentParser], None], args: argparse.Namespace, skip: Iterable[str] = ()
) -> list[str]:
    """The flags `add_arguments` defines, as `args` holds them where they differ from their defaults
    (dests in `skip` left out): the command line of a process started on the caller's behalf."""
    p = argparse.ArgumentParser(add_help=False)
    add_arguments(p)
    argv: list[str] = []
    for action in p._actions:
        if action.dest in skip or not hasattr(args, action.dest):
            continue
        value, flag = getattr(args, action.dest), action.option_strings[0]
        if action.default == value:
            continue
        if isinstance(action, argparse.BooleanOptionalAction):
            argv.append(flag if value else "--no-" + flag[2:])
        elif isinstance(action, argparse._StoreTrueAction):
            argv.append(flag)
        elif isinstance(action, argparse._AppendAction):
            argv += [x for v in value for x in (flag, str(v))]
        else:
            argv += [flag, str(value)]
    return argv
