"""core.sweep (alpha grid, best on validation NLL) and core.reproduce (Table 2 beside the paper)."""

from __future__ import annotations

import csv
import json
import logging
import shutil

import pytest
from conftest import tiny_config

from core.commands import reproduce, sweep
from core.library.training import train


def tiny(data) -> list[str]:
    """core.train's flags for a one-epoch tiny run on the first 400 sentences of `data`'s PTB."""
    return [
        "--corpus",
        "ptb",
        "--config",
        "tiny",
        "--epochs",
        "1",
        "--max-train",
        "400",
        "--seed",
        "3",
        "--data-dir",
        str(data),
        "--device",
        "cpu",
        "--no-progress",
    ]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, any_corpora):
    root = tmp_path_factory.mktemp("table2")
    assert sweep.main(["--alphas", "2:4:2", "--out", str(root / "sweep"), *tiny(any_corpora)]) == 0
    for name in ("lstm-lm", "vae-0.5"):
        train(tiny_config(name, epochs=1, max_train=400, seed=3), root / name, str(any_corpora), "cpu", progress=False)
    return root


def test_sweep_trains_each_alpha_and_points_at_the_best_on_validation_nll(runs):
    out = runs / "sweep"
    rows = list(csv.DictReader(open(out / "sweep.csv")))
    assert [float(r["alpha"]) for r in rows] == [2.0, 4.0]
    for r in rows:  # each row is that run's own metrics
        m = json.loads((out / f"alpha-{float(r['alpha']):g}" / "metrics.json").read_text())
        assert float(r["val_nll"]) == pytest.approx(m["valid"]["nll"]) and int(r["val_au"]) == m["valid"]["au"]
        assert json.loads((out / f"alpha-{float(r['alpha']):g}" / "config.json").read_text())["run"]["objective"][
            "settings"
        ]["alpha"] == float(r["alpha"])
    best = min(rows, key=lambda r: float(r["val_nll"]))
    assert json.loads((out / "best.json").read_text())["alpha"] == float(best["alpha"])
    assert (out / "best").resolve() == (out / f"alpha-{float(best['alpha']):g}").resolve()
    assert "**best**" in (out / "sweep.md").read_text()


def test_sweep_keeps_finished_runs_when_run_again(runs, caplog, any_corpora):
    out = runs / "sweep"
    stamp = (out / "alpha-2" / "model.safetensors").stat().st_mtime_ns
    with caplog.at_level(logging.INFO):
        assert sweep.main(["--alphas", "2,4", "--out", str(out), *tiny(any_corpora)]) == 0
    assert (out / "alpha-2" / "model.safetensors").stat().st_mtime_ns == stamp
    assert "finished earlier" in caplog.text


def test_sweep_rejects_a_bad_grid(tmp_path, capsys, any_corpora):
    assert sweep.main(["--alphas", "5:2:0.5", "--out", str(tmp_path / "s"), *tiny(any_corpora)]) == 2
    assert "START:STOP:STEP" in capsys.readouterr().err


def test_reproduce_writes_table2_beside_the_papers_numbers(runs, capsys, caplog, any_corpora):
    argv = [
        "--corpus",
        "ptb",
        "--checkpoints",
        str(runs),
        "--iw-samples",
        "5",
        "--fppl-samples",
        "300",
        "--max-sentences",
        "200",
        "--data-dir",
        str(any_corpora),
        "--device",
        "cpu",
    ]
    assert reproduce.main(argv) == 0
    printed = capsys.readouterr().out
    table = json.loads((runs / "table2" / "table2.json").read_text())["results"]
    assert list(table) == ["lstm-lm", "vae-0.5", "vae-mine"]  # the paper's row order
    best = json.loads((runs / "sweep" / "best.json").read_text())["run"]
    assert table["vae-mine"]["checkpoint"] == best  # of the sweep's two, the best on validation
    md = (runs / "table2" / "table2.md").read_text()
    assert md in printed or md.strip() in printed
    assert "100.91 (4.86)" in md and "102.85 (-)" in md  # the paper's VAE-MINE and LSTM-LM cells
    assert "Not found" in md and "LaggingVAE" in md
    m = table["vae-mine"]
    row = next(r for r in csv.DictReader(open(runs / "table2" / "table2.csv")) if r["system"] == "vae-mine")
    assert float(row["nll"]) == pytest.approx(m["nll"]) and float(row["paper_nll"]) == 100.91
    assert f"{m['nll'] - 100.91:+.2f}" in md and f"{m['mi'] - 3.01:+.2f}" in md
    assert m["iw_nll"] < m["nll"] and m["fppl"] > 1 and m["rppl"] > 1 and m["sentences"] == 200
    assert "kl" not in table["lstm-lm"] and table["lstm-lm"]["fppl"] > 1
    with caplog.at_level(logging.INFO):  # a second run reuses the cached evaluations
        assert reproduce.main(argv) == 0
    assert caplog.text.count("cached evaluation") == 3


