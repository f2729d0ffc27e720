"""LaggingVAE (He et al. 2019): aggressive encoder training against posterior collapse.

While aggressive, each decoder step is preceded by an inner loop of encoder-only steps, the first
on the step's own batch and the rest on fresh batches, until the loss stops improving (compared
per word over windows of `aggressive_window` steps, as in He et al.'s code) or after
`aggressive_max_steps` steps. The decoder step then uses the step's batch. After each epoch,
aggressive mode ends for good once validation MI has not increased over the previous epoch's.
The KL weight rises linearly from 0.1 to 1 over the first 10 epochs, as in the text command of He
et al.'s README (`--kl_start 0.1 --warm_up 10`), alongside the aggressive phase.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from ..batching import Batch
from ..models import TextVAE
from .annealed import AnnealSettings, Annealed
from .base import StepContext


class InnerLoopStop:
    """The inner loop's stop rule, fed (summed loss, words) after each encoder step."""

    def __init__(self, window: int, max_steps: int):
        self.window, self.max_steps = window, max_steps
        self.steps, self.previous = 0, math.inf
        self.loss: torch.Tensor | float = 0.0
        self.words = 0

    def add(self, loss_sum: torch.Tensor | float, words: int) -> bool:
        """True when the loop should stop. Reads the loss back (a host sync) once per window only."""
        self.steps += 1
        self.loss = self.loss + loss_sum
        self.words += words
        if self.steps >= self.max_steps:
            return True
        if self.steps % self.window == 0:
            current = float(self.loss) / self.words
            if current >= self.previous:
                return True
            self.previous, self.loss, self.words = current, 0.0, 0
        return False


@dataclass(frozen=True)
class Settings(AnnealSettings):  # kl_start, anneal_epochs: He et al.'s --kl_start 0.1 --warm_up 10
    aggressive_max_steps: int = 100  # most encoder steps per decoder step
    aggressive_window: int = 15  # inner steps per loss comparison of the stop rule


class LaggingVAE(Annealed):
    name = "lagging"
    display_name = "LaggingVAE"
    source = "He et al. 2019 (text.py and its README's text command)"
    Settings = Settings
    table2_row = 6
    legacy = {"anneal_epochs": 0.0}  # format-1 runs trained without the KL anneal

    def __init__(self, model: TextVAE, settings, vocab_size: int):
        super().__init__(model, settings, vocab_size)
        self.aggressive = True
        self.previous_mi: float | None = None
        self._inner = self._outer = 0

    def param_groups(self, model: TextVAE) -> dict[str, list[nn.Parameter]]:
        return {"encoder": list(model.encoder.parameters()), "decoder": list(model.decoder.parameters())}

    def start_epoch(self, epoch: int) -> None:
        self._inner = self._outer = 0

    def train_step(self, model: TextVAE, batch: Batch, ctx: StepContext) -> dict[str, torch.Tensor]:
        inner, loss_fn = 0, partial(self.loss, model)
        if self.aggressive:
            stop = InnerLoopStop(self.settings.aggressive_window, self.settings.aggressive_max_steps)
            enc_batch = batch
            while True:
                loss, _ = ctx.step(loss_fn, enc_batch, ["encoder"])
                if stop.add(loss * len(enc_batch), enc_batch.n_tokens):
                    break
                enc_batch = ctx.next_batch()
            inner = stop.steps
        _, stats = ctx.step(loss_fn, batch, ["decoder"] if self.aggressive else None)
        self._inner += inner
        self._outer += 1
        return {**stats, "inner_steps": torch.tensor(float(inner))}

    def end_epoch(self, epoch: int, valid: dict[str, float]) -> None:
        if not self.aggressive:
            return
        mi = valid["mi"]
        if self.previous_mi is not None and mi <= self.previous_mi:
            self.aggressive = False
        self.previous_mi = mi

    def logged(self) -> dict[str, float]:
        # `aggressive` is the mode the next epoch trains in; `inner_steps` the mean of this one.
        return {**super().logged(), "aggressive": self.aggressive,
                "inner_steps": round(self._inner / max(self._outer, 1), 2)}

    def extra_state(self) -> dict:  # the step counts matter to a checkpoint inside an epoch
        return {"aggressive": self.aggressive, "previous_mi": self.previous_mi, "inner": self._inner, "outer": self._outer}

    def load_extra_state(self, state: dict) -> None:
        self.aggressive = state.get("aggressive", True)
        self.previous_mi = state.get("previous_mi")
        self._inner, self._outer = state.get("inner", 0), state.get("outer", 0)
