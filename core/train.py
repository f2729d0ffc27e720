"""`python -m core.train`: the command in core/commands/train.py."""

import sys

from .commands.train import main

if __name__ == "__main__":
    sys.exit(main())
