"""The one catalogue of evaluation figures: what each is called, how it prints, which tables show it,
and the paper's value where Table 2 has one.

`core.evaluate` (its table and JSON), `core.reproduce` (Table 2), `core.sweep`, `core.campaign`,
`core.library.training`'s epoch line, `core.export`'s model card and the explorer's collapse table all read it,
so a figure is added here once. A figure that is a function of a split's posteriors (means,
log-variances, sentence lengths) carries `compute`, and `core.library.evaluation` computes it on every split it
evaluates: MI, its batch-wise estimate and AU are computed this way, as a new figure would be.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .metrics import AU_THRESHOLD, MI_BATCH, active_units, aggregate_mi, batchwise_mi
from .tables import fmt

# The tables a figure may appear in (Metric.tables).
EVALUATE = "evaluate"  # core.evaluate's printed table (its JSON holds every figure computed)
TABLE2 = "table2"  # core.reproduce's Table 2 layout, its CSV and its differences from the paper
SWEEP = "sweep"  # core.sweep's alpha table (validation and test)
CAMPAIGN = "campaign"  # core.campaign's table of runs (validation, best epoch)
LOG = "log"  # core.library.training's one-line epoch summary (validation)
COLLAPSE = "collapse"  # the explorer's "Posterior collapse" table (test split)
CARD = "card"  # core.export's model card
TABLES = (EVALUATE, TABLE2, SWEEP, CAMPAIGN, LOG, COLLAPSE, CARD)

# The systems of Table 2 (Qian & Cheung 2019, PTB) as the paper prints them, in the order of Metric.paper's
# tuples (the built-in objectives' table2_row gives the same order: tests/test_catalogue.py).
PAPER_SYSTEMS = ("lstm-lm", "vae-0.5", "vae-bow", "infovae", "cyclical", "lagging", "vae-mine")
PAPER_CORPUS = "ptb"


@dataclass(frozen=True)
class Posteriors:
    """What a computed figure reads: a split's posterior means and log-variances [N, z], its sentences'
    lengths [N], and the evaluation's seed (for the figures that draw samples)."""

    mu: torch.Tensor
    logvar: torch.Tensor
    lengths: torch.Tensor
    seed: int


@dataclass(frozen=True)
class Metric:
    """One figure. `digits`: decimals printed (0: an integer count). `paper`: Table 2's value for each
    of PAPER_SYSTEMS (None where the paper prints "-"); empty where Table 2 has no such column."""

    key: str
    label: str  # the long name, in core.evaluate's table
    short: str  # a column header
    unit: str
    digits: int = 2
    tables: frozenset[str] = frozenset({EVALUATE})
    paper: tuple[float | None, ...] = ()
    compute: Callable[[Posteriors], float] | None = None

    def __post_init__(self):
        unknown = set(self.tables) - set(TABLES)
        if unknown:
            raise ValueError(f"metric {self.key}: unknown tables {sorted(unknown)} (known: {', '.join(TABLES)})")
        if self.paper and len(self.paper) != len(PAPER_SYSTEMS):
            raise ValueError(f"metric {self.key}: paper needs one value for each of {', '.join(PAPER_SYSTEMS)}")

    def format(self, value) -> str:
        """The value as core.library.tables.fmt prints it at this figure's decimals; "-" where there is none."""
        return "-" if value is None else fmt(int(value) if self.digits == 0 else value, self.digits)


def _tables(*names: str) -> frozenset[str]:
    return frozenset({EVALUATE, *names})


