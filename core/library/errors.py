"""Exceptions with messages meant for people: each names the file or input at fault.

The explorer catches these and shows their text; anything else is a bug.
"""

import errno


class VaeMineError(Exception):
    """Base class for errors the user can act on."""


class CorpusError(VaeMineError, FileNotFoundError):
    """A corpus file is missing, empty or unreadable."""


class CheckpointError(VaeMineError, ValueError):
    """A checkpoint bundle is missing a file, or a file is corrupt or does not match the others."""


class InputError(VaeMineError, ValueError):
    """Text or arguments given to the public API cannot be used."""


class SettingError(VaeMineError, ValueError):
    """A command's flag or a model's setting that cannot be used (out of range, unknown, malformed)."""


class DiskFull(VaeMineError):
    """A write found no space left (or the quota spent); the message names the folder and how much to free."""


def is_disk_full(e: BaseException) -> bool:
    """An OSError for a full disk or spent quota, or safetensors' or numpy's wrapping of one."""
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(e)
    return "No space left on device" in text or "StorageFull" in text or "os error 28" in text


class Stopped(VaeMineError):
    """Training was asked to stop (SIGTERM, or a first Ctrl-C) and saved its state for --resume."""


EXIT_STOPPED = 3  # the exit status of a command whose training stopped on request, resumable
