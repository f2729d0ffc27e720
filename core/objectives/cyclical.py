"""CyclicalVAE (Fu et al. 2019): the ELBO with a cyclical KL weight beta (see schedules.cyclical):
4 cycles of `cycle_epochs` each, beta rising 0 -> 1 over the first half of each, then beta = 1."""
from .base import ScheduledKL
from .schedules import cyclical


class CyclicalVAE(ScheduledKL):
    name = "cyclical"

    def kl_weight(self) -> float:
        c = self.cfg
        return cyclical(self.position, c.cycle_epochs, c.cycles, c.cycle_ratio)
