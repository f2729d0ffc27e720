"""Every ```python block in README.md and docs/*.md runs as written, from the repository root."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from explorer.launch import running_app

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)
EXPLORER = "http://127.0.0.1:7860/"  # a block that calls the explorer is run against a real one (on a free port)
BLOCKS = [(doc, i, code) for doc in DOCS for i, code in enumerate(BLOCK.findall(doc.read_text()))]


def test_the_docs_hold_python_examples():
    assert {doc.name for doc, _, _ in BLOCKS} >= {"api.md", "explorer.md"}


def test_the_installed_project_imports_and_loads_from_any_folder(tmp_path):
    """scripts/setup.sh installs the project (pip install -e .): `import core` and the commands work
    outside the repository root too, with no PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = f"import core, explorer; print(core.load({str(ROOT / 'checkpoints' / 'flickr8k-lagging')!r}).display_name)"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "LaggingVAE", done.stderr[-2000:]
    train = Path(sys.executable).parent / "vae-mine-train"
    helped = subprocess.run([str(train), "--help"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert helped.returncode == 0 and "--recipe" in helped.stdout, helped.stderr[-2000:]


PARAMS = [
    pytest.param(doc, i, code, id=f"{doc.name}#{i}", marks=[pytest.mark.e2e] if EXPLORER in code else [])
    for doc, i, code in BLOCKS
]


@pytest.mark.parametrize("doc, i, code", PARAMS)
def test_a_python_block_runs_as_written(doc, i, code, corpora, tmp_path):
    env = {**os.environ, "VAE_MINE_DATA": str(corpora), "PYTHONPATH": str(ROOT)}
    if EXPLORER in code:
        with running_app(tmp_path / "app.log", tmp_path / "cache", corpora) as (url, _, _):
            code = code.replace(EXPLORER, url)
            done = subprocess.run(
                [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
            )
    else:
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
        )
    assert done.returncode == 0, f"{doc.name} block {i}:\n{done.stderr[-3000:]}"
