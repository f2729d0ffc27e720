"""Where VAE-MINE's negative pairs come from (Algorithm 1 line 5: "shuffle the M latent variables").

  roll        the paper's shuffle as a derangement: x_i meets z_{i-1} (PAPER.md's decision);
  all-pairs   every (x_i, z_j), i != j, of the batch;
  queue       all pairs, and x_i with the codes of the last queue_size sentences of earlier batches;
  re-encoded  all pairs, and x_i with the last queue_size sentences of earlier batches encoded again
              by the current encoder, so that no negative code is stale.
Batches hold one sentence length, so only the last two make the negatives a sample of q(x) q(z)
across lengths. The rings of the last two are buffers of the objective that owns them (saved with
its weights for --resume, under the names bundles have always had).
"""

from __future__ import annotations

import torch
from torch import nn

from ...batching import Batch
from ...models import TextVAE


def off_diagonal_pairs(b: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(i, j) for every i != j in range(b), row by row, as nonzero() of the off-diagonal mask gives
    them, but computed: nonzero() reads its count back to the host, which a CUDA graph cannot."""
    k = torch.arange(b * (b - 1), device=device)
    i, j = k // (b - 1), k % (b - 1)
    return i, j + (j >= i)


class Roll:
    """z'_i = z_{i-1}: one negative a sentence, the paper's M pairs."""

    def __init__(self, owner: nn.Module, model: TextVAE, settings):
        self.owner, self.settings = owner, settings

    def codes(self) -> torch.Tensor | None:
        """Codes from outside the batch that every sentence also meets (None: none)."""
        return None

    def pairs(
        self, h: torch.Tensor, z: torch.Tensor, queued: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(h rows, codes) of the negative pairs; B >= 2."""
        return h, z.roll(1, dims=0)

    def from_matrix(self, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(joint energies, negative energies) from the matrix f(x_i, z_j) over the batch's codes and
        then the outside ones (a separable energy scores them all in one product)."""
        b = scores.size(0)
        rows = torch.arange(b, device=scores.device)
        return scores[rows, rows], scores[rows, (rows - 1) % b]

    def graphable(self) -> bool:
        """Whether a step may be captured in a CUDA graph (the number of negatives is fixed)."""
        return True

    def before_step(self, model: TextVAE) -> None:
        """What a training step needs before its pairs are scored."""

    def after_step(self, z: torch.Tensor, batch: Batch) -> None:
        """What a training step leaves for the next ones (its codes or sentences)."""

    def forget(self) -> None:
        """The owner's buffers may have been reloaded: recount what Python knows of them."""


class AllPairs(Roll):
    """Every other code of the batch, and the outside codes, are each sentence's negatives."""

    def pairs(self, h, z, queued=None):
        b = h.size(0)
        i, j = off_diagonal_pairs(b, h.device)
        h_neg, z_neg = h[i], z[j]
        if queued is not None:
            h_neg = torch.cat([h_neg, h.repeat_interleave(len(queued), 0)])
            z_neg = torch.cat([z_neg, queued.repeat(b, 1)])
        return h_neg, z_neg

    def from_matrix(self, scores):
        b = scores.size(0)
        rows = torch.arange(b, device=scores.device)
        i, j = off_diagonal_pairs(b, scores.device)
        return scores[rows, rows], torch.cat([scores[i, j], scores[:, b:].reshape(-1)])


class Ring(AllPairs):
    """A ring of the last queue_size entries of earlier batches, counted in `queue_count`."""

    def __init__(self, owner, model, settings):
        super().__init__(owner, model, settings)
        owner.register_buffer("queue_count", torch.zeros((), dtype=torch.long))
        self._queued: int | None = None  # queue_count as Python knows it (None: read it), so steps need no host read

    def queued(self) -> int:
        """Entries queued so far (queue_count), read from the device once after a start, a resume or
        a reload of the weights (`forget`), then counted in Python."""
        if self._queued is None:
            self._queued = int(self.owner.queue_count)
        return self._queued

    def forget(self) -> None:
        self._queued = None

    def slots(self, n: int, device: torch.device) -> torch.Tensor:
        """The ring's slots for n new entries, counted in."""
        slots = (self.owner.queue_count + torch.arange(n, device=device)) % self.settings.queue_size
        self.owner.queue_count += n
        if self._queued is not None:  # (while a step is captured this counts steps that never run,
            self._queued += n  # but graphs run only once the queue is full, and full it stays)
        return slots


class Queue(Ring):
    """The codes of earlier batches as they were drawn."""

    def __init__(self, owner, model, settings):
        owner.register_buffer("queue", torch.zeros(settings.queue_size, model.model_config.z_dim))
        super().__init__(owner, model, settings)

    def codes(self):
        return self.owner.queue[: min(self.queued(), self.settings.queue_size)]

    def graphable(self):
        """While the queue fills, the number of negatives changes every step: those first steps (two
        at batch 32) run eagerly. Once full it stays full."""
        return self.queued() >= self.settings.queue_size

    @torch.no_grad()
    def after_step(self, z, batch):
        z = z.detach()[-self.settings.queue_size :]
        self.owner.queue[self.slots(len(z), z.device)] = z


class ReEncoded(Ring):
    """Earlier batches' sentences, encoded again by the current encoder at every step."""

    def __init__(self, owner, model, settings):
        owner.register_buffer("sentences", torch.full((settings.queue_size, settings.reencoded_width), model.pad))
        owner.register_buffer("sentence_lengths", torch.ones(settings.queue_size, dtype=torch.long))
        super().__init__(owner, model, settings)
        self.pad = model.pad
        self.fresh: torch.Tensor | None = None  # this step's codes of the kept sentences

    def codes(self):
        return self.fresh

    def graphable(self):
        return False  # its kept sentences' width varies

    def before_step(self, model):
        self.fresh = self.reencode(model)

    @torch.no_grad()
    def reencode(self, model: TextVAE) -> torch.Tensor | None:
        """One posterior sample of each kept sentence under the current encoder (None: none kept yet)."""
        n = min(self.queued(), self.settings.queue_size)
        if not n:
            return None
        lengths = self.owner.sentence_lengths[:n]
        _, mu, logvar = model.encoder(self.owner.sentences[:n, : int(lengths.max())], lengths)
        return model.sample_z(mu, logvar)[:, 0]

    @torch.no_grad()
    def after_step(self, z, batch):
        """The batch's sentences (their first reencoded_width tokens) into the ring of kept ones."""
        tokens, lengths = batch.tokens[-self.settings.queue_size :], batch.lengths[-self.settings.queue_size :]
        width = min(tokens.size(1), self.settings.reencoded_width)
        slots = self.slots(len(tokens), tokens.device)
        self.owner.sentences[slots] = self.pad
        self.owner.sentences[slots, :width] = tokens[:, :width]
        self.owner.sentence_lengths[slots] = lengths.clamp(max=width).to(tokens.device)


SOURCES = {"roll": Roll, "all-pairs": AllPairs, "queue": Queue, "re-encoded": ReEncoded}
