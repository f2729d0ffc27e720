"""Bowman et al. (2016)'s VAE-0.5 and Zhao et al. (2017)'s VAE-BOW: both anneal the KL weight
linearly from `kl_start` to 1 over the first `anneal_epochs` epochs, and weaken the decoder's
hold on the sentence in different ways so it has to consult z."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..batching import Batch
from ..models import TextVAE
from ..vocab import Vocab
from .base import ScheduledKL
from .schedules import linear_anneal


def word_dropout(inputs: torch.Tensor, rate: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Replace each real word of the decoder's input by <unk> with probability `rate`.

    <s>, </s> and padding stay: the decoder must still know where a sentence starts."""
    if rate <= 0:
        return inputs
    words = inputs > Vocab.unk  # the specials are ids 0-3
    drop = torch.rand(inputs.shape, generator=generator, device=inputs.device) < rate
    return inputs.masked_fill(words & drop, Vocab.unk)


@dataclass(frozen=True)
class AnnealSettings:
    kl_start: float = 0.1  # KL weight at the start of the linear anneal
    anneal_epochs: float = 10.0  # epochs over which the KL weight rises to 1 (0: weight 1 throughout)


class Annealed(ScheduledKL):
    """Shared KL anneal (settings `kl_start`, `anneal_epochs`)."""

    def kl_weight(self) -> float:
        return linear_anneal(self.position, self.settings.kl_start, self.settings.anneal_epochs)


@dataclass(frozen=True)
class WordDropoutSettings(AnnealSettings):
    word_dropout: float = 0.5  # share of decoder input words replaced by <unk>


class VAEWordDropout(Annealed):
    """VAE-0.5: KL anneal + real word dropout at rate 0.5 on the decoder's inputs."""

    name = "vae-0.5"
    display_name = "VAE-0.5"
    source = "Bowman et al. 2016"
    Settings = WordDropoutSettings
    table2_row = 2

    def decoder_inputs(self, batch: Batch) -> torch.Tensor | None:
        return word_dropout(batch.inputs, self.settings.word_dropout) if self.training else None


@dataclass(frozen=True)
class BowSettings(AnnealSettings):
    # SGD lr of the bag-of-words network relative to the model's. Zhao et al. train it with the
    # model's optimiser; under this project's SGD at lr 1.0 its summed loss (~20 words a sentence,
    # through a hidden layer) oscillated upwards, at 0.1 it falls (tests/test_objectives.py).
    bow_lr_scale: float = 0.1


class VAEBow(Annealed):
    """VAE-BOW: KL anneal + a bag-of-words loss, -sum_w log softmax(g(z))_w over the sentence's
    words and </s>, g an MLP (hidden tanh layer of the decoder's width). No word dropout."""

    name = "vae-bow"
    display_name = "VAE-BOW"
    source = "Zhao et al. 2017"
    Settings = BowSettings
    table2_row = 3

    def __init__(self, model: TextVAE, settings, vocab_size: int):
        super().__init__(model, settings, vocab_size)
        mc = model.model_config
        self.bow = nn.Sequential(nn.Linear(mc.z_dim, mc.hidden_dim), nn.Tanh(), nn.Linear(mc.hidden_dim, vocab_size))

    def lr_scale(self, group: str) -> float:
        return self.settings.bow_lr_scale if group == self.name else 1.0

    def bow_loss(self, z: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per sentence [B]: the negative log-likelihood of the sentence's words as a bag, given z."""
        logp = F.log_softmax(self.bow(z).float(), dim=-1)
        return -(logp.gather(1, targets) * (targets != Vocab.pad)).sum(-1)

    def loss(self, model: TextVAE, batch: Batch):
        _, mu, logvar, z, rec, kl = self.elbo_terms(model, batch)
        bow = self.bow_loss(z, batch.targets)
        loss = (rec + self.step_kl_weight() * kl + bow).mean()
        return loss, self.stats(loss, rec, kl, mu, logvar, bow=bow.mean())
