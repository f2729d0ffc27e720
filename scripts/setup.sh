#!/usr/bin/env bash
# Create .venv (once) and install the pinned requirements into it. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
.venv/bin/python -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
