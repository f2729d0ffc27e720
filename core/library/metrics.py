"""Posterior-collapse metrics on diagonal Gaussian posteriors, and importance-weighted log p(x).

MI uses I_q[x, z] = E_x E_q(z|x)[log q(z|x)] - E_q(z)[log q(z)] (equal to Eq. 6's
E_x KL(q(z|x)||p) - KL(q(z)||p)), with log q(z) the log density of an aggregate posterior:
either the whole split's (`aggregate_mi`), or each batch's (`batch_mi`, He et al. 2019's estimate,
closed-form entropy as in their code).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch

from .batching import Batch
from .models import LOG_2PI, TextVAE

AU_THRESHOLD = 0.01
MI_BATCH = 32  # sentences per aggregate in the batch-wise (He et al.) MI estimate: their text.py's batch size


def _neg_entropy(logvar: torch.Tensor) -> torch.Tensor:
    """E_q(z|x)[log q(z|x)] per sentence, in closed form."""
    return -0.5 * (logvar.size(-1) * (LOG_2PI + 1) + logvar.sum(-1))


def log_aggregate_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """log q(z_s) = log mean_n N(z_s; mu_n, var_n) for every row of z [S, Z], against all N posteriors.

    The quadratic form is expanded into matrix products (float64), so memory is S x N, not S x N x Z.
    """
    z, mu, logvar = z.double(), mu.double(), logvar.double()
    inv_var = (-logvar).exp()  # [N, Z]
    const = -0.5 * (mu.size(-1) * LOG_2PI + logvar.sum(-1) + (mu.pow(2) * inv_var).sum(-1))  # [N]
    out = []
    for zc in z.split(chunk):
        quad = zc.pow(2) @ inv_var.T - 2 * zc @ (mu * inv_var).T  # [C, N]
        out.append(torch.logsumexp(const - 0.5 * quad, dim=1) - math.log(mu.size(0)))
    return torch.cat(out)


def aggregate_mi(
    mu: torch.Tensor, logvar: torch.Tensor, samples: int = 1, generator: torch.Generator | None = None
) -> float:
    """MI with the aggregate posterior of all N given posteriors, by Monte Carlo (`samples` z per x).

    Both log q(z|x) and log q(z) are evaluated at the same samples, so their noise cancels:
    identical (collapsed) posteriors give exactly 0.
    """
    if mu.size(0) < 2:
        return float("nan")
    mu, logvar = mu.double().cpu(), logvar.double().cpu()
    z = TextVAE.sample_z(mu, logvar, samples, generator)  # [N, S, Z]
    log_qzx = TextVAE.log_gaussian(z, mu.unsqueeze(1), logvar.unsqueeze(1))
    return float(log_qzx.mean() - log_aggregate_density(z.reshape(-1, mu.size(-1)), mu, logvar).mean())


def batch_mi(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """He et al. (2019)'s estimate: the aggregate posterior is this batch's mixture (one z per x)."""
    z = TextVAE.sample_z(mu, logvar, 1, generator)[:, 0]
    log_qz = log_aggregate_density(z, mu, logvar)
    return (_neg_entropy(logvar.double()).mean() - log_qz.mean()).to(mu.dtype)


def batchwise_mi(mu: torch.Tensor, logvar: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator) -> float:
    """He et al.'s calc_mi over a split: its posteriors in batches of up to MI_BATCH sentences of one
    length (as their create_data_batch groups a split: sorted by length, cut where the length changes
    and every MI_BATCH), the batch-wise estimate of each, weighted by batch size (a batch of one
    counts 0). Bounded by log MI_BATCH; LaggingVAE's aggressive phase ends on it (objectives/lagging.py)."""
    order = torch.sort(lengths, stable=True).indices
    mu, logvar, lengths = mu[order], logvar[order], lengths[order]
    _, counts = torch.unique_consecutive(lengths, return_counts=True)
    total = 0.0
    for m, lv in zip(mu.split(counts.tolist()), logvar.split(counts.tolist())):
        for mb, lb in zip(m.split(MI_BATCH), lv.split(MI_BATCH)):
            if len(mb) > 1:
                total += float(batch_mi(mb, lb, generator)) * len(mb)
    return total / len(mu)


def active_units(mu: torch.Tensor, threshold: float = AU_THRESHOLD) -> tuple[int, torch.Tensor]:
    """(number of dimensions whose posterior mean varies by >= threshold over x, the variances)."""
    var = mu.double().var(dim=0, unbiased=True) if mu.size(0) > 1 else torch.zeros(mu.size(-1), dtype=torch.float64)
    return int((var >= threshold).sum()), var


SHARED_DISTANCE = 1e-4  # cosine distance under which two sentences' codes count as one point


