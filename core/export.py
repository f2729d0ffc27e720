"""`python -m core.export`: the command in core/commands/export.py."""

import sys

from .commands.export import main

if __name__ == "__main__":
    sys.exit(main())
