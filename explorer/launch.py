"""Start `python app.py` as a separate process on a free port and wait until it is ready: one
helper for the end-to-end tests, the benchmark and the screenshot script."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
READY = "explorer ready"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(
    log: Path,
    cache_dir: Path,
    data_dir: str | Path | None = None,
    checkpoints: str = "checkpoints",
    timeout: float = 120,
    script: str = "app.py",
    env: dict[str, str] | None = None,
) -> Iterator[tuple[str, float, int]]:
    """(URL, seconds until it said it was ready, its process id); its output goes to `log`;
    stopped on exit. `script` replaces app.py by a script that runs it (the boundary test's audit)."""
    cmd = [
        sys.executable,
        script,
        "--port",
        str(free_port()),
        "--checkpoints",
        str(checkpoints),
        "--cache-dir",
        str(cache_dir),
    ] + (["--data-dir", str(data_dir)] if data_dir else [])
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
    try:
        while READY not in log.read_text():
            if proc.poll() is not None:
                raise RuntimeError(f"the app exited before it was ready:\n{log.read_text()}")
            if time.perf_counter() - start > timeout:
                raise RuntimeError(f"the app was not ready in {timeout:.0f} s:\n{log.read_text()}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{cmd[3]}/", time.perf_counter() - start, proc.pid
    finally:
        proc.terminate()
        proc.wait(30)