@dataclass(frozen=True)
class CodeState:
    """How a split's posterior means spread, in the terms a collapsed code is told apart by.

    `active`: AU (dimensions whose means vary with variance >= AU_THRESHOLD, i.e. a standard deviation
    of 0.1, a tenth of the prior's); `spread`: the largest standard deviation of the means over any
    dimension; `shared`: the share of sentences whose nearest other code (cosine) is within
    SHARED_DISTANCE, i.e. that the encoder maps onto the same point as another sentence.
    Collapsed: no active unit. Then every code sits within `spread` of one point, far inside the
    prior's unit spread, and any picture of their differences (UMAP, neighbours) is of that noise."""

    active: int
    spread: float
    shared: float
    sentences: int

    @property
    def collapsed(self) -> bool:
        return self.active == 0

    def verdict(self) -> str:
        """The state in a sentence a first-year student reads."""
        if self.collapsed:
            return (
                f"collapsed: over {self.sentences:,} sentences the codes vary by at most {self.spread:.2g} (standard "
                f"deviation) in any direction, against the prior's 1; every sentence gets nearly the same code, "
                f"so where a sentence lands says nothing about it"
            )
        if self.shared >= 0.1:
            return (
                f"{self.shared:.0%} of {self.sentences:,} sentences share their code with another sentence (cosine "
                f"distance under {SHARED_DISTANCE:g}): the encoder maps many different sentences onto the same few "
                f"points, although the codes do vary ({self.active} active units)"
            )
        return (
            f"{self.active} active units; the codes spread up to {self.spread:.2f} (standard deviation) in a direction"
        )


def code_state(mu: torch.Tensor, sample: int = 2000) -> CodeState:
    """CodeState of posterior means [N, Z] (the nearest-code share on the first `sample`)."""
    from sklearn.neighbors import NearestNeighbors

    mu = torch.as_tensor(mu).double()
    count, var = active_units(mu)
    part = mu[:sample].numpy()
    shared = 0.0
    if len(part) > 1 and np.abs(part).sum() > 0:
        dist, _ = NearestNeighbors(n_neighbors=2, metric="cosine").fit(part).kneighbors(part)
        shared = float((dist[:, 1] < SHARED_DISTANCE).mean())
    return CodeState(count, float(var.max().sqrt()) if len(var) else 0.0, shared, len(mu))


IW_POSITIONS = 8192  # (sample, word) positions per decoder pass: bounds its memory (below)


def iw_log_likelihood(
    model: TextVAE,
    batch: Batch,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    samples: int,
    generator=None,
    positions: int = IW_POSITIONS,
) -> torch.Tensor:
    """log p(x) ~= log mean_k p(x|z_k) p(z_k) / q(z_k|x), z_k ~ q(z|x), per sentence [B].

    The samples are drawn in one go, in the order of `samples` one-sample draws, so the estimate
    does not depend on how the work is split. Sentences of one length are decoded together, with as
    many samples per pass as fit in `positions` (sample, word) positions, so no work goes to padding
    and the matrix products stay large. A pass holds about positions x 4 x hidden floats of LSTM
    gates (at 8,192 and hidden 512: 64 MiB) and 512 x vocabulary scores of the output layer
    (20 MiB for PTB).
    """
    z = model.sample_z(mu, logvar, samples, generator)  # [B, K, Z]
    log_w = TextVAE.log_gaussian(z, torch.zeros_like(z), torch.zeros_like(z)) - TextVAE.log_gaussian(
        z, mu.unsqueeze(1), logvar.unsqueeze(1)
    )
    head = model.decoder.evaluation_head()
    lengths = batch.lengths.to(batch.tokens.device) - 1  # predicted tokens: the words and </s>
    for length in lengths.unique().tolist():
        rows = (lengths == length).nonzero()[:, 0]
        inputs, targets = batch.inputs[rows, :length], batch.targets[rows, :length]
        pairs = len(rows) * samples  # (sentence, sample) pairs, sentence-major
        per_pass = max(1, positions // length)
        log_pxz = torch.empty(pairs, device=z.device, dtype=z.dtype)
        for start in range(0, pairs, per_pass):
            pair = torch.arange(start, min(start + per_pass, pairs), device=z.device)
            sentence, sample = pair // samples, pair % samples
            log_pxz[pair] = -model.decoder.sentence_nll(
                inputs[sentence], targets[sentence], z[rows[sentence], sample], head
            )
        log_w[rows] += log_pxz.view(len(rows), samples)
    return torch.logsumexp(log_w, dim=1) - math.log(samples)


def diversity(sentences: list[str]) -> dict[str, float]:
    """distinct-n: distinct n-grams over all n-grams of the sentences (n = 1, 2); repeated: the
    share of sentences that copy an earlier one; distinct: the share of distinct sentences. A
    collapsed model decoding greedily scores 0, 0, (N-1)/N, 1/N."""
    out = {}
    for n in (1, 2):
        grams = [tuple(s.split()[i : i + n]) for s in sentences for i in range(len(s.split()) - n + 1)]
        out[f"distinct-{n}"] = len(set(grams)) / len(grams) if grams else 0.0
    distinct = len(set(sentences)) / len(sentences) if sentences else 0.0
    out["repeated"] = 1 - distinct if sentences else 0.0
    out["distinct"] = distinct
    return out


def word_f1(reference: str, candidate: str) -> float:
    """F1 of the multiset overlap of lower-cased whitespace tokens, a final " ." left out of both
    (so a reconstruction is not credited for the full stop every caption ends with)."""

    def bag(text: str) -> Counter:
        words = text.lower().split()
        return Counter(words[:-1] if words and words[-1] == "." else words)

    ref, cand = bag(reference), bag(candidate)
    overlap = sum((ref & cand).values())
    if not ref and not cand:
        return 1.0
    if overlap == 0:
        return 0.0
    precision, recall = overlap / sum(cand.values()), overlap / sum(ref.values())
    return 2 * precision * recall / (precision + recall)
