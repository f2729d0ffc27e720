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
from ..errors import SettingError
from ..models import TextVAE
from .annealed import Annealed, AnnealSettings
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


STOP_RULES = ("batch-mi", "aggregate-mi")
CLIPS = ("joint", "per-group")


@dataclass(frozen=True)
class Settings(AnnealSettings):  # kl_start, anneal_epochs: He et al.'s --kl_start 0.1 --warm_up 10
    aggressive_max_steps: int = 100  # most encoder steps per decoder step
    aggressive_window: int = 15  # inner steps per loss comparison of the stop rule
    # The MI the aggressive phase watches: "batch-mi", He et al.'s calc_mi (batches of 32 sentences of
    # one length, at most log 32 nats: it saturates, so the phase ends within a few epochs), or
    # "aggregate-mi", the whole validation split's (this project's rule before it was checked against
    # their code: it kept rising, so the phase ran longer).
    aggressive_stop: str = "batch-mi"
    # "joint": one gradient norm over encoder and decoder for every step, as their clip_grad_norm_
    # over vae.parameters() (an encoder-only step is then shortened by the decoder's gradient too);
    # "per-group": each optimiser clipped by its own norm (this project's rule before).
    clip: str = "joint"

    def __post_init__(self):
        if self.aggressive_stop not in STOP_RULES:
            raise SettingError(f"aggressive_stop must be one of {STOP_RULES}, not {self.aggressive_stop!r}")
        if self.clip not in CLIPS:
            raise SettingError(f"clip must be one of {CLIPS}, not {self.clip!r}")


class LaggingVAE(Annealed):
    name = "lagging"
    display_name = "LaggingVAE"
    source = "He et al. 2019 (text.py and its README's text command)"
    Settings = Settings
    table2_row = 6
    legacy = {"anneal_epochs": 0.0, "aggressive_stop": "aggregate-mi", "clip": "per-group"}  # what format-1 runs did
    unrecorded = {"aggressive_stop": "aggregate-mi", "clip": "per-group"}  # runs from before these were checked

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
        joint = ["encoder", "decoder"] if self.settings.clip == "joint" else None
        if self.aggressive:
            stop = InnerLoopStop(self.settings.aggressive_window, self.settings.aggressive_max_steps)
            enc_batch = batch
            while True:
                loss, _ = ctx.step(loss_fn, enc_batch, ["encoder"], clip_with=joint)
                if stop.add(loss * len(enc_batch), enc_batch.n_tokens):
                    break
                enc_batch = ctx.next_batch()
            inner = stop.steps
        _, stats = ctx.step(loss_fn, batch, ["decoder"] if self.aggressive else None, clip_with=joint)
        self._inner += inner
        self._outer += 1
        return {**stats, "inner_steps": torch.tensor(float(inner))}

    def end_epoch(self, epoch: int, valid: dict[str, float]) -> None:
        if not self.aggressive:
            return
        if self.settings.aggressive_stop == "batch-mi":  # He et al.: stop once cur_mi - pre_mi < 0, pre_mi from 0
            mi, previous = valid["mi_batch"], self.previous_mi or 0.0
            self.aggressive = not mi < previous
        else:
            mi = valid["mi"]
            if self.previous_mi is not None and mi <= self.previous_mi:
                self.aggressive = False
        self.previous_mi = mi

    def logged(self) -> dict[str, float]:
        # `aggressive` is the mode the next epoch trains in; `inner_steps` the mean of this one.
        return {
            **super().logged(),
            "aggressive": self.aggressive,
            "inner_steps": round(self._inner / max(self._outer, 1), 2),
        }

    def extra_state(self) -> dict:  # the step counts matter to a checkpoint inside an epoch
        return {
            "aggressive": self.aggressive,
            "previous_mi": self.previous_mi,
            "inner": self._inner,
            "outer": self._outer,
        }

    def load_extra_state(self, state: dict) -> None:
        self.aggressive = state.get("aggressive", True)
        self.previous_mi = state.get("previous_mi")
        self._inner, self._outer = state.get("inner", 0), state.get("outer", 0)
