"""InfoVAE (Zhao et al. 2019): the negative ELBO plus `mmd_weight` x MMD^2 between the batch's
posterior samples z ~ q(z|x) (an estimate of the aggregate q(z)) and as many prior samples.

Kernel: Gaussian RBF k(a, b) = exp(-|a - b|^2 / (2 d)), d = z_dim, so two independent prior draws
(|a - b|^2 ~ 2d) sit at k ~ e^-1, where the kernel is most sensitive. MMD^2 is the unbiased
U-statistic (diagonal terms left out). This is InfoVAE's family with alpha = 0 (the full KL kept)
and alpha + lambda - 1 = mmd_weight (10 by default).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..batching import Batch
from ..models import TextVAE
from .base import Objective


def rbf_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.exp(-torch.cdist(a, b).pow(2) / (2 * a.size(-1)))


def mmd2(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Unbiased estimate of MMD^2 between the distributions of the rows of x and of y (n, m >= 2)."""
    n, m = x.size(0), y.size(0)
    kxx, kyy, kxy = rbf_kernel(x, x), rbf_kernel(y, y), rbf_kernel(x, y)
    off = lambda k, s: (k.sum() - k.diagonal().sum()) / (s * (s - 1))  # noqa: E731
    return off(kxx, n) + off(kyy, m) - 2 * kxy.mean()


@dataclass(frozen=True)
class Settings:
    mmd_weight: float = 10.0  # lambda: weight of MMD(q(z), p(z)) added to the negative ELBO


class InfoVAE(Objective):
    name = "infovae"
    display_name = "InfoVAE"
    source = "Zhao et al. 2019"
    Settings = Settings
    table2_row = 4

    def loss(self, model: TextVAE, batch: Batch):
        _, mu, logvar, z, rec, kl = self.elbo_terms(model, batch)
        elbo_loss = (rec + kl).mean()
        if len(batch) < 2:
            return elbo_loss, self.stats(elbo_loss, rec, kl, mu, logvar)
        mmd = mmd2(z, torch.randn_like(z))
        loss = elbo_loss + self.settings.mmd_weight * mmd
        return loss, self.stats(loss, rec, kl, mu, logvar, mmd=mmd)
