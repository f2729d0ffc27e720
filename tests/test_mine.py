"""VAE-MINE's bound, through the real objective: rises with dependence, stays at 0 without it."""

from __future__ import annotations

import math

import pytest
import torch

from core.library.config import PRESETS
from core.library.models import TextVAE
from core.library.objectives.mi.estimators import dv_bound
from core.library.objectives.mine import VAEMine

CFG = PRESETS["tiny"]
H, Z = CFG.hidden_dim, CFG.z_dim


def make_pairs(dependent: bool, g: torch.Generator, w: torch.Tensor, m: int, scale: float = 1.0):
    """h like an LSTM state (in (-1, 1)); z = a unit-variance function of h plus unit noise, or pure noise.
    Dependent pairs carry I = 8 * log(2) / 2 = 2.77 nats. With scale < 1, h is 0.0015 + scale * that:
    what the paper-initialised encoder's state looks like (nearly the same for every sentence)."""
    u = torch.tanh(torch.randn(m, H, generator=g))
    h = u if scale == 1.0 else 0.0015 + scale * u
    if dependent:
        return h, u @ w + torch.randn(m, Z, generator=g)
    return h, torch.randn(m, Z, generator=g) * math.sqrt(2)


def all_pairs_dv(objective: VAEMine, h, z) -> float:
    """DV bound with every one of the M(M-1) mismatched pairs as negatives."""
    m = len(h)
    h, z = objective.energy.features(h), objective.energy.codes(z)[0]
    f = objective.energy(h.repeat_interleave(m, 0), z.repeat(m, 1)).view(m, m)
    off = f[~torch.eye(m, dtype=torch.bool)]
    return float(f.diagonal().mean() - (torch.logsumexp(off, 0) - math.log(off.numel())))


def train_energy(dependent: bool, steps: int = 1500, scale: float = 1.0, **objective_cfg) -> float:
    """Algorithm 1's psi update (SGD at the trainer's energy lr, clip 5, xi carried between batches)."""
    torch.manual_seed(0)
    objective = VAEMine(TextVAE(50, CFG), VAEMine.Settings(**objective_cfg), 50)
    g = torch.Generator().manual_seed(1)
    w = torch.randn(H, Z, generator=g)
    w = w / (torch.tanh(torch.randn(4096, H, generator=g)) @ w).std(0)
    opt = torch.optim.SGD(objective.energy.parameters(), lr=1.0 * objective.lr_scale("energy"))
    for _ in range(steps):
        psi_bound, _, log_xi_star, _ = objective.bounds(*make_pairs(dependent, g, w, 32, scale))
        opt.zero_grad()
        (-psi_bound).backward()
        torch.nn.utils.clip_grad_norm_(objective.energy.parameters(), 5.0)
        opt.step()
        if log_xi_star is not None:  # the DV estimator's tangent (the others have none)
            objective.log_xi.copy_(log_xi_star)
    with torch.no_grad():
        return sum(all_pairs_dv(objective, *make_pairs(dependent, g, w, 400, scale)) for _ in range(3)) / 3


def test_bound_rises_well_above_zero_when_z_depends_on_x():
    dv = train_energy(dependent=True)
    assert 1.0 < dv < 2.77 + 0.1  # a lower bound on 2.77 nats, and well above 0


def test_bound_stays_near_zero_when_z_ignores_x():
    assert abs(train_energy(dependent=False)) < 0.05


def test_bound_sees_x_through_a_nearly_constant_encoder_state():
    """The paper-initialised encoder's state differs by ~4e-4 between sentences; the energy standardises it."""
    assert train_energy(dependent=True, scale=4e-4) > 1.0
    assert abs(train_energy(dependent=False, scale=4e-4)) < 0.05
    assert train_energy(dependent=True, scale=4e-4, energy_standardize_h=False) < 0.1  # why the option exists


