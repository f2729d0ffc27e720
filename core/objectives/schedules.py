"""KL-weight schedules as pure functions of the training position (epochs done, fractional).

The loop sets the position before every step as (epoch - 1) + batch_index / batches_per_epoch, so a
schedule depends only on where training is, never on wall time, and a resumed run replays it exactly.
"""
from __future__ import annotations


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
