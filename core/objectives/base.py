"""The one interface every training objective implements.

The training loop knows nothing about particular objectives: it asks the objective for its
parameter groups (one SGD optimiser each), calls `train_step` once per batch, and tells it when
epochs start and end. An objective owns its extra parameters and state (an energy network, a
schedule position, a tangent scope) as an `nn.Module`, so they are saved with the checkpoint.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar, Iterable

import torch
from torch import nn

from ..batching import Batch
from ..config import ObjectiveConfig
from ..metrics import batch_mi
from ..models import TextVAE


@dataclass
class StepContext:
    """What a training step may use besides its batch."""

    optimizers: dict[str, torch.optim.Optimizer]
    clip: float
    next_batch: Callable[[], Batch]  # a fresh training batch, for objectives with inner loops
    epoch: int
    step: int

    def update(self, loss: torch.Tensor, groups: Iterable[str] | None = None) -> None:
        """Backpropagate `loss` and take one clipped SGD step on the named groups (default: all).

        With groups named, only their gradients are computed: autograd skips e.g. the decoder's
        weight gradients in LaggingVAE's encoder-only steps, which would be thrown away.
        """
        names = list(self.optimizers) if groups is None else list(groups)
        params = {name: [p for g in self.optimizers[name].param_groups for p in g["params"]] for name in names}
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)
        if groups is None:
            loss.backward()
        else:
            loss.backward(inputs=[p for name in names for p in params[name]])
        for name in names:
            torch.nn.utils.clip_grad_norm_(params[name], self.clip)
            self.optimizers[name].step()


class Objective(nn.Module):
    """Base: the ELBO with a constant KL weight. Subclasses change `loss` or `train_step`."""

    name: ClassVar[str]
    latent: ClassVar[bool] = True  # False for the language model: the model has no encoder

    def __init__(self, model: TextVAE, cfg: ObjectiveConfig, vocab_size: int):
        super().__init__()
        self.cfg = cfg
        # Training position in epochs, (epoch - 1) + batch / batches_per_epoch; the loop sets it
        # before every step and schedules read it (see schedules.py).
        self.position = 0.0

    # -- hooks the training loop calls ----------------------------------------------------------

    def param_groups(self, model: TextVAE) -> dict[str, list[nn.Parameter]]:
        """Parameters by optimiser: each group gets its own SGD optimiser and its own gradient clip."""
        groups = {"model": list(model.parameters())}
        own = list(self.parameters())
        if own:
            groups[self.name] = own
        return groups

    def lr_scale(self, group: str) -> float:
        """A group's learning rate relative to the run's (halvings apply to all groups alike)."""
        return 1.0

    def start_epoch(self, epoch: int) -> None:
        """Called before each epoch (1-based); schedules update here."""

    def end_epoch(self, epoch: int, valid: dict[str, float]) -> None:
        """Called after validation with that epoch's validation metrics."""

    def train_step(self, model: TextVAE, batch: Batch, ctx: StepContext) -> dict[str, torch.Tensor]:
        loss, stats = self.loss(model, batch)
        ctx.update(loss)
        return stats

    def logged(self) -> dict[str, float]:
        """Schedule values and state to record in each epoch's log line."""
        return {}

    def extra_state(self) -> dict:
        """JSON-able state beyond tensors (saved for --resume)."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    # -- the loss ---------------------------------------------------------------------------------

    def kl_weight(self) -> float:
        return self.cfg.kl_weight

    def decoder_inputs(self, batch: Batch) -> torch.Tensor | None:
        """The decoder's input tokens for the reconstruction term (None: the sentence itself)."""
        return None

    def elbo_terms(self, model: TextVAE, batch: Batch):
        """One reparameterised sample per sentence: (h_x, mu, logvar, z, reconstruction [B], kl [B])."""
        inputs = self.decoder_inputs(batch)
        h, mu, logvar = model.encode(batch)
        z = model.sample_z(mu, logvar)[:, 0]
        rec = model.reconstruction(batch, z, inputs)
        return h, mu, logvar, z, rec, model.kl(mu, logvar)

    def loss(self, model: TextVAE, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Scalar loss to minimise and detached per-batch statistics (means per sentence)."""
        _, mu, logvar, _, rec, kl = self.elbo_terms(model, batch)
        loss = (rec + self.kl_weight() * kl).mean()
        return loss, self.stats(loss, rec, kl, mu, logvar)

    @staticmethod
    def stats(loss, rec, kl=None, mu=None, logvar=None, **extra) -> dict[str, torch.Tensor]:
        out = {"loss": loss.detach(), "reconstruction": rec.detach().mean()}
        if kl is not None:
            out["kl"] = kl.detach().mean()
            out["mi"] = batch_mi(mu.detach(), logvar.detach())
        out.update({k: v.detach() for k, v in extra.items()})
        return out


class ScheduledKL(Objective):
    """An objective whose KL weight follows a schedule (it overrides kl_weight); each epoch's log
    line records the weight at the epoch's end."""

    def logged(self) -> dict[str, float]:
        return {"kl_weight": round(self.kl_weight(), 6)}
