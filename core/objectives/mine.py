"""VAE-MINE (Qian & Cheung 2019, Algorithm 1): the ELBO plus alpha times a neural lower bound on I_q[x, z].

Bound (Eq. 12):  I >= E_joint[f(x, z)] - xi * E_marginals[exp f(x, z')] + log xi + 1.

Per batch, with the energy f = f_psi([h_x; z]) where h_x is the encoder's last hidden state:
  * psi (the energy) ascends the bound with the tangent xi carried over from the previous batch;
  * xi* = 1 / A, A = mean_i exp f(x_i, z'_i), the argmax of -xi A + log xi, at which the bound is
    the Donsker-Varadhan bound; the paper prints xi* = A (Eq. 13, Alg. 1 line 9), which is not the
    argmax (setting xi="printed" keeps it, to show what it does). Kept as log xi to stay finite;
  * phi (the encoder) descends -ELBO - alpha * bound(xi*); theta (the decoder) sees only the
    reconstruction term, which alone depends on it;
  * negatives: "roll" (z'_i = z_{i-1}), "all-pairs" (every x_i, z_j, i != j), "queue" (all pairs
    and the codes of the last queue_size sentences of earlier batches) or "re-encoded" (all pairs
    and the last queue_size sentences of earlier batches encoded again by the current encoder, so
    no negative code is stale). Batches hold one sentence length, so only the last two make the
    negatives a sample of q(x) q(z) across lengths.
All updates are one SGD step, as in Algorithm 1 line 15.

Choices beyond the paper's text that the default makes (why, measured: docs/mine-variants.md):
a bounded energy (a scaled tanh into (-energy_bound, energy_bound)), the energy's lr at 0.1 x the
model's, h_x standardised across the batch (the initial encoder's states differ by ~4e-4), and a
weak gauge energy_gauge * (log mean exp f_marg)^2 that keeps the energy's free offset out of tanh's
flat floor. The settings below the paper's own name the other choices it leaves open: what the
energy reads (z standardised; the posterior; the words), how it learns (Adam; k steps per encoder
step) and the estimator (DV with its tangent, JSD, InfoNCE).
"""

from __future__ import annotations

import math
from copy import deepcopy
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from ..batching import Batch
from ..errors import SettingError
from ..metrics import aggregate_mi
from ..models import TextVAE
from .annealed import word_dropout
from .base import ScheduledKL
from .schedules import linear_anneal


