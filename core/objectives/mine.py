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
  * negative pairs: `negatives` picks them. "roll" (format-1 bundles): z'_i = z_{i-1}, one
    derangement within the batch. "all-pairs": every (x_i, z_j), i != j, of the batch, B(B-1)
    pairs estimating the same expectation with less variance. "queue": all pairs plus each x_i with
    the (detached) codes of the last `queue_size` sentences of earlier batches. Batches hold one
    sentence length (length bucketing), so in-batch negatives only estimate I(x; z | length);
    queued codes come from other lengths and make the negatives a sample of q(x) q(z), the product
    of marginals Algorithm 1 asks for.
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
    energy_gauge * (log mean exp f_marg)^2 (0.01). This is a weak pull, not a pin: it stops the
    offset from drifting into the floor, but the bound's own gradient outweighs it, and the shipped
    flickr8k VAE-MINE ended at log xi = -4.75 (mean exp f on negatives ~ 116) with its joint
    energies near the cap of 10. It changes no optimum of the bound.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

from ..batching import Batch
from ..models import TextVAE
from .base import ScheduledKL
from .annealed import word_dropout
from .schedules import linear_anneal


class EnergyFunction(nn.Module):
    """f_psi(x, z): two ReLU layers on [h_x; z], squashed smoothly into (-bound, bound)."""

    def __init__(self, h_dim: int, z_dim: int, hidden: int, bound: float = 10.0, standardize_h: bool = True):
        super().__init__()
        self.bound = bound
        self.standardize_h = standardize_h
        self.net = nn.Sequential(
            nn.Linear(h_dim + z_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1)
        )

    def features(self, h: torch.Tensor) -> torch.Tensor:
        """h_x as the energy reads it: standardised across the batch (when set)."""
        if self.standardize_h and h.size(0) > 1:
            h = (h - h.mean(0)) / (h.var(0, unbiased=False) + 1e-12).sqrt()
        return h

    def forward(self, h: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """f for pairs (h_i, z_i); h from `features`."""
        raw = self.net(torch.cat([h, z], dim=-1)).squeeze(-1)
        return self.bound * torch.tanh(raw / self.bound)


def off_diagonal_pairs(b: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(i, j) for every i != j in range(b), row by row, as nonzero() of the off-diagonal mask gives
    them, but computed: nonzero() reads its count back to the host, which a CUDA graph cannot."""
    k = torch.arange(b * (b - 1), device=device)
    i, j = k // (b - 1), k % (b - 1)
    return i, j + (j >= i)


def dv_bound(f_joint: torch.Tensor, f_marg: torch.Tensor) -> torch.Tensor:
    """Donsker-Varadhan value mean f_joint - log mean exp f_marg: the bound at xi = xi*."""
    return f_joint.mean() - (torch.logsumexp(f_marg, 0) - math.log(f_marg.numel()))


NEGATIVES = ("roll", "all-pairs", "queue")


@dataclass(frozen=True)
class Settings:
    alpha: float = 3.0  # weight of the MI bound; the paper sweeps 2.0 ... 5.0
    energy_lr_scale: float = 0.1  # the energy network's SGD lr, relative to the model's
    energy_bound: float = 10.0  # energy outputs squashed into (-bound, bound)
    energy_standardize_h: bool = True  # the energy reads h_x standardised across the batch
    energy_gauge: float = 0.01  # weight of the pull on the energy's free offset (see the module text)
    negatives: str = "roll"  # roll, all-pairs or queue (see the module text)
    queue_size: int = 64  # "queue": codes kept from earlier batches (two batches of 32)
    # A KL anneal as its baselines have (weight from kl_start rising linearly to 1 over anneal_epochs).
    # The paper names an anneal only for VAE-0.5, so by default there is none (weight 1 throughout).
    kl_start: float = 1.0
    anneal_epochs: float = 0.0
    # Word dropout on the decoder's inputs as VAE-0.5 has (share of words replaced by <unk>); the paper
    # names none for VAE-MINE, so by default 0. With it (and the anneal), VAE-MINE is VAE-0.5 plus the
    # MI term: the two differ in that term only.
    word_dropout: float = 0.0

    def __post_init__(self):
        if self.negatives not in NEGATIVES:
            raise ValueError(f"negatives must be one of {', '.join(NEGATIVES)}, not {self.negatives!r}")
        if self.queue_size < 1:
            raise ValueError("queue_size must be at least 1")


class VAEMine(ScheduledKL):
    name = "vae-mine"
    display_name = "VAE-MINE"
    source = "Qian & Cheung 2019, with the choices in core/objectives/mine.py"
    Settings = Settings
    table2_row = 7
    # Format-1 runs: in-batch roll negatives, and no anneal or word dropout (their one flat config
    # object held VAE-0.5's kl_start, anneal_epochs and word_dropout, which VAE-MINE never read).
    legacy = {"negatives": "roll", "kl_start": 1.0, "anneal_epochs": 0.0, "word_dropout": 0.0}

    def __init__(self, model: TextVAE, settings: Settings, vocab_size: int):
        super().__init__(model, settings, vocab_size)
        mc = model.cfg
        self.energy = EnergyFunction(mc.hidden_dim, mc.z_dim, mc.energy_hidden, settings.energy_bound,
                                     settings.energy_standardize_h)
        self.register_buffer("log_xi", torch.zeros(()))  # tangent scope carried between batches, xi = 1 at start
        if settings.negatives == "queue":  # a ring of recent codes; saved with the weights for --resume
            self.register_buffer("queue", torch.zeros(settings.queue_size, mc.z_dim))
            self.register_buffer("queue_count", torch.zeros((), dtype=torch.long))
        self.alpha = settings.alpha
        self._queued: int | None = None  # queue_count as Python knows it (None: read it), so steps need no host read

    def param_groups(self, model: TextVAE) -> dict[str, list[nn.Parameter]]:
        return {"model": list(model.parameters()), "energy": list(self.energy.parameters())}

    def lr_scale(self, group: str) -> float:
        return self.cfg.energy_lr_scale if group == "energy" else 1.0

    def negative_pairs(self, h: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(h rows, codes) of the negative pairs, as `negatives` says; B >= 2."""
        b = h.size(0)
        if self.cfg.negatives == "roll":
            return h, z.roll(1, dims=0)  # derangement: x_i meets z_{i-1}
        i, j = off_diagonal_pairs(b, h.device)
        h_neg, z_neg = h[i], z[j]
        if self.cfg.negatives == "queue":
            queued = self.queue[: min(self.queued(), self.cfg.queue_size)]
            if len(queued):
                h_neg = torch.cat([h_neg, h.repeat_interleave(len(queued), 0)])
                z_neg = torch.cat([z_neg, queued.repeat(b, 1)])
        return h_neg, z_neg

    def queued(self) -> int:
        """Codes queued so far (queue_count), read from the device once after a start, a resume or
        a reload of the weights (start_epoch forgets it), then counted in Python."""
        if self._queued is None:
            self._queued = int(self.queue_count)
        return self._queued

    def start_epoch(self, epoch: int) -> None:
        super().start_epoch(epoch)
        self._queued = None  # the weights, queue included, may have been reloaded since

    def graphable(self, batch: Batch) -> bool:
        """While the queue fills, the number of negatives changes every step: those first steps
        (two at batch 32) run eagerly. Once full it stays full."""
        return self.cfg.negatives != "queue" or self.queued() >= self.cfg.queue_size

    @torch.no_grad()
    def _enqueue(self, z: torch.Tensor) -> None:
        z = z[-self.cfg.queue_size:]
        slots = (self.queue_count + torch.arange(len(z), device=z.device)) % self.cfg.queue_size
        self.queue[slots] = z
        self.queue_count += len(z)
        if self._queued is not None:  # (while a step is captured this counts steps that never run,
            self._queued += len(z)  # but graphs run only once the queue is full, and full it stays)

    def bounds(self, h: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(psi_bound, phi_bound, log_xi_star, dv) for one batch of pairs (h_i, z_i), i = 1..M >= 2.

        psi_bound carries gradient to the energy network only, phi_bound to h and z only.
        psi_bound includes the gauge penalty -energy_gauge * (log mean exp f_marg)^2.
        """
        h = self.energy.features(h)
        h_marg, z_marg = self.negative_pairs(h, z)
        f_marg_psi = self.energy(h_marg.detach(), z_marg.detach())
        gauge = torch.logsumexp(f_marg_psi, 0) - math.log(f_marg_psi.numel())  # -log xi*, 0 at the paper's xi = 1
        psi_bound = (self.energy(h.detach(), z.detach()).mean() - (f_marg_psi + self.log_xi.clone()).exp().mean()
                     - self.cfg.energy_gauge * gauge.pow(2))
        log_xi_star = -gauge.detach()  # xi* = 1 / mean exp f(x_i, z'_i), from the same energies
        frozen = {k: v.detach() for k, v in self.energy.named_parameters()}
        f_joint = functional_call(self.energy, frozen, (h, z))
        f_marg = functional_call(self.energy, frozen, (h_marg, z_marg))
        phi_bound = f_joint.mean() - (f_marg + log_xi_star).exp().mean() + log_xi_star + 1
        return psi_bound, phi_bound, log_xi_star, dv_bound(f_joint.detach(), f_marg.detach())

    def loss(self, model: TextVAE, batch: Batch):
        h, mu, logvar, z, rec, kl = self.elbo_terms(model, batch)
        elbo_loss = (rec + self.step_kl_weight() * kl).mean()
        if len(batch) < 2:  # no negative pair exists in a batch of one
            return elbo_loss, self.stats(elbo_loss, rec, kl, mu, logvar)
        psi_bound, phi_bound, log_xi_star, dv = self.bounds(h, z)
        loss = elbo_loss - self.alpha * phi_bound - psi_bound
        self.log_xi.copy_(log_xi_star)  # the next batch's psi step uses this tangent
        if self.cfg.negatives == "queue" and self.training:
            self._enqueue(z.detach())
        return loss, self.stats(loss, rec, kl, mu, logvar, mine_bound=dv, xi=log_xi_star.exp())

    def kl_weight(self) -> float:
        return linear_anneal(self.position, self.cfg.kl_start, self.cfg.anneal_epochs)

    def decoder_inputs(self, batch: Batch) -> torch.Tensor | None:
        return word_dropout(batch.inputs, self.cfg.word_dropout) if self.training and self.cfg.word_dropout else None

    def logged(self) -> dict[str, float]:
        return {**super().logged(), "alpha": self.alpha}
