"""A run's resume state (`core.train --resume`): saved after every epoch, and inside one on request.

The files and their formats are checkpoint.py's; this module says what a run puts in them and how it
comes back: the model's and objective's weights, the RNG, the loop's state (LoopState) and the
objective's extra state; inside an epoch also where it stands (batch, sentences, tokens, seconds,
inner-loop batches drawn) and its running sums. A resumed run continues bit-identically.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

import torch

from . import checkpoint as ckpt
from .errors import CheckpointError
from .models import TextVAE
from .objectives import Objective
from .objectives.schedules import LoopState

log = logging.getLogger(__name__)


def rng_states(device: torch.device) -> dict[str, torch.Tensor]:
    rng = {"rng.cpu": torch.random.get_rng_state()}
    if device.type == "cuda":
        rng["rng.cuda"] = torch.cuda.get_rng_state(device)
    return rng


def restore_rng(rng: dict[str, torch.Tensor], device: torch.device) -> None:
    torch.random.set_rng_state(rng["rng.cpu"])
    if device.type == "cuda" and "rng.cuda" in rng:
        torch.cuda.set_rng_state(rng["rng.cuda"], device)


def loop_state(saved: dict, where: Path) -> LoopState:
    try:
        return LoopState(**saved)
    except TypeError as e:
        raise CheckpointError(f"corrupt resume state in {where}: {e}") from None


def save_epoch(out: Path, model: TextVAE, objective: Objective, state: LoopState, device: torch.device) -> None:
    """The state after a finished epoch (a checkpoint inside it is then stale and goes)."""
    tensors = ckpt.weights_of(model, objective) | rng_states(device)
    ckpt.save_resume(out, tensors, asdict(state), objective.extra_state())
    ckpt.drop_partial(out)


def save_inside_epoch(
    out: Path,
    model: TextVAE,
    objective: Objective,
    state: LoopState,
    device: torch.device,
    position: dict,
    sums: dict[str, torch.Tensor],
) -> None:
    """A checkpoint inside an epoch: weights, RNG, the running sums and `position`."""
    tensors = ckpt.weights_of(model, objective) | rng_states(device)
    tensors |= {f"sums.{k}": torch.as_tensor(v) for k, v in sums.items()}
    ckpt.save_partial(
        out, tensors, {**position, "sums": list(sums), "loop": asdict(state), "objective": objective.extra_state()}
    )


def load_epoch(out: Path, model: TextVAE, objective: Objective, device: torch.device) -> LoopState | None:
    """The last finished epoch's state into the model, objective and RNG; None when there is none."""
    ckpt.drop_temporary(out)
    saved = ckpt.load_resume(out)
    if saved is None:
        return None
    tensors, rng, loop, objective_state = saved
    state = loop_state(loop, out / ckpt.RESUME_DIR)
    ckpt.load_weights(out / ckpt.RESUME_DIR / ckpt.RESUME_WEIGHTS, model, objective, tensors)
    objective.load_extra_state(objective_state)
    restore_rng(rng, device)
    return state


def load_inside_epoch(
    out: Path, model: TextVAE, objective: Objective, device: torch.device, epoch: int
) -> tuple[LoopState, dict] | None:
    """(loop state, position with its running sums) of a checkpoint inside `epoch`, loaded into the
    model, objective and RNG; None when there is none, or one written before the last epoch ended,
    or one that cannot be read (then the run continues after the last finished epoch)."""
    try:
        saved = ckpt.load_partial(out)
        if saved is None:
            return None
        tensors, rng, position = saved
        if position["epoch"] != epoch:  # written before the last epoch ended
            ckpt.drop_partial(out)
            return None
        state = loop_state(position.pop("loop"), out / ckpt.RESUME_DIR / ckpt.RESUME_PARTIAL)
        # the running sums in the order the epoch added them, so its log line keeps its key order
        sums = {k: tensors.pop(f"sums.{k}").to(device) for k in position["sums"]}
    except (CheckpointError, KeyError, TypeError) as e:
        log.warning(
            "mid-epoch checkpoint in %s unusable (%s): resuming after the last finished epoch instead",
            out / ckpt.RESUME_DIR,
            e,
        )
        ckpt.drop_partial(out)
        return None
    ckpt.load_weights(out / ckpt.RESUME_DIR / ckpt.RESUME_PARTIAL, model, objective, tensors)
    restore_rng(rng, device)
    return state, {**position, "sums": sums}