class EnergyFunction(nn.Module):
    """f_psi(x, z): two ReLU layers on [h_x; z], squashed smoothly into (-bound, bound)."""

    def __init__(
        self,
        h_dim: int,
        z_dim: int,
        hidden: int,
        bound: float = 10.0,
        standardize_h: bool = True,
        standardize_z: bool = False,
        reads_posterior: bool = False,
        words: int = 0,
        pad: int = 0,
        separable: bool = False,
        z_floor: float = 0.0,
    ):
        super().__init__()
        self.z_floor = z_floor
        # reads="words": x is read as the mean of the energy's own embeddings of its words, not as h_x
        self.words = nn.EmbeddingBag(words, h_dim, mode="mean", padding_idx=pad) if words else None
        self.bound, self.z_dim = bound, z_dim
        self.standardize_h = standardize_h
        self.standardize_z = standardize_z
        self.reads_posterior = reads_posterior
        self.separable, self.hidden = separable, hidden
        if separable:  # f = g(x) . k(z) / sqrt(hidden): two towers, so every pair of B x C costs one product
            self.x_net = nn.Sequential(nn.Linear(h_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
            self.z_net = nn.Sequential(nn.Linear(z_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
        else:
            self.net = nn.Sequential(
                nn.Linear(h_dim + z_dim * (2 if reads_posterior else 1), hidden),
                nn.ReLU(),
                nn.Linear(hidden, hidden),
                nn.ReLU(),
                nn.Linear(hidden, 1),
            )

    def features(self, h: torch.Tensor) -> torch.Tensor:
        """h_x as the energy reads it: standardised across the batch (when set)."""
        if self.standardize_h and h.size(0) > 1:
            h = standardized(h)
        return h

    def x_features(
        self, h: torch.Tensor, mu: torch.Tensor | None, logvar: torch.Tensor | None, tokens: torch.Tensor | None = None
    ) -> torch.Tensor:
        """A sentence as the energy reads it: h_x from `features` (or, reading words, the mean of its
        word embeddings over `tokens`), with reads_posterior its posterior's mean and log-variance beside it."""
        if self.words is not None:
            if tokens is None:
                raise ValueError("an energy that reads the words needs the sentences' tokens")
            h = self.words(tokens)
        else:
            h = self.features(h)
        if not self.reads_posterior:
            return h
        if mu is None or logvar is None:
            raise ValueError("an energy that reads the posterior needs its mean and log-variance")
        return torch.cat([h, mu, logvar], -1)

    def codes(self, z: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
        """Codes as the energy reads them: `z_features`, with reads_posterior the raw code beside them."""
        read = self.z_features(z, *others)
        return [torch.cat([r, c], -1) for r, c in zip(read, (z, *others))] if self.reads_posterior else read

    def z_features(self, z: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
        """z (and other codes, e.g. queued ones) as the energy reads them: with standardize_z, centred
        and scaled by the batch's own mean and spread, which carry gradient. A common scale of the
        codes is then invisible to the energy, so the bound can rise only as the codes' spread grows
        against their posterior noise: its gradient reaches sigma at first order."""
        if not self.standardize_z or z.size(0) < 2:
            return [z, *others]
        mean, std = z.mean(0), (z.var(0, unbiased=False) + 1e-12).sqrt()
        if self.z_floor:  # blind to a spread beyond the floor (the prior's, at 1.0), not to one below it
            std = std.clamp(min=self.z_floor)
        return [(c - mean) / std for c in (z, *others)]

    def forward(self, h: torch.Tensor, z: torch.Tensor, matrix: bool = False) -> torch.Tensor:
        """f for pairs (x_i, z_i); x from `x_features` (or `features`), z from `codes`. With
        reads_posterior the energy sees, beside h_x and z, the code's standardised distance from the
        sentence's posterior, (z - mu_x) / sigma_x: sharper posteriors move every negative pair away
        at first order, so the bound's gradient reaches sigma directly instead of through the
        spread of the means alone. matrix (separable only): f for every (h_i, z_j), [len(h), len(z)]."""
        if self.separable:
            a, b = self.x_net(h), self.z_net(z)
            raw = (a @ b.T if matrix else (a * b).sum(-1)).float() / math.sqrt(self.hidden)
            return self.bound * torch.tanh(raw / self.bound)
        if self.reads_posterior:
            z_dim = self.z_dim
            h, mu, logvar = h[..., : -2 * z_dim], h[..., -2 * z_dim : -z_dim], h[..., -z_dim:]
            read, raw = z[..., :z_dim], z[..., z_dim:]
            z = torch.cat([read, (raw - mu) * (-0.5 * logvar).exp()], -1)
        raw = self.net(torch.cat([h, z], dim=-1)).squeeze(-1).float()  # log-mean-exp in float32 (core.precision)
        return self.bound * torch.tanh(raw / self.bound)


def standardized(x: torch.Tensor) -> torch.Tensor:
    return (x - x.mean(0)) / (x.var(0, unbiased=False) + 1e-12).sqrt()


def off_diagonal_pairs(b: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(i, j) for every i != j in range(b), row by row, as nonzero() of the off-diagonal mask gives
    them, but computed: nonzero() reads its count back to the host, which a CUDA graph cannot."""
    k = torch.arange(b * (b - 1), device=device)
    i, j = k // (b - 1), k % (b - 1)
    return i, j + (j >= i)


def dv_bound(f_joint: torch.Tensor, f_marg: torch.Tensor) -> torch.Tensor:
    """Donsker-Varadhan value mean f_joint - log mean exp f_marg: the bound at xi = xi*."""
    return f_joint.mean() - (torch.logsumexp(f_marg, 0) - math.log(f_marg.numel()))


def jsd_value(f_joint: torch.Tensor, f_marg: torch.Tensor) -> torch.Tensor:
    """Hjelm et al. (2019)'s Jensen-Shannon estimator, E_joint[-softplus(-f)] - E_marg[softplus(f)]:
    not a bound on I in nats, but its gradient does not weight pairs by exp f."""
    return -F.softplus(-f_joint).mean() - F.softplus(f_marg).mean()


def infonce_value(scores: torch.Tensor) -> torch.Tensor:
    """van den Oord et al. (2018): scores[i, j] = f(x_i, z_j), the joint pairs on the diagonal of the
    first B columns; mean_i (f_ii - log mean_j exp f_ij), a bound on I of at most log(columns)."""
    b = scores.size(0)
    joint = scores[torch.arange(b), torch.arange(b)]
    return (joint - torch.logsumexp(scores, 1)).mean() + math.log(scores.size(1))


NEGATIVES = ("roll", "all-pairs", "queue", "re-encoded")
ESTIMATORS = ("dv", "jsd", "infonce")
XI_RULES = ("optimal", "printed")
OPTIMIZERS = ("sgd", "adam")
READS = ("state", "words")
# Named groups of settings (core.train --recipe): "reads-code" is the estimator of the shipped
# right-hand VAE-MINE (docs/mine-variants.md) without its anneal and word dropout, the smallest set
# that kept the code in use in short runs (the classroom lab: MI 0.6-0.8, AU 5-8 in a minute, where
# the paper's DV at alpha 3 stays near 0).
RECIPES = {
    "reads-code": (
        ("energy_standardize_z", True),
        ("estimator", "infonce"),
        ("negatives", "re-encoded"),
        ("queue_size", 160),
    )
}


@dataclass(frozen=True)
class Settings:
    alpha: float = 3.0  # weight of the MI bound; the paper sweeps 2.0 ... 5.0
    energy_lr_scale: float = 0.1  # the energy network's SGD lr, relative to the model's
    energy_bound: float = 10.0  # energy outputs squashed into (-bound, bound)
    energy_standardize_h: bool = True  # the energy reads h_x standardised across the batch
    energy_gauge: float = 0.01  # weight of the pull on the energy's free offset (see the module text)
    negatives: str = "roll"  # roll, all-pairs, queue or re-encoded (see the module text)
    queue_size: int = 64  # "queue": codes kept from earlier batches (two batches of 32); "re-encoded": sentences
    reencoded_width: int = 64  # "re-encoded": tokens kept of each sentence (<s> included; a longer one is cut)
    # A KL anneal as its baselines have (weight from kl_start rising linearly to 1 over anneal_epochs).
    # The paper names an anneal only for VAE-0.5, so by default there is none (weight 1 throughout).
    kl_start: float = 1.0
    anneal_epochs: float = 0.0
    # Word dropout on the decoder's inputs as VAE-0.5 has (share of words replaced by <unk>); the paper
    # names none for VAE-MINE, so by default 0. With it (and the anneal), VAE-MINE is VAE-0.5 plus the
    # MI term: the two differ in that term only.
    word_dropout: float = 0.0
    # Choices the paper leaves open or states differently; each is screened in docs/mine-variants.md.
    energy_standardize_z: bool = False  # the energy reads z standardised across the batch, as it reads h_x
    energy_z_floor: float = (
        0.0  # with it, z is divided by max(batch spread, floor): at 1.0 only spread beyond the prior's is hidden
    )
    energy_reads_posterior: bool = False  # the energy also reads (z - mu_x) / sigma_x (x's posterior beside h_x)
    energy_reads: str = "state"  # x as the encoder's last state h_x, or as "words" (the energy's own bag of words)
    energy_separable: bool = (
        False  # f = g(h_x) . k(z) (two towers) instead of an MLP on [h_x; z]: many negatives cheaply
    )
    energy_optimizer: str = "sgd"  # sgd (Algorithm 1) or adam (MINE's own practice, Belghazi et al. 2018)
    energy_adam_lr: float = 1e-4  # Adam's lr at the run's lr 1.0 (halved with it)
    energy_steps: int = 1  # energy updates per encoder step (k > 1: a critic that keeps up, as in WGAN)
    estimator: str = "dv"  # dv (the paper's DV with its tangent xi), jsd (Hjelm et al.), infonce (all pairs)
    xi: str = "optimal"  # dv's tangent: optimal (xi* = 1 / mean exp f) or printed (the paper's xi = mean exp f)

    def __post_init__(self):
        for name, allowed in (
            ("negatives", NEGATIVES),
            ("estimator", ESTIMATORS),
            ("xi", XI_RULES),
            ("energy_optimizer", OPTIMIZERS),
            ("energy_reads", READS),
        ):
            if getattr(self, name) not in allowed:
                raise SettingError(f"{name} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}")
        if self.queue_size < 1 or self.reencoded_width < 2:
            raise SettingError("queue_size must be at least 1 and reencoded_width at least 2")
        if self.energy_steps < 1:
            raise SettingError("energy_steps must be at least 1")
        if self.energy_separable and self.energy_reads_posterior:
            raise SettingError(
                "a separable energy reads x and z apart, so it cannot read z's distance from x's posterior"
            )
        if self.estimator == "infonce" and self.negatives == "roll":
            raise SettingError(
                "estimator=infonce scores every pair of the batch: use negatives=all-pairs, queue or re-encoded"
            )


class VAEMine(ScheduledKL):
    name = "vae-mine"
    display_name = "VAE-MINE"
    source = "Qian & Cheung 2019, with the choices in core/objectives/mine.py"
    Settings = Settings
    table2_row = 7
    paper_swept = ("alpha",)  # the paper's grid, 2.0 ... 5.0
    # Format-1 runs: in-batch roll negatives, and no anneal or word dropout (their one flat config
    # object held VAE-0.5's kl_start, anneal_epochs and word_dropout, which VAE-MINE never read).
    legacy = {"negatives": "roll", "kl_start": 1.0, "anneal_epochs": 0.0, "word_dropout": 0.0}

    def __init__(self, model: TextVAE, settings: Settings, vocab_size: int):
        super().__init__(model, settings, vocab_size)
        mc = model.model_config
        self.energy = EnergyFunction(
            mc.hidden_dim,
            mc.z_dim,
            mc.energy_hidden,
            settings.energy_bound,
            settings.energy_standardize_h,
            settings.energy_standardize_z,
            settings.energy_reads_posterior,
            vocab_size if settings.energy_reads == "words" else 0,
            model.pad,
            settings.energy_separable,
            settings.energy_z_floor,
        )
        self.register_buffer("log_xi", torch.zeros(()))  # tangent scope carried between batches, xi = 1 at start
        if settings.negatives == "queue":  # a ring of recent codes; saved with the weights for --resume
            self.register_buffer("queue", torch.zeros(settings.queue_size, mc.z_dim))
            self.register_buffer("queue_count", torch.zeros((), dtype=torch.long))
        if settings.negatives == "re-encoded":  # a ring of recent sentences; saved with the weights for --resume
            self.register_buffer("sentences", torch.full((settings.queue_size, settings.reencoded_width), model.pad))
            self.register_buffer("sentence_lengths", torch.ones(settings.queue_size, dtype=torch.long))
            self.register_buffer("queue_count", torch.zeros((), dtype=torch.long))
        self._fresh: torch.Tensor | None = None  # "re-encoded": this step's codes of the kept sentences
        self.pad = model.pad
        self.alpha = settings.alpha
        self._queued: int | None = None  # queue_count as Python knows it (None: read it), so steps need no host read

    @staticmethod
    def shareable(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The ring of re-encoded sentences holds token ids of training sentences: an exported bundle
        keeps it empty (a run resumed from one fills it again within queue_size sentences)."""
        out = dict(tensors)
        if "objective.sentences" in out:
            out["objective.sentences"] = torch.zeros_like(out["objective.sentences"])
            out["objective.sentence_lengths"] = torch.ones_like(out["objective.sentence_lengths"])
            out["objective.queue_count"] = torch.zeros_like(out["objective.queue_count"])
        return out

    def param_groups(self, model: TextVAE) -> dict[str, list[nn.Parameter]]:
        return {"model": list(model.parameters()), "energy": list(self.energy.parameters())}

    def lr_scale(self, group: str) -> float:
        if group != "energy":
            return 1.0
        return (
            self.settings.energy_adam_lr if self.settings.energy_optimizer == "adam" else self.settings.energy_lr_scale
        )

    def optimizer(self, group: str, params: list[nn.Parameter], lr: float) -> torch.optim.Optimizer:
        if group == "energy" and self.settings.energy_optimizer == "adam":
            return torch.optim.Adam(params, lr=lr)
        return super().optimizer(group, params, lr)

    # -- the pairs the energy scores --------------------------------------------------------------

    def codes(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(z, queued codes or None) as the energy reads them."""
        queued = None
        if self.settings.negatives == "queue":
            queued = self.queue[: min(self.queued(), self.settings.queue_size)]
        elif self.settings.negatives == "re-encoded":
            queued = self._fresh
        if queued is None or not len(queued):
            return self.energy.codes(z)[0], None
        zf, qf = self.energy.codes(z, queued)
        return zf, qf

    def negative_pairs(
        self, h: torch.Tensor, z: torch.Tensor, queued: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(h rows, codes) of the negative pairs, as `negatives` says; B >= 2."""
        b = h.size(0)
        if self.settings.negatives == "roll":
            return h, z.roll(1, dims=0)  # derangement: x_i meets z_{i-1}
        i, j = off_diagonal_pairs(b, h.device)
        h_neg, z_neg = h[i], z[j]
        if queued is not None:
            h_neg = torch.cat([h_neg, h.repeat_interleave(len(queued), 0)])
            z_neg = torch.cat([z_neg, queued.repeat(b, 1)])
        return h_neg, z_neg

    def energies(self, h: torch.Tensor, z: torch.Tensor, queued: torch.Tensor | None, frozen: bool):
        """infonce: the score matrix f(x_i, z_j) over the batch's codes and the queue's, and None;
        else (joint energies, negative energies). frozen: the energy's parameters held fixed (the
        encoder's view); else the inputs are detached (the energy's own update)."""
        if frozen:
            params = {k: v.detach() for k, v in self.energy.named_parameters()}

            def f(a, b, matrix=False):
                return functional_call(self.energy, params, (a, b), {"matrix": matrix})
        else:
            h, z, queued = h.detach(), z.detach(), None if queued is None else queued.detach()
            f = self.energy
        if self.energy.separable:
            return self.from_matrix(f(h, z if queued is None else torch.cat([z, queued]), matrix=True))
        if self.settings.estimator == "infonce":
            cols = z if queued is None else torch.cat([z, queued])
            b, c = h.size(0), cols.size(0)
            return f(h.repeat_interleave(c, 0), cols.repeat(b, 1)).view(b, c), None
        h_neg, z_neg = self.negative_pairs(h, z, queued)
        return f(h, z), f(h_neg, z_neg)

    def from_matrix(self, scores: torch.Tensor):
        """What `energies` returns, from the separable energy's matrix f(x_i, z_j) over the batch's
        codes and then the queue's: the matrix (infonce), or the joint diagonal and the negatives
        `negatives` names."""
        if self.settings.estimator == "infonce":
            return scores, None
        b = scores.size(0)
        rows = torch.arange(b, device=scores.device)
        joint = scores[rows, rows]
        if self.settings.negatives == "roll":
            return joint, scores[rows, (rows - 1) % b]
        i, j = off_diagonal_pairs(b, scores.device)
        return joint, torch.cat([scores[i, j], scores[:, b:].reshape(-1)])

    def bounds(
        self,
        h: torch.Tensor,
        z: torch.Tensor,
        mu: torch.Tensor | None = None,
        logvar: torch.Tensor | None = None,
        tokens: torch.Tensor | None = None,
    ):
        """(psi_objective, phi_objective, log_xi or None, estimate) for one batch of pairs (h_i, z_i),
        B >= 2; mu and logvar (the posteriors of z) are needed when the energy reads them, the
        sentences' tokens when it reads their words.

        psi_objective carries gradient to the energy network only, phi_objective to h and z only;
        both are ascended. For dv, psi's includes the gauge penalty -energy_gauge * (log mean exp
        f_marg)^2 and log_xi is the tangent for the next batch. The estimate is a lower bound on I
        in nats: the DV value of the energies (dv, jsd) or the InfoNCE value (infonce).
        """
        hf = self.energy.x_features(h, mu, logvar, tokens)
        zf, qf = self.codes(z)
        psi_a, psi_b = self.energies(hf, zf, qf, frozen=False)
        phi_a, phi_b = self.energies(hf, zf, qf, frozen=True)
        if self.settings.estimator == "infonce":
            return infonce_value(psi_a), infonce_value(phi_a), None, infonce_value(phi_a.detach())
        estimate = dv_bound(phi_a.detach(), phi_b.detach())
        if self.settings.estimator == "jsd":
            return jsd_value(psi_a, psi_b), jsd_value(phi_a, phi_b), None, estimate
        log_a = torch.logsumexp(psi_b, 0) - math.log(psi_b.numel())  # log mean exp f_marg; 0 at the paper's xi = 1
        psi = psi_a.mean() - (psi_b + self.log_xi.clone()).exp().mean() - self.settings.energy_gauge * log_a.pow(2)
        log_xi = (-log_a if self.settings.xi == "optimal" else log_a).detach()  # xi* = 1 / A, or the printed xi = A
        phi = phi_a.mean() - (phi_b + log_xi).exp().mean() + log_xi + 1
        return psi, phi, log_xi, estimate

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
        (two at batch 32) run eagerly. Once full it stays full. Extra energy steps read the
        encoder's output outside the step, so they run eagerly too."""
        if (
            self.settings.energy_steps > 1 or self.settings.negatives == "re-encoded"
        ):  # (its kept sentences' width varies)
            return False
        return self.settings.negatives != "queue" or self.queued() >= self.settings.queue_size

    @torch.no_grad()
    def _enqueue(self, z: torch.Tensor) -> None:
        z = z[-self.settings.queue_size :]
        slots = (self.queue_count + torch.arange(len(z), device=z.device)) % self.settings.queue_size
        self.queue[slots] = z
        self.queue_count += len(z)
        if self._queued is not None:  # (while a step is captured this counts steps that never run,
            self._queued += len(z)  # but graphs run only once the queue is full, and full it stays)

    # -- training ---------------------------------------------------------------------------------

    def loss(self, model: TextVAE, batch: Batch):
        h, mu, logvar, z, rec, kl = self.elbo_terms(model, batch)
        elbo_loss = (rec + self.step_kl_weight() * kl).mean()
        if len(batch) < 2:  # no negative pair exists in a batch of one
            return elbo_loss, self.stats(elbo_loss, rec, kl, mu, logvar)
        if self.settings.negatives == "re-encoded":
            self._fresh = self.reencode(model)
        psi, phi, log_xi, estimate = self.bounds(h, z, mu, logvar, batch.tokens)
        loss = elbo_loss - self.alpha * phi - psi
        extra = {"mine_bound": estimate}
        if log_xi is not None:
            self.log_xi.copy_(log_xi)  # the next batch's psi step uses this tangent
            extra["xi"] = log_xi.exp()
        if self.settings.negatives == "queue" and self.training:
            self._enqueue(z.detach())
        if self.settings.negatives == "re-encoded" and self.training:
            self._keep(batch)
        return loss, self.stats(loss, rec, kl, mu, logvar, **extra)

    @torch.no_grad()
    def reencode(self, model: TextVAE) -> torch.Tensor | None:
        """One posterior sample of each kept sentence under the current encoder (None: none kept yet)."""
        n = min(self.queued(), self.settings.queue_size)
        if not n:
            return None
        lengths = self.sentence_lengths[:n]
        _, mu, logvar = model.encoder(self.sentences[:n, : int(lengths.max())], lengths)
        return model.sample_z(mu, logvar)[:, 0]

    @torch.no_grad()
    def _keep(self, batch: Batch) -> None:
        """The batch's sentences (their first reencoded_width tokens) into the ring of kept ones."""
        tokens, lengths = batch.tokens[-self.settings.queue_size :], batch.lengths[-self.settings.queue_size :]
        width = min(tokens.size(1), self.settings.reencoded_width)
        slots = (self.queue_count + torch.arange(len(tokens), device=tokens.device)) % self.settings.queue_size
        self.sentences[slots] = self.pad
        self.sentences[slots, :width] = tokens[:, :width]
        self.sentence_lengths[slots] = lengths.clamp(max=width).to(tokens.device)
        self.queue_count += len(tokens)
        if self._queued is not None:
            self._queued += len(tokens)

    def energy_loss(self, h: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, batch: Batch):
        """The energy's own objective on fresh codes of a batch already encoded (extra energy steps)."""
        psi, _, log_xi, estimate = self.bounds(h, TextVAE.sample_z(mu, logvar)[:, 0], mu, logvar, batch.tokens)
        if log_xi is not None:
            self.log_xi.copy_(log_xi)
        return -psi, {"mine_bound": estimate}

    def train_step(self, model: TextVAE, batch: Batch, ctx) -> dict[str, torch.Tensor]:
        if self.settings.energy_steps > 1 and len(batch) >= 2:
            with torch.no_grad():
                h, mu, logvar = model.encode(batch)
            for _ in range(self.settings.energy_steps - 1):
                ctx.step(partial(self.energy_loss, h, mu, logvar), batch, groups=["energy"])
        return super().train_step(model, batch, ctx)

    def kl_weight(self) -> float:
        return linear_anneal(self.position, self.settings.kl_start, self.settings.anneal_epochs)

    def decoder_inputs(self, batch: Batch) -> torch.Tensor | None:
        return (
            word_dropout(batch.inputs, self.settings.word_dropout)
            if self.training and self.settings.word_dropout
            else None
        )

    def logged(self) -> dict[str, float]:
        return {**super().logged(), "alpha": self.alpha}

    # -- diagnostics ------------------------------------------------------------------------------

    def diagnostics(
        self, model: TextVAE, probe: Batch, batches: list[Batch], steps: int = 10, lr: float = 1.0, seed: int = 0
    ) -> dict[str, float]:
        """Why the bound buys (or does not buy) information, measured without changing the model,
        the energy or any state (evaluation mode, a private generator):
          bound / mi: the estimate on `batches` against the MI of the whole probe (metrics.aggregate_mi);
          grad_{mu,logvar}_{rec,kl,mine}: median over `batches` of the norm of each term's gradient
            on the posterior means and log-variances (rec, kl_weight x KL, alpha x the bound);
          near_bound_{joint,neg}: share of energies within 10 % of energy_bound (a saturated critic);
          step_mi, step_kl, mi_per_kl: the probe's MI and KL after `steps` encoder-only SGD steps
            (lr `lr`, clipped at 5, energy frozen) along alpha x the bound alone, and their ratio of
            changes: nats of MI the bound's direction buys per nat of KL it costs.
        """
        g = torch.Generator(device=probe.tokens.device).manual_seed(seed)
        was = model.training, self.training
        model.eval(), self.eval()
        try:
            terms = {k: {"mu": [], "logvar": []} for k in ("rec", "kl", "mine")}
            estimates, near_joint, near_neg = [], [], []
            for batch in batches:
                h, mu, logvar = model.encode(batch)
                z = TextVAE.sample_z(mu, logvar, 1, g)[:, 0]
                hf = self.energy.x_features(h, mu, logvar, batch.tokens)
                zf, qf = self.codes(z)
                a, b = self.energies(hf, zf, qf, frozen=True)
                joint, neg = (
                    (a.diagonal(), a[~torch.eye(*a.shape, dtype=torch.bool, device=a.device)]) if b is None else (a, b)
                )
                near_joint.append(float((joint.abs() > 0.9 * self.energy.bound).float().mean()))
                near_neg.append(float((neg.abs() > 0.9 * self.energy.bound).float().mean()))
                _, phi, _, estimate = self.bounds(h, z, mu, logvar, batch.tokens)
                estimates.append(float(estimate))
                losses = {
                    "rec": model.reconstruction(batch, z).mean(),
                    "kl": self.kl_weight() * TextVAE.kl(mu, logvar).mean(),
                    "mine": -self.alpha * phi,
                }
                for k, term in losses.items():
                    g_mu, g_lv = torch.autograd.grad(term, [mu, logvar], retain_graph=True, allow_unused=True)
                    terms[k]["mu"].append(0.0 if g_mu is None else float(g_mu.norm()))
                    terms[k]["logvar"].append(0.0 if g_lv is None else float(g_lv.norm()))
            mi, kl = self._probe_mi_kl(model.encoder, probe)
            step_mi, step_kl = self._bound_step(model.encoder, probe, batches, steps, lr, g)
        finally:
            model.train(was[0]), self.train(was[1])
        out = {"bound": float(np.mean(estimates)), "mi": mi, "kl": kl}
        for k, parts in terms.items():
            for what, norms in parts.items():
                out[f"grad_{what}_{k}"] = float(np.median(norms))
        out |= {
            "near_bound_joint": float(np.mean(near_joint)),
            "near_bound_neg": float(np.mean(near_neg)),
            "step_mi": step_mi,
            "step_kl": step_kl,
            "mi_per_kl": (step_mi - mi) / (step_kl - kl) if abs(step_kl - kl) > 1e-9 else float("nan"),
        }
        return {k: round(v, 5) for k, v in out.items()}

    @staticmethod
    @torch.no_grad()
    def _probe_mi_kl(encoder: nn.Module, probe: Batch) -> tuple[float, float]:
        _, mu, logvar = encoder(probe.tokens, probe.lengths)
        return aggregate_mi(mu, logvar, generator=torch.Generator().manual_seed(0)), float(
            TextVAE.kl(mu, logvar).mean()
        )

    def _bound_step(
        self, encoder: nn.Module, probe: Batch, batches: list[Batch], steps: int, lr: float, g
    ) -> tuple[float, float]:
        """The probe's (MI, KL) after `steps` SGD steps of a copy of the encoder along alpha x the bound."""
        copy = deepcopy(encoder)
        params = list(copy.parameters())
        opt = torch.optim.SGD(params, lr=lr)
        for i in range(steps):
            batch = batches[i % len(batches)]
            h, mu, logvar = copy(batch.tokens, batch.lengths)
            _, phi, _, _ = self.bounds(h, TextVAE.sample_z(mu, logvar, 1, g)[:, 0], mu, logvar, batch.tokens)
            opt.zero_grad(set_to_none=True)
            (-self.alpha * phi).backward(inputs=params)
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()
        return self._probe_mi_kl(copy, probe)