def test_reproduce_names_a_run_that_has_not_finished(runs, tmp_path, capsys, any_corpora):
    """A bundle without metrics.json (training, or stopped early) is used, and the table says so."""
    for name in ("lstm-lm", "vae-0.5"):
        shutil.copytree(runs / name, tmp_path / name)
    (tmp_path / "vae-0.5" / "metrics.json").unlink()
    argv = [
        "--corpus",
        "ptb",
        "--checkpoints",
        str(tmp_path),
        "--iw-samples",
        "0",
        "--no-fppl",
        "--max-sentences",
        "50",
        "--data-dir",
        str(any_corpora),
        "--device",
        "cpu",
    ]
    assert reproduce.main(argv) == 0
    md = (tmp_path / "table2" / "table2.md").read_text()
    line = next(ln for ln in md.splitlines() if ln.startswith("Unfinished (no metrics.json"))
    assert line.endswith(": VAE-0.5.")  # the finished LSTM-LM is not named
    assert "| LSTM-LM |" in md and "| VAE-0.5 |" in md


def test_reproduce_says_clearly_when_there_is_nothing_to_evaluate(tmp_path, capsys, any_corpora):
    assert reproduce.main(["--checkpoints", str(tmp_path), "--data-dir", str(any_corpora)]) == 2
    assert "no ptb checkpoints" in capsys.readouterr().err
    assert reproduce.main(["--checkpoints", str(tmp_path / "missing")]) == 2
    assert "not found" in capsys.readouterr().err


def test_sweep_with_jobs_trains_the_alphas_side_by_side_in_their_own_processes(runs, tmp_path, any_corpora):
    out = tmp_path / "side"
    assert sweep.main(["--alphas", "2:4:2", "--out", str(out), "--jobs", "2", *tiny(any_corpora)]) == 0
    together = list(csv.DictReader(open(out / "sweep.csv")))
    alone = list(csv.DictReader(open(runs / "sweep" / "sweep.csv")))
    for a, b in zip(together, alone):  # the same runs as one after another (thread counts differ: not to the bit)
        assert a["alpha"] == b["alpha"] and float(a["val_nll"]) == pytest.approx(float(b["val_nll"]), rel=1e-4)
    for alpha in ("2", "4"):
        assert (
            "python -m core.train --model vae-mine --alpha " + alpha
            in (out / f"alpha-{alpha}" / "train.out").read_text()
        )


def test_reproduce_with_jobs_evaluates_in_processes_and_gives_the_same_table(runs, tmp_path, caplog, any_corpora):
    argv = [
        "--corpus",
        "ptb",
        "--checkpoints",
        str(runs),
        "--iw-samples",
        "5",
        "--fppl-samples",
        "300",
        "--max-sentences",
        "200",
        "--data-dir",
        str(any_corpora),
        "--device",
        "cpu",
    ]
    assert reproduce.main([*argv, "--out", str(tmp_path / "one")]) == 0
    with caplog.at_level(logging.INFO):
        assert reproduce.main([*argv, "--out", str(tmp_path / "spread"), "--jobs", "2"]) == 0
    assert caplog.text.count("figures from evaluation.json") == 3
    one = json.loads((tmp_path / "one" / "table2.json").read_text())["results"]
    spread = json.loads((tmp_path / "spread" / "table2.json").read_text())["results"]
    for name in one:  # the same figures, computed in other processes (thread counts differ: a sample may differ)
        for k, rel in (("nll", 1e-4), ("iw_nll", 1e-4), ("kl", 1e-4), ("mi", 1e-4), ("fppl", 1e-2), ("rppl", 1e-2)):
            if k in one[name]:
                assert spread[name][k] == pytest.approx(one[name][k], rel=rel), (name, k)
    assert (tmp_path / "spread" / "evals" / "vae-mine" / "samples.txt.gz").is_file()
