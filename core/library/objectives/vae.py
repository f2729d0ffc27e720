"""The plain VAE: maximise the ELBO (with a constant KL weight, 1 by default)."""

from __future__ import annotations

from dataclasses import dataclass

from .base import Objective


@dataclass(frozen=True)
class Settings:
    kl_weight: float = 1.0  # weight of KL(q(z|x) || p(z)) in the loss


class VAE(Objective):
    name = "vae"
    display_name = "VAE"
    source = "Kingma & Welling 2014; Bowman et al. 2016's LSTM VAE"
    Settings = Settings

    def kl_weight(self) -> float:
        return self.settings.kl_weight
