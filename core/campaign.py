"""`python -m core.campaign`: the command in core/commands/campaign.py."""

import sys

from .commands.campaign import main

if __name__ == "__main__":
    sys.exit(main())
