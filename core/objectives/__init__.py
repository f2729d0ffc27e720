"""Objective registry: `--model NAME` picks one of these."""
from __future__ import annotations

from ..config import ObjectiveConfig
from ..models import TextVAE
from .annealed import VAEBow, VAEWordDropout
from .base import Objective, StepContext
from .cyclical import CyclicalVAE
from .infovae import InfoVAE
from .lagging import LaggingVAE
from .lm import LSTMLM
from .mine import VAEMine
from .vae import VAE

# The seven systems of the paper's Table 2, in its row order, plus the plain VAE.
OBJECTIVES: dict[str, type[Objective]] = {
    cls.name: cls for cls in (LSTMLM, VAEWordDropout, VAEBow, InfoVAE, CyclicalVAE, LaggingVAE, VAEMine, VAE)
}
TABLE2 = ["lstm-lm", "vae-0.5", "vae-bow", "infovae", "cyclical", "lagging", "vae-mine"]


def objective_class(name: str) -> type[Objective]:
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(OBJECTIVES)}") from None


def build_objective(model: TextVAE, cfg: ObjectiveConfig, vocab_size: int) -> Objective:
    return objective_class(cfg.name)(model, cfg, vocab_size)


__all__ = ["OBJECTIVES", "TABLE2", "Objective", "StepContext", "build_objective", "objective_class"]
