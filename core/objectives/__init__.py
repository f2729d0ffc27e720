"""The objectives: importing this package defines (and so registers) every built-in one.

`--model NAME` picks one; `registry()` lists them, `table2()` gives the paper's row order.
"""
from __future__ import annotations

from ..config import ObjectiveConfig
from ..models import TextVAE
from . import annealed, cyclical, infovae, lagging, lm, mine, vae  # noqa: F401  (defining registers)
from .base import Objective, StepContext, display_name, objective_class, parse_objective, registry, table2


def build_objective(model: TextVAE, oc: ObjectiveConfig, vocab_size: int) -> Objective:
    return objective_class(oc.name)(model, oc.settings, vocab_size)


__all__ = ["Objective", "StepContext", "build_objective", "display_name", "objective_class", "parse_objective",
           "registry", "table2"]
