"""Exceptions with messages meant for people: each names the file or input at fault.

The explorer catches these and shows their text; anything else is a bug.
"""


class VaeMineError(Exception):
    """Base class for errors the user can act on."""


class CorpusError(VaeMineError, FileNotFoundError):
    """A corpus file is missing, empty or unreadable."""


class CheckpointError(VaeMineError, ValueError):
    """A checkpoint bundle is missing a file, or a file is corrupt or does not match the others."""


class InputError(VaeMineError, ValueError):
    """Text or arguments given to the public API cannot be used."""


class Stopped(VaeMineError):
    """Training was asked to stop (SIGTERM, or a first Ctrl-C) and saved its state for --resume."""


EXIT_STOPPED = 3  # the exit status of a command whose training stopped on request, resumable
