"""`python -m core.sweep`: the command in core/commands/sweep.py."""

import sys

from .commands.sweep import main

if __name__ == "__main__":
    sys.exit(main())
