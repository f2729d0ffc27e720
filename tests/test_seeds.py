"""bench.seeds on real tiny runs measured by the real bench.quality: the mean ± sd it prints are the
runs' own figures', the run that ships is the median on validation NLL, runs that differ in more
than their seed are refused, and a card's Seeds section is replaced, not repeated."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_config

from core.library.training import train

ROOT = Path(__file__).resolve().parents[1]


def command(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, env=env, cwd=ROOT)


@pytest.fixture(scope="module")
def measured(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("seeds")
    for seed in (1, 2, 3):
        cfg = tiny_config("vae", epochs=1, max_train=300, seed=seed)
        train(cfg, root / f"vae-s{seed}", str(data_dir), "cpu", False)
    runs = [str(root / f"vae-s{seed}") for seed in (1, 2, 3)]
    done = command("bench.quality", *runs, "--split", "valid", "--limit", "60", "--out", str(root / "q.json"))
    assert done.returncode == 0, done.stderr[-2000:]
    return root, json.loads((root / "q.json").read_text())["results"]


def test_the_table_is_each_figures_mean_and_sd_and_the_median_validation_run_ships(measured):
    root, results = measured
    card = root / "bundle"
    card.mkdir()
    (card / "README.md").write_text("# A card\n\nWhat it is.\n")
    (card / "metrics.json").write_text('{"epochs": 1}')
    for _ in range(2):  # the second run replaces the section the first wrote
        done = command("bench.seeds", str(root / "q.json"), "--out", str(root / "s.json"), "--cards", f"{card}=vae")
        assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((root / "s.json").read_text())["vae"]
    for key in ("nll", "mi", "f1_greedy", "prior_distinct"):
        values = [r[key] for r in results]
        assert summary[key]["mean"] == pytest.approx(np.mean(values))
        assert summary[key]["sd"] == pytest.approx(np.std(values, ddof=1))

    def read(run: str, name: str) -> dict:
        return json.loads((Path(run) / name).read_text())

    valid = {r["checkpoint"]: read(r["checkpoint"], "metrics.json")["valid"]["nll"] for r in results}
    assert summary["ships"] == sorted(valid, key=valid.get)[1]
    nll = summary["nll"]
    assert f"{nll['mean']:.2f} ± {nll['sd']:.2f}" in done.stdout
    written = read(str(card), "metrics.json")["seeds"]  # what the explorer's collapse table shows
    assert written["runs"] == 3 and written["nll_mean"] == pytest.approx(nll["mean"])
    assert written["au_sd"] == pytest.approx(np.std([r["au"] for r in results], ddof=1))
    from explorer.tabs.collapse import spread

    shown = spread(written)
    assert shown.startswith(f"NLL {nll['mean']:.2f} ± {nll['sd']:.2f} · KL") and shown.endswith("(3 seeds)")
    text = (card / "README.md").read_text()
    assert text.startswith("# A card\n\nWhat it is.\n") and text.count("## Seeds") == 1
    assert f"**vae seed {read(summary['ships'], 'config.json')['run']['train']['seed']}**" in text


def test_runs_that_differ_in_more_than_their_seed_are_refused(measured, data_dir):
    root, _ = measured
    other = root / "vae-s9"
    train(tiny_config("vae", epochs=1, max_train=200, seed=9), other, str(data_dir), "cpu", False)
    done = command("bench.quality", str(other), "--split", "valid", "--limit", "60", "--out", str(root / "q9.json"))
    assert done.returncode == 0, done.stderr[-2000:]
    refused = command("bench.seeds", str(root / "q.json"), str(root / "q9.json"))
    assert refused.returncode != 0 and "vae-s9" in refused.stderr and "more than its seed" in refused.stderr
