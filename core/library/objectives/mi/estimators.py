"""What VAE-MINE ascends, from the energies of its pairs: the paper's DV bound with its tangent, JSD, InfoNCE.

Each estimator takes the energies twice, as the energy's own update sees them (inputs detached) and as
the encoder's sees them (energy frozen), and returns (psi_objective, phi_objective, log_xi or None,
estimate): both objectives are ascended, log_xi is the tangent the next batch starts from, and the
estimate is a lower bound on I in nats. Pairs are (joint energies, negative energies), except for
InfoNCE, which reads the score matrix f(x_i, z_j) (joint pairs on its diagonal) and None.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F


def dv_bound(f_joint: torch.Tensor, f_marg: torch.Tensor) -> torch.Tensor:
    """Donsker-Varadhan value mean f_joint - log mean exp f_marg: the bound at xi = xi*."""
    return f_joint.mean() - (torch.logsumexp(f_marg, 0) - math.log(f_marg.numel()))


def jsd_value(f_joint: torch.Tensor, f_marg: torch.Tensor) -> torch.Tensor:
    """Hjelm et al. (2019)'s Jensen-Shannon estimator, E_joint[-softplus(-f)] - E_marg[softplus(f)]:
    not a bound on I in nats, but its gradient does not weight pairs by exp f."""
    return -F.softplus(-f_joint).mean() - F.softplus(f_marg).mean()


def infonce_value(scores: torch.Tensor) -> torch.Tensor:
    """van den Oord et al. (2018): scores[i, j] = f(x_i, z_j), the joint pairs on the diagonal of the
    first B columns; mean_i (f_ii - log mean_j exp f_ij), a bound on I of at most log(columns)."""
    b = scores.size(0)
    joint = scores[torch.arange(b), torch.arange(b)]
    return (joint - torch.logsumexp(scores, 1)).mean() + math.log(scores.size(1))


def tangent(psi_pairs, phi_pairs, log_xi: torch.Tensor, gauge: float, xi: str):
    """The paper's estimator, Algorithm 1 lines 6-12:
    line 7 (Eq. 12): psi ascends mean f(x, z) - xi * mean exp f(x, z') at the last batch's tangent xi,
      minus the gauge `gauge` * (log mean exp f_marg)^2 that keeps the energy's free offset near xi = 1;
    line 9 (Eq. 13): xi* = 1 / mean exp f(x, z'), the argmax of -xi A + log xi (xi="optimal"), or the
      printed xi = mean exp f(x, z') (xi="printed", which is not the argmax), kept as log xi;
    line 12 (Eq. 14): phi ascends mean f(x, z) - xi* mean exp f(x, z') + log xi* + 1, which at the
      optimal xi* is the Donsker-Varadhan bound (the estimate)."""
    (psi_a, psi_b), (phi_a, phi_b) = psi_pairs, phi_pairs
    estimate = dv_bound(phi_a.detach(), phi_b.detach())
    log_a = torch.logsumexp(psi_b, 0) - math.log(psi_b.numel())  # log mean exp f_marg; 0 at the paper's xi = 1
    psi = psi_a.mean() - (psi_b + log_xi.clone()).exp().mean() - gauge * log_a.pow(2)
    new_log_xi = (-log_a if xi == "optimal" else log_a).detach()
    phi = phi_a.mean() - (phi_b + new_log_xi).exp().mean() + new_log_xi + 1
    return psi, phi, new_log_xi, estimate


def jsd(psi_pairs, phi_pairs, log_xi: torch.Tensor, gauge: float, xi: str):
    """Both updates ascend the JSD value; the estimate is the DV value of the same energies."""
    (psi_a, psi_b), (phi_a, phi_b) = psi_pairs, phi_pairs
    return jsd_value(psi_a, psi_b), jsd_value(phi_a, phi_b), None, dv_bound(phi_a.detach(), phi_b.detach())


def infonce(psi_pairs, phi_pairs, log_xi: torch.Tensor, gauge: float, xi: str):
    """Both updates ascend the InfoNCE value of the score matrix, which is also the estimate."""
    (psi_scores, _), (phi_scores, _) = psi_pairs, phi_pairs
    return infonce_value(psi_scores), infonce_value(phi_scores), None, infonce_value(phi_scores.detach())


ESTIMATORS = {"dv": tangent, "jsd": jsd, "infonce": infonce}
