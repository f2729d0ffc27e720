"""VAE-MINE (Qian & Cheung 2019, Algorithm 1): the ELBO plus alpha times a neural lower bound on I_q[x, z].

Bound (Eq. 12):  I >= E_joint[f(x, z)] - xi * E_marginals[exp f(x, z')] + log xi + 1.

Per batch, with the energy f = f_psi([h_x; z]) where h_x is the encoder's last hidden state:
  * psi ascends the bound with the tangent scope xi carried over from the previous batch;
  * xi* is the closed-form optimum for this batch. Maximising -xi*A + log xi over xi gives
    xi* = 1 / A with A = mean_i exp f(x_i, z'_i); the paper prints xi* = A (Eq. 13, Alg. 1 line 9),
    which is not the argmax. With 1/A the bound equals the Donsker-Varadhan bound, as PAPER.md
    states it should, so that is what is used. It is kept as log xi to stay finite.
  * phi (the encoder) descends -ELBO - alpha * bound(xi*); theta (the decoder) only sees the
    reconstruction term, because neither the KL nor the bound depends on it;
  * negative pairs z'_i = z_{i-1}: a derangement within the batch (no sentence meets its own z).
All three updates are one SGD step, as in Algorithm 1 line 15.

Four choices beyond the paper's text make it work; each was measured (tests/test_mine.py and the
project README):
  * the energy is squashed into (-10, 10) by a scaled tanh (a bounded critic, as in Song & Ermon
    2020). Unbounded, its outputs on unseen pairs grew without limit under every xi scheme tried
    (lagged, current-batch, moving average) and log-mean-exp was ruined. Bounded, exp f is finite;
  * the energy network's SGD lr is 0.1 x the model's: at lr 1.0 it did not learn at all;
  * the energy reads h_x standardised across the batch. With the paper's U(-0.01, 0.01) init the
    encoder's last state varies by ~4e-4 between sentences, so an energy reading raw h_x cannot
    see x, the bound stays at 0 and gives the encoder no gradient: VAE-MINE collapsed exactly like
    the plain VAE (PTB, 10 epochs);
  * a gauge: the bound is unchanged when a constant is added to f, so with xi carried over from the
    previous batch nothing holds f's offset, which random-walked into tanh's flat floor (xi ~ 2e4)
    where the energy stops learning, and VAE-MINE fell back into collapse. psi also descends
    0.01 * (log mean exp f_marg)^2, which pins the offset at xi* = 1 (Proposition 1's setting, f* the
    pointwise MI) and leaves the set of optimal energies as it was.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.func import functional_call

from ..batching import Batch
from ..config import ObjectiveConfig
from ..models import TextVAE
from .base import Objective


class EnergyFunction(nn.Module):
    """f_psi(x, z): two ReLU layers on [h_x; z], squashed smoothly into (-bound, bound)."""

    def __init__(self, h_dim: int, z_dim: int, hidden: int, bound: float = 10.0, standardize_h: bool = True):
        super().__init__()
        self.bound = bound
        self.standardize_h = standardize_h
        self.net = nn.Sequential(
            nn.Linear(h_dim + z_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1)
        )

    def forward(self, h: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if self.standardize_h and h.size(0) > 1:
            h = (h - h.mean(0)) / (h.var(0, unbiased=False) + 1e-12).sqrt()
        raw = self.net(torch.cat([h, z], dim=-1)).squeeze(-1)
        return self.bound * torch.tanh(raw / self.bound)


def dv_bound(f_joint: torch.Tensor, f_marg: torch.Tensor) -> torch.Tensor:
    """Donsker-Varadhan value mean f_joint - log mean exp f_marg: the bound at xi = xi*."""
    return f_joint.mean() - (torch.logsumexp(f_marg, 0) - math.log(f_marg.numel()))


class VAEMine(Objective):
    name = "vae-mine"

    def __init__(self, model: TextVAE, cfg: ObjectiveConfig, vocab_size: int):
        super().__init__(model, cfg, vocab_size)
        mc = model.cfg
        self.energy = EnergyFunction(mc.hidden_dim, mc.z_dim, mc.energy_hidden, cfg.energy_bound, cfg.energy_standardize_h)
        self.register_buffer("log_xi", torch.zeros(()))  # tangent scope carried between batches, xi = 1 at start
        self.alpha = cfg.alpha

    def param_groups(self, model: TextVAE) -> dict[str, list[nn.Parameter]]:
        return {"model": list(model.parameters()), "energy": list(self.energy.parameters())}

    def lr_scale(self, group: str) -> float:
        return self.cfg.energy_lr_scale if group == "energy" else 1.0

    def bounds(self, h: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(psi_bound, phi_bound, log_xi_star, dv) for one batch of pairs (h_i, z_i), i = 1..M >= 2.

        psi_bound carries gradient to the energy network only, phi_bound to h and z only.
        psi_bound includes the gauge penalty -energy_gauge * (log mean exp f_marg)^2.
        """
        z_marg = z.roll(1, dims=0)  # derangement: x_i meets z_{i-1}
        hd, zd, zmd = h.detach(), z.detach(), z_marg.detach()
        f_marg_psi = self.energy(hd, zmd)
        gauge = torch.logsumexp(f_marg_psi, 0) - math.log(f_marg_psi.numel())  # -log xi*, 0 at the paper's xi = 1
        psi_bound = self.energy(hd, zd).mean() - (f_marg_psi + self.log_xi.clone()).exp().mean() - self.cfg.energy_gauge * gauge.pow(2)
        log_xi_star = -gauge.detach()  # xi* = 1 / mean exp f(x_i, z'_i), from the same energies
        frozen = {k: v.detach() for k, v in self.energy.named_parameters()}
        f_joint = functional_call(self.energy, frozen, (h, z))
        f_marg = functional_call(self.energy, frozen, (h, z_marg))
        phi_bound = f_joint.mean() - (f_marg + log_xi_star).exp().mean() + log_xi_star + 1
        return psi_bound, phi_bound, log_xi_star, dv_bound(f_joint.detach(), f_marg.detach())

    def loss(self, model: TextVAE, batch: Batch):
        h, mu, logvar, z, rec, kl = self.elbo_terms(model, batch)
        elbo_loss = (rec + self.kl_weight() * kl).mean()
        if len(batch) < 2:  # no negative pair exists in a batch of one
            return elbo_loss, self.stats(elbo_loss, rec, kl, mu, logvar)
        psi_bound, phi_bound, log_xi_star, dv = self.bounds(h, z)
        loss = elbo_loss - self.alpha * phi_bound - psi_bound
        self.log_xi.copy_(log_xi_star)  # the next batch's psi step uses this tangent
        return loss, self.stats(loss, rec, kl, mu, logvar, mine_bound=dv, xi=log_xi_star.exp())

    def logged(self) -> dict[str, float]:
        return {"alpha": self.alpha}