def offset_after_training(gauge: float, steps: int = 3000) -> float:
    """Start the energy's offset 3 nats off (xi* = e^-3), train psi on independent pairs, return log xi*."""
    torch.manual_seed(0)
    objective = VAEMine(TextVAE(50, CFG), VAEMine.Settings(energy_gauge=gauge), 50)
    with torch.no_grad():
        objective.energy.net[-1].bias += 3.0
    g = torch.Generator().manual_seed(1)
    opt = torch.optim.SGD(objective.energy.parameters(), lr=1.0 * objective.lr_scale("energy"))
    log_xi_star = torch.tensor(0.0)
    for _ in range(steps):
        psi_bound, _, log_xi_star, _ = objective.bounds(*make_pairs(False, g, None, 32))
        opt.zero_grad()
        (-psi_bound).backward()
        opt.step()
        objective.log_xi.copy_(log_xi_star)
    return float(log_xi_star)


def test_gauge_pulls_the_energy_offset_back_to_xi_one():
    """The bound ignores f's offset, so only the gauge can restore it: the offset drifted into tanh's
    flat floor in real training (xi ~ 1e4) and the energy stopped learning."""
    assert abs(offset_after_training(gauge=0.0)) > 2.5  # nothing holds it: it stays off or drifts to the floor
    assert abs(offset_after_training(gauge=0.01)) < 1.0


def test_xi_star_is_the_tangent_optimum_and_gives_the_dv_bound():
    torch.manual_seed(0)
    objective = VAEMine(TextVAE(50, CFG), VAEMine.Settings(), 50)
    h, z = torch.randn(64, H), torch.randn(64, Z)
    _, phi_bound, log_xi_star, dv = objective.bounds(h, z)
    f_marg = objective.energy(objective.energy.features(h), z.roll(1, 0)).detach()
    f_joint = objective.energy(objective.energy.features(h), z).detach()
    assert float(log_xi_star) == pytest.approx(-math.log(float(f_marg.exp().mean())), abs=1e-5)
    assert (
        float(phi_bound)
        == pytest.approx(float(dv_bound(f_joint, f_marg)), abs=1e-5)
        == pytest.approx(float(dv), abs=1e-6)
    )
    # Any other tangent gives a lower value: xi* is the argmax of -xi E[e^f] + log xi.
    for shift in (-1.0, -0.1, 0.1, 1.0):
        lx = log_xi_star + shift
        other = f_joint.mean() - (f_marg + lx).exp().mean() + lx + 1
        assert float(other) < float(phi_bound)


def test_gradients_reach_only_their_own_parameters():
    torch.manual_seed(0)
    objective = VAEMine(TextVAE(50, CFG), VAEMine.Settings(), 50)
    h, z = torch.randn(16, H, requires_grad=True), torch.randn(16, Z, requires_grad=True)
    psi_bound, phi_bound, _, _ = objective.bounds(h, z)
    psi_bound.backward(retain_graph=True)
    assert h.grad is None and z.grad is None
    assert all(p.grad is not None for p in objective.energy.parameters())
    objective.energy.zero_grad(set_to_none=True)
    phi_bound.backward()
    assert h.grad is not None and z.grad is not None
    assert all(p.grad is None for p in objective.energy.parameters())


def test_negative_pairs_are_a_derangement_and_the_loss_stays_finite():
    torch.manual_seed(0)
    objective = VAEMine(TextVAE(50, CFG), VAEMine.Settings(), 50)
    with torch.no_grad():  # an energy whose raw output is astronomically large: exp(raw) overflows float32
        for p in objective.energy.parameters():
            p.mul_(1e4)
    h, z = torch.randn(8, H), torch.randn(8, Z) * 100
    assert float(objective.energy.net(torch.cat([h, z], -1)).detach().abs().max()) > 1e3
    psi_bound, phi_bound, log_xi_star, dv = objective.bounds(h, z)
    assert all(torch.isfinite(t) for t in (psi_bound, phi_bound, log_xi_star, dv))
    assert not torch.equal(z.roll(1, 0), z) and (z.roll(1, 0) != z).any(-1).all()  # nobody meets their own z
