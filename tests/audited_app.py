"""python tests/audited_app.py ARGS...: app.py, with every file the process opens or lists written to
$AUDIT_LOG, one "event<TAB>absolute path" a line (Python's audit hooks), for tests/test_boundary.py."""

from __future__ import annotations

import os
import runpy
import sys

EVENTS = {"open", "os.listdir", "os.scandir"}
_log = open(os.environ["AUDIT_LOG"], "a", buffering=1)


def _hook(event: str, args: tuple) -> None:
    if event in EVENTS and args and isinstance(args[0], (str, bytes, os.PathLike)):
        _log.write(f"{event}\t{os.path.abspath(os.fsdecode(args[0]))}\n")


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[0] = ROOT  # as `python app.py` would have it
sys.addaudithook(_hook)
sys.argv = ["app.py", *sys.argv[1:]]
runpy.run_path(os.path.join(ROOT, "app.py"), run_name="__main__")
