"""Objective registry: `--model NAME` picks one of these."""
from __future__ import annotations

from ..config import ObjectiveConfig
from ..models import TextVAE
from .base import Objective, StepContext
from .mine import VAEMine
from .vae import VAE

OBJECTIVES: dict[str, type[Objective]] = {cls.name: cls for cls in (VAE, VAEMine)}


def objective_class(name: str) -> type[Objective]:
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(OBJECTIVES)}") from None


def build_objective(model: TextVAE, cfg: ObjectiveConfig, vocab_size: int) -> Objective:
    return objective_class(cfg.name)(model, cfg, vocab_size)


__all__ = ["OBJECTIVES", "Objective", "StepContext", "build_objective", "objective_class"]
