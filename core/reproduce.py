"""`python -m core.reproduce`: the command in core/commands/reproduce.py."""

import sys

from .commands.reproduce import main

if __name__ == "__main__":
    sys.exit(main())
