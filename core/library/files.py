"""Writing files so that a kill or a full disk never leaves a torn one: write a temporary file
beside the target, flush it to disk, rename it over the target. A kill mid-write leaves only the
temporary file, which the next write of the same target removes once it is STALE_S old (a live
writer's is younger: a write takes seconds, a download keeps touching its file)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from .errors import DiskFull, is_disk_full

STALE_S = 600  # a temporary file untouched this long belongs to a writer that was killed


def drop_stale(folder: Path, pattern: str, older_than: float = STALE_S) -> None:
    """Remove the files in `folder` matching `pattern` untouched for at least `older_than` seconds (0: all)."""
    now = time.time()
    for tmp in folder.glob(pattern):
        try:
            if now - tmp.stat().st_mtime >= older_than:
                tmp.unlink()
        except OSError:  # gone already, or not ours to remove
            pass


def atomic_write(path: Path, write) -> None:
    """Call write(tmp_path), flush it to disk, then rename tmp_path onto path. A full disk becomes a
    DiskFull naming the folder and what to free; the old file is kept either way."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    drop_stale(path.parent, f".{path.name}.*")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())  # whole on disk before it replaces the old one
        os.chmod(tmp, 0o644)  # as a plain write would leave it (mkstemp makes 0600)
        os.replace(tmp, path)
    except BaseException as e:
        written = os.path.getsize(tmp) if os.path.exists(tmp) else 0
        Path(tmp).unlink(missing_ok=True)
        if is_disk_full(e):
            raise disk_full(path, max(written, path.stat().st_size if path.exists() else 0)) from None
        raise


def disk_full(path: Path, needed: int) -> DiskFull:
    """The one-line message for a write of `path` that found its disk full: the folder, what to free."""
    free = shutil.disk_usage(path.parent).free if path.parent.exists() else 0
    return DiskFull(
        f"no space left on the disk holding {path.parent} (writing {path.name}; {free / 2**20:.1f} MB free): "
        f"free at least {max(needed, 2**20) / 2**20:.0f} MB there (df -h {path.parent}); {path.name} as last "
        f"written is kept"
    )
