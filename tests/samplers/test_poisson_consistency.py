"""The Poisson data-consistency step: plain MLEM, and the penalised-EM proximal step (De Pierro surrogate)."""

from __future__ import annotations

import pytest
import torch

from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.physics import SPECTProjector
from monai_diffrecon.recon.em import mlem
from monai_diffrecon.samplers import PoissonMLEMConsistency


@pytest.fixture(scope="module")
def problem():
    g = torch.Generator().manual_seed(0)
    P = SPECTProjector(torch.arange(12, dtype=torch.float64) * 30.0, 4.0, object_shape=(12, 12, 4))
    x = torch.rand(1, 1, 12, 12, 4, generator=g, dtype=torch.float64) * 5 + 1
    y = torch.poisson(P(x), generator=g)
    z = x + 0.5 * torch.randn(x.shape, generator=g, dtype=torch.float64)
    return P, y, z


def _state(P, y, z, sigma_t):
    return {"x0": z.clone(), "y": y, "operator": P, "sigma_t": torch.tensor(sigma_t, dtype=torch.float64)}


def _objective(P, y, x, z, beta):
    ax = P(x)
    return float((ax - y * torch.log(ax.clamp_min(1e-30))).sum() + beta / 2 * ((x - z) ** 2).sum())


def test_plain_mlem_matches_recon_mlem(problem):
    P, y, z = problem
    out = PoissonMLEMConsistency(3)(_state(P, y, z, 1.0))["x0"]
    torch.testing.assert_close(out, mlem(P, y, 3, x0=z.clamp_min(1e-6)))


def test_prox_limits_and_monotone_objective(problem):
    P, y, z = problem
    mlem3 = PoissonMLEMConsistency(3)(_state(P, y, z, 1.0))["x0"]
    weak = PoissonMLEMConsistency(3, lam=1e-10)(_state(P, y, z, 1.0))["x0"]
    torch.testing.assert_close(weak, mlem3, rtol=1e-6, atol=1e-6)  # β → 0: MLEM
    strong = PoissonMLEMConsistency(3, lam=1e8)(_state(P, y, z, 1.0))["x0"]
    torch.testing.assert_close(strong, z.clamp_min(1e-6), rtol=1e-5, atol=1e-5)  # β → ∞: stays at x̂₀
    beta = 0.5 / 1.0**2
    values = [_objective(P, y, z.clamp_min(1e-6), z, beta)]
    for k in range(1, 8):  # penalised EM decreases the penalised objective at every iteration
        xk = PoissonMLEMConsistency(k, lam=0.5)(_state(P, y, z, 1.0))["x0"]
        values.append(_objective(P, y, xk, z, beta))
    assert all(b <= a + 1e-9 for a, b in zip(values, values[1:])), values
    # and β_t grows as σ_t shrinks: late steps move less from x̂₀
    d = [float((PoissonMLEMConsistency(2, lam=0.5)(_state(P, y, z, s))["x0"] - z.clamp_min(1e-6)).norm()) for s in (2.0, 0.5, 0.1)]
    assert d[0] > d[1] > d[2]


def test_rejects_bad_lambda():
    with pytest.raises(InvalidValueError):
        PoissonMLEMConsistency(2, lam=0.0)
