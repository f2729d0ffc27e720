"""`python -m core.evaluate`: the command in core/commands/evaluate.py."""

import sys

from .commands.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
