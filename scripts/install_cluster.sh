#!/usr/bin/env bash
# Install the optional cluster dependency (Ray, requirements-cluster.txt) into .venv, keeping its torch.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || { echo "run scripts/setup.sh first (no .venv)" >&2; exit 1; }
"$PY" -m pip install -q --disable-pip-version-check -r requirements-cluster.txt
"$PY" -c "import ray, torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
