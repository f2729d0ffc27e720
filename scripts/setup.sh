#!/usr/bin/env bash
# Create .venv (once), install the pinned requirements (runtime, then tests and lint) and the project
# itself (editable, no dependencies: `import core` from any folder, the vae-mine-* commands). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt -r requirements-test.txt
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e .
.venv/bin/python -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
