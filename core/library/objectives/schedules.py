"""KL-weight schedules as pure functions of the training position (epochs done, fractional).

The loop sets the position before every step as (epoch - 1) + batch_index / batches_per_epoch, so a
schedule depends only on where training is, never on wall time, and a resumed run replays it exactly.
The learning-rate plateau rule is here too, as a pure function of the loop's state.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


def linear_anneal(position: float, start: float, epochs: float) -> float:
    """Bowman et al.: from `start` rising linearly to 1 over the first `epochs` epochs, then 1."""
    if epochs <= 0:
        return 1.0
    return min(1.0, start + (1.0 - start) * position / epochs)


def cyclical(position: float, cycle_epochs: float, cycles: int, ratio: float) -> float:
    """Fu et al.: beta restarts at 0 each cycle, rises linearly over the first `ratio` of it, then
    holds 1 until the cycle ends; after `cycles` cycles it stays at 1."""
    if cycle_epochs <= 0 or position >= cycles * cycle_epochs:
        return 1.0
    tau = (position % cycle_epochs) / cycle_epochs
    return min(1.0, tau / ratio)


@dataclass
class LoopState:
    """The training loop's position: everything --resume needs besides weights and RNG."""

    epoch: int = 0  # finished epochs
    step: int = 0
    lr: float = 1.0
    best_nll: float | None = None
    best_epoch: int = 0
    bad_epochs: int = 0
    halvings: int = 0
    seconds: float = 0.0  # training time so far, validation included
    last_epoch_seconds: float = 0.0  # the last epoch's: the time budget's guess at the next one
    done: bool = False  # the lr schedule has run out of halvings


@dataclass(frozen=True)
class PlateauRule:
    """Halve the lr (and reload the best weights) after `patience` epochs without a better
    validation NLL, but not before epoch `from_epoch`; stop after `max_halvings` halvings."""

    patience: int = 2
    decay: float = 0.5
    from_epoch: int = 16
    max_halvings: int = 5


def plateau_step(state: LoopState, epoch: int, val_nll: float, rule: PlateauRule) -> tuple[LoopState, str]:
    """The loop state after an epoch's validation, and what the rule did: "improved" (new best
    weights to save), "halved" (reload the best weights at the new lr) or "" (nothing)."""
    s = replace(state, epoch=epoch)
    if s.best_nll is None or val_nll < s.best_nll:
        return replace(s, best_nll=val_nll, best_epoch=epoch, bad_epochs=0), "improved"
    s.bad_epochs += 1
    if s.bad_epochs < rule.patience or epoch < rule.from_epoch:
        return s, ""
    halvings = s.halvings + 1
    return replace(
        s, bad_epochs=0, halvings=halvings, lr=s.lr * rule.decay, done=halvings >= rule.max_halvings
    ), "halved"


def how_training_ended(
    lr: float, decay: float, max_halvings: int, epochs: int, minutes: float | None, last: dict | None
) -> str:
    """How a finished run stopped, from its config's schedule and its last train_log line: its lr
    schedule ran out (the lr halved `max_halvings` times), or a budget stopped it first (and, for
    LaggingVAE, whether inside its aggressive phase). A model compared with another is trusted
    only when each ran to the end of its own schedule."""
    if not last:
        return "how its training ended is not recorded"
    if last.get("lr", lr) <= lr * decay**max_halvings * (1 + 1e-6):
        return f"its schedule ended (lr halved {max_halvings} times)"
    done = last.get("epoch", 0)
    phase = ", inside its aggressive phase" if last.get("aggressive") else ""
    if done >= epochs:
        return f"stopped at its {epochs}-epoch budget before its schedule ended (lr {last.get('lr'):g}{phase})"
    if minutes is not None:
        return f"stopped by its {minutes:g}-minute budget before its schedule ended (lr {last.get('lr'):g}{phase})"
    return f"stopped before its schedule ended (lr {last.get('lr'):g}{phase})"