_METRICS: list[Metric] = [
    Metric(
        "nll",
        "NLL (neg. ELBO, per sentence)",
        "NLL",
        "nats per sentence",
        tables=_tables(TABLE2, SWEEP, CAMPAIGN, COLLAPSE, CARD),
        paper=(102.85, 104.06, 105.58, 108.37, 104.36, 100.93, 100.91),
    ),
    Metric("iw_nll", "NLL (importance-weighted)", "IW-NLL", "nats per sentence"),
    Metric("reconstruction", "reconstruction", "reconstruction", "nats per sentence", tables=_tables(CARD)),
    Metric(
        "kl",
        "KL",
        "KL",
        "nats per sentence",
        tables=_tables(TABLE2, SWEEP, CAMPAIGN, LOG, COLLAPSE, CARD),
        paper=(None, 0.03, 4.35, 0.02, 4.93, 4.84, 4.86),
    ),
    Metric(
        "ppl",
        "PPL (from ELBO-NLL)",
        "PPL",
        "perplexity per token",
        tables=_tables(TABLE2, COLLAPSE, CARD),
        paper=(95.63, 100.90, 107.94, 122.15, 102.25, 87.82, 87.75),
    ),
    Metric("iw_ppl", "PPL (from IW-NLL)", "IW-PPL", "perplexity per token"),
    Metric(
        "mi",
        "MI (whole-split aggregate)",
        "MI",
        "nats",
        tables=_tables(TABLE2, SWEEP, CAMPAIGN, LOG, COLLAPSE, CARD),
        paper=(None, 0.07, 1.65, 0.06, 2.84, 2.84, 3.01),
        compute=lambda p: aggregate_mi(p.mu, p.logvar, generator=torch.Generator().manual_seed(p.seed)),
    ),
    Metric(
        "mi_batch",
        f"MI (batch-wise, He et al. 2019, {MI_BATCH} per batch)",
        "MI (batch)",
        "nats",
        tables=_tables(CARD),
        compute=lambda p: batchwise_mi(p.mu, p.logvar, p.lengths, torch.Generator().manual_seed(p.seed)),
    ),
    Metric(
        "au",
        f"AU (active units, var >= {AU_THRESHOLD:g})",
        "AU",
        "dimensions",
        digits=0,
        tables=_tables(TABLE2, SWEEP, CAMPAIGN, LOG, COLLAPSE, CARD),
        paper=(None, 2, 4, 0, 10, 13, 13),
        compute=lambda p: active_units(p.mu)[0],
    ),
    Metric(
        "fppl",
        "FPPL (KenLM 5-gram on train, scores samples)",
        "FPPL",
        "perplexity per token",
        tables=_tables(TABLE2),
        paper=(461.44, 339.32, 385.77, 483.71, 419.61, 12.64, 13.34),
    ),
    Metric(
        "rppl",
        "RPPL (KenLM 5-gram on samples, scores split)",
        "RPPL",
        "perplexity per token",
        tables=_tables(TABLE2),
        paper=(472.86, 444.81, 463.34, 515.09, 464.78, 842.02, 400.21),
    ),
    Metric("fppl_samples", "sentences sampled for FPPL / RPPL", "samples", "sentences", digits=0),
    Metric("sentences", "sentences", "sentences", "sentences", digits=0),
    Metric("tokens", "tokens (words + </s>)", "tokens", "tokens", digits=0),
]


def metrics(table: str | None = None) -> list[Metric]:
    """Every figure in catalogue order, or those `table` shows."""
    if table is not None and table not in TABLES:
        raise ValueError(f"unknown table {table!r} (known: {', '.join(TABLES)})")
    return [m for m in _METRICS if table is None or table in m.tables]


def metric(key: str) -> Metric:
    for m in _METRICS:
        if m.key == key:
            return m
    raise KeyError(f"no metric {key!r} in the catalogue")


def computed() -> list[Metric]:
    """The figures core.library.evaluation computes from a split's posteriors through their `compute`."""
    return [m for m in _METRICS if m.compute is not None]


def register(new: Metric) -> None:
    """Add a figure (at the end of the catalogue); its key must be new."""
    if any(m.key == new.key for m in _METRICS):
        raise ValueError(f"metric {new.key!r} is already in the catalogue")
    _METRICS.append(new)


def unregister(key: str) -> None:
    _METRICS.remove(metric(key))


def paper_values(corpus: str) -> dict[str, dict[str, float | None]]:
    """Table 2's figures for `corpus`, keyed by system then metric; {} where the paper has none."""
    if corpus != PAPER_CORPUS:
        return {}
    with_paper = [m for m in _METRICS if m.paper]
    return {system: {m.key: m.paper[i] for m in with_paper} for i, system in enumerate(PAPER_SYSTEMS)}
