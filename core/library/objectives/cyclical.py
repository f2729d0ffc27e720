"""CyclicalVAE (Fu et al. 2019): the ELBO with a cyclical KL weight beta (see schedules.cyclical):
4 cycles of `cycle_epochs` each, beta rising 0 -> 1 over the first half of each, then beta = 1.

A restart raises validation NLL while beta is small and the KL grows; under the lr-plateau rule
two such epochs would halve the lr and reload the best weights from before the restart, undoing
the cycle. Fu et al. keep the schedule running, so here the plateau rule waits for the last cycle
to end (`hold_lr_until_last_cycle`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .base import ScheduledKL
from .schedules import cyclical


@dataclass(frozen=True)
class Settings:
    cycles: int = 4  # number of beta cycles, then beta = 1
    cycle_epochs: float = 10.0  # length of one cycle
    cycle_ratio: float = 0.5  # share of a cycle over which beta rises from 0 to 1
    hold_lr_until_last_cycle: bool = True  # no lr halving nor best-weight reload before the cycles end


class CyclicalVAE(ScheduledKL):
    name = "cyclical"
    display_name = "CyclicalVAE"
    source = "Fu et al. 2019"
    Settings = Settings
    table2_row = 5
    legacy = {"hold_lr_until_last_cycle": False}

    def kl_weight(self) -> float:
        c = self.settings
        return cyclical(self.position, c.cycle_epochs, c.cycles, c.cycle_ratio)

    def decay_from_epoch(self, first: int) -> int:
        if not self.settings.hold_lr_until_last_cycle:
            return first
        return max(first, math.ceil(self.settings.cycles * self.settings.cycle_epochs) + 1)
