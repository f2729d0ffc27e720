"""`python -m core.data`: the command in core/commands/data.py."""

import sys

from .commands.data import main

if __name__ == "__main__":
    sys.exit(main())
