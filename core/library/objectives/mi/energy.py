"""The energy f_psi(x, z) of VAE-MINE's bound (Eq. 11-12): an MLP on [h_x; z], and what it reads.

The paper's energy reads the encoder's last state h_x and the code z (its "lower layers shared" with
the encoder, PAPER.md). The named settings beyond it choose what else it reads: z standardised across
the batch (with a floor), the posterior beside h_x, the words instead of h_x, or two towers
(`separable`) so that every pair of a batch costs one matrix product.
"""

from __future__ import annotations

import math

import torch
from torch import nn


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
        raw = (
            self.net(torch.cat([h, z], dim=-1)).squeeze(-1).float()
        )  # log-mean-exp in float32 (core.library.precision)
        return self.bound * torch.tanh(raw / self.bound)


def standardized(x: torch.Tensor) -> torch.Tensor:
    return (x - x.mean(0)) / (x.var(0, unbiased=False) + 1e-12).sqrt()
