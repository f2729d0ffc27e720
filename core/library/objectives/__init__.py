"""The objectives: importing this package defines (and so registers) every built-in one.

`--model NAME` picks one; `registry()` lists them, `table2()` gives the paper's row order.
"""

from __future__ import annotations

from ..config import RunConfig
from ..models import TextVAE
from . import annealed, cyclical, infovae, lagging, lm, mine, vae  # noqa: F401  (defining registers)
from .base import Objective, StepContext, display_name, objective_class, parse_objective, registry, table2


def build(cfg: RunConfig, vocab_size: int) -> tuple[TextVAE, Objective]:
    """A fresh model and its objective for this config (weights not initialised)."""
    cls = objective_class(cfg.objective.name)
    model = TextVAE(vocab_size, cfg.model, latent=cls.latent)
    return model, cls(model, cfg.objective.settings, vocab_size)


def departures(cfg: RunConfig) -> dict:
    """Everything a model trained with this config departs in from its papers: its objective's settings
    beyond its paper's, and architecture beyond He et al.'s layers. What its label and card name."""
    return {**objective_class(cfg.objective.name).departures(cfg.objective.settings), **cfg.model.departures()}


__all__ = [
    "Objective",
    "departures",
    "StepContext",
    "build",
    "display_name",
    "objective_class",
    "parse_objective",
    "registry",
    "table2",
]
