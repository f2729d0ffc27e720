"""MI and AU estimators on constructed Gaussian posteriors whose answers are known in closed form."""

from __future__ import annotations

import math

import pytest
import torch

from core.library.metrics import active_units, aggregate_mi, batch_mi, log_aggregate_density


def gaussian_posteriors(n: int, d: int, spread: float, noise: float, seed: int = 0):
    """mu_n ~ N(0, spread^2 I), q(z|x_n) = N(mu_n, noise^2 I): as n grows, I -> d/2 log(1 + spread^2/noise^2)."""
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(n, d, generator=g) * spread
    return mu, torch.full((n, d), 2 * math.log(noise))


@pytest.mark.parametrize("d,spread,noise", [(2, 1.0, 0.5), (4, 1.0, 1.0), (8, 0.5, 1.0)])
def test_aggregate_mi_matches_closed_form(d, spread, noise):
    mu, logvar = gaussian_posteriors(6000, d, spread, noise)
    truth = d / 2 * math.log(1 + spread**2 / noise**2)
    est = aggregate_mi(mu, logvar, samples=4, generator=torch.Generator().manual_seed(1))
    assert est == pytest.approx(truth, abs=0.06 + 0.03 * truth)


def test_mi_is_zero_for_collapsed_posteriors_and_capped_by_log_n():
    mu, logvar = gaussian_posteriors(3000, 16, 0.0, 1.0)
    assert abs(aggregate_mi(mu, logvar, generator=torch.Generator().manual_seed(0))) < 1e-6
    # Posteriors far apart and narrow: x is recoverable from z, so I = log N exactly.
    mu, logvar = gaussian_posteriors(500, 16, 10.0, 0.01)
    assert aggregate_mi(mu, logvar, generator=torch.Generator().manual_seed(0)) == pytest.approx(
        math.log(500), abs=1e-3
    )


def test_batch_mi_is_biased_low_by_small_batches():
    mu, logvar = gaussian_posteriors(5000, 8, 2.0, 0.5)
    whole = aggregate_mi(mu, logvar, generator=torch.Generator().manual_seed(0))
    batches = [
        float(batch_mi(m, lv, torch.Generator().manual_seed(i)))
        for i, (m, lv) in enumerate(zip(mu.split(50), logvar.split(50)))
    ]
    per_batch = sum(batches) / len(batches)
    assert per_batch <= math.log(50) + 1e-6  # a 50-component mixture carries at most log 50 nats
    assert per_batch < whole - 1.0  # 8 * log(1 + 16) / 2 = 11.3 nats cannot be seen in batches of 50


def test_log_aggregate_density_matches_direct_mixture():
    g = torch.Generator().manual_seed(3)
    mu, logvar, z = (
        torch.randn(40, 5, generator=g),
        torch.randn(40, 5, generator=g) * 0.3,
        torch.randn(7, 5, generator=g),
    )
    direct = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    expected = torch.logsumexp(direct.log_prob(z.unsqueeze(1)).sum(-1), dim=1) - math.log(40)
    assert torch.allclose(log_aggregate_density(z, mu, logvar, chunk=3).float(), expected, atol=1e-4)


def test_active_units_counts_dimensions_that_vary():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(2000, 10, generator=g) * torch.tensor([1.0, 0.5, 0.2, 0.15, 0.05, 0.05, 0.01, 0.0, 0.0, 0.0])
    au, var = active_units(mu)
    assert au == 4  # variances 1, 0.25, 0.04, 0.0225 pass 0.01; 0.0025 and below do not
    assert var[0] == pytest.approx(1.0, rel=0.1) and var[-1] == 0
    assert active_units(mu, threshold=0.001)[0] == 6
