"""The metric catalogue: a figure added in one place reaches core.evaluate's JSON and table,
core.reproduce's Table 2 and the explorer's collapse table.

Runs on a clone without the corpora (a synthetic PTB-shaped folder, see conftest.any_corpora)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import tiny_config

from core import load
from core.commands.evaluate import main as evaluate_main
from core.commands.reproduce import main as reproduce_main
from core.library import catalogue
from core.library.objectives import table2
from core.library.training import train
from explorer.context import Context
from explorer.tabs import collapse

SPREAD = catalogue.Metric(
    "mean_abs_mu",
    "mean |posterior mean| (a test figure)",
    "|mu|",
    "nats",
    digits=3,
    tables=frozenset({catalogue.EVALUATE, catalogue.TABLE2, catalogue.COLLAPSE}),
    compute=lambda p: float(p.mu.abs().mean()),
)


@pytest.fixture
def with_spread():
    catalogue.register(SPREAD)
    yield SPREAD
    catalogue.unregister(SPREAD.key)


def test_a_metric_added_to_the_catalogue_reaches_evaluate_reproduce_and_the_explorer(
    with_spread, any_corpora, tmp_path, capsys
):
    folder = tmp_path / "ckpts" / "vae"
    train(tiny_config("vae-0.5", epochs=1, max_train=400), folder, str(any_corpora), "cpu", progress=False)
    stored = json.loads((folder / "metrics.json").read_text())["test"]
    assert SPREAD.key in stored  # core.train's evaluation computed it

    out = tmp_path / "eval.json"
    assert (
        evaluate_main(
            [
                str(folder),
                "--split",
                "test",
                "--iw-samples",
                "0",
                "--no-fppl",
                "--json",
                str(out),
                "--max-sentences",
                "500",
                "--data-dir",
                str(any_corpora),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    figures = json.loads(out.read_text())
    _, mu, _ = load(folder).encode_split("test", limit=500, data_dir=str(any_corpora))
    assert figures[SPREAD.key] == pytest.approx(
        float(np.abs(mu).mean()), rel=1e-4
    )  # computed on this split's posteriors
    assert SPREAD.label in printed

    table2 = tmp_path / "table2"
    assert (
        reproduce_main(
            [
                "--checkpoints",
                str(tmp_path / "ckpts"),
                "--out",
                str(table2),
                "--split",
                "test",
                "--iw-samples",
                "0",
                "--no-fppl",
                "--max-sentences",
                "500",
                "--data-dir",
                str(any_corpora),
            ]
        )
        == 0
    )
    text = (table2 / "table2.md").read_text()
    header = next(line for line in text.splitlines() if line.startswith("| model | NLL (KL)"))
    assert f"| {SPREAD.short} | paper |" in header
    assert SPREAD.format(figures[SPREAD.key]) in text
    assert f"Δ {SPREAD.short}" in text
    assert SPREAD.key in (table2 / "table2.csv").read_text().splitlines()[0].split(",")

    shown = collapse.figures_table(Context(tmp_path / "ckpts", str(any_corpora), tmp_path / "cache"))
    assert SPREAD.short in shown.columns
    assert shown[SPREAD.short].iloc[0] == pytest.approx(round(stored[SPREAD.key], 2))


def test_the_catalogue_refuses_a_second_key_an_unknown_table_and_a_short_paper_row():
    with pytest.raises(ValueError, match="already"):
        catalogue.register(catalogue.Metric("mi", "MI again", "MI", "nats"))
    with pytest.raises(ValueError, match="unknown tables"):
        catalogue.Metric("x", "x", "x", "nats", tables=frozenset({"nowhere"}))
    with pytest.raises(ValueError, match="one value for each"):
        catalogue.Metric("x", "x", "x", "nats", paper=(1.0,))


def test_the_paper_values_are_table_2s():
    """Spot checks against the paper's Table 2 (PTB), as printed."""
    paper = catalogue.paper_values("ptb")
    assert paper["vae-mine"] == dict(nll=100.91, kl=4.86, ppl=87.75, mi=3.01, au=13, fppl=13.34, rppl=400.21)
    assert paper["lstm-lm"]["kl"] is None and paper["lagging"]["rppl"] == 842.02
    assert catalogue.paper_values("flickr8k") == {}
    assert table2() == list(catalogue.PAPER_SYSTEMS)  # the built-in objectives' row order is the paper's
