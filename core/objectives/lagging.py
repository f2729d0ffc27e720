"""LaggingVAE (He et al. 2019): aggressive encoder training against posterior collapse.

While aggressive, each decoder step is preceded by an inner loop of encoder-only steps, the first
on the step's own batch and the rest on fresh batches, until the loss stops improving (compared
per word over windows of `aggressive_window` steps, as in He et al.'s code) or after
`aggressive_max_steps` steps. The decoder step then uses the step's batch. After each epoch,
aggressive mode ends for good once validation MI has not increased over the previous epoch's.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..batching import Batch
from ..models import TextVAE
from .base import Objective, StepContext


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


class LaggingVAE(Objective):
    name = "lagging"

    def __init__(self, model: TextVAE, cfg, vocab_size: int):
        super().__init__(model, cfg, vocab_size)
        self.aggressive = True
        self.previous_mi: float | None = None
        self._inner = self._outer = 0

    def param_groups(self, model: TextVAE) -> dict[str, list[nn.Parameter]]:
        return {"encoder": list(model.encoder.parameters()), "decoder": list(model.decoder.parameters())}

    def start_epoch(self, epoch: int) -> None:
        self._inner = self._outer = 0

    def train_step(self, model: TextVAE, batch: Batch, ctx: StepContext) -> dict[str, torch.Tensor]:
        inner = 0
        if self.aggressive:
            stop = InnerLoopStop(self.cfg.aggressive_window, self.cfg.aggressive_max_steps)
            enc_batch = batch
            while True:
                loss, _ = self.loss(model, enc_batch)
                ctx.update(loss, ["encoder"])
                if stop.add(loss.detach() * len(enc_batch), enc_batch.n_tokens):
                    break
                enc_batch = ctx.next_batch()
            inner = stop.steps
        loss, stats = self.loss(model, batch)
        ctx.update(loss, ["decoder"] if self.aggressive else None)
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
        return {"aggressive": self.aggressive, "inner_steps": round(self._inner / max(self._outer, 1), 2)}

    def extra_state(self) -> dict:
        return {"aggressive": self.aggressive, "previous_mi": self.previous_mi}

    def load_extra_state(self, state: dict) -> None:
        self.aggressive = state.get("aggressive", True)
        self.previous_mi = state.get("previous_mi")
