"""Closed-form correctness of priors and samplers with an analytic Gaussian prior (no trained weights).

Data x₀ ~ N(μ, s²I) on a 4×4 image; y = A x + n, n ~ N(0, σ_y²I). The posterior is Gaussian with covariance
Σ = (AᵀA/σ_y² + I/s²)⁻¹ and mean Σ(Aᵀy/σ_y² + μ/s²). Thousands of independent chains run as one batch.
"""

from __future__ import annotations

import math

import pytest
import torch

from monai_diffrecon.diffusion import DiffusionPrior, GaussianEpsilon, make_scheduler
from monai_diffrecon.physics import Blur, Mask, gaussian_kernel
from monai_diffrecon.samplers import DDNM, DPS, DiffPIR, PnPDM, ScorePnP, Unconditional

MU, S = 0.3, 0.8
H = W = 4
D = H * W


@pytest.fixture(scope="module")
def prior():
    sch = make_scheduler()
    return DiffusionPrior(GaussianEpsilon(sch.alphas_cumprod, MU, S), sch).double()


def _dense(op):
    e = torch.eye(D, dtype=torch.float64).reshape(D, 1, H, W)
    return op(e).reshape(D, -1).T


def _problem(kind: str, sigma_y: float, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    if kind == "inpaint":
        op = Mask((torch.rand(1, 1, H, W, generator=g) > 0.5).double())
    else:
        op = Blur(gaussian_kernel(0.7, size=3, dtype=torch.float64))
    x = MU + S * torch.randn(1, 1, H, W, dtype=torch.float64, generator=g)
    y = op(x) + sigma_y * torch.randn(op(x).shape, dtype=torch.float64, generator=g)
    A = _dense(op)
    cov = torch.linalg.inv(A.T @ A / sigma_y**2 + torch.eye(D, dtype=torch.float64) / S**2)
    mean = cov @ (A.T @ y.reshape(-1) / sigma_y**2 + MU / S**2)
    return op, y, mean, torch.diagonal(cov)


def _run(sampler, op, y, n, seed=1):
    Y = y.expand(n, *y.shape[1:]).contiguous()
    out = sampler(Y, op, generator=torch.Generator().manual_seed(seed), progress=False)
    return out.x[0].reshape(n, -1), out


@pytest.mark.parametrize("sigma", [0.005, 0.05, 0.5, 5.0, 50.0])
def test_denoise_is_the_mmse_denoiser(sigma):
    sch = make_scheduler()
    p = DiffusionPrior(GaussianEpsilon(sch.alphas_cumprod, 0.0, S), sch).double()
    x = torch.randn(8, 1, H, W, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ref = x * S**2 / (S**2 + sigma**2)
    assert float((p.denoise(x, sigma) - ref).norm() / ref.norm()) <= 1e-3


@pytest.mark.parametrize("steps, eta", [(1000, 1.0), (100, 0.0)])
def test_unconditional_sampling_reproduces_mean_and_variance(prior, steps, eta):
    n = 4000
    out = Unconditional(prior, (n, 1, H, W), steps, eta)(None, None, generator=torch.Generator().manual_seed(1), progress=False)
    x = out.x[0].reshape(n, -1)
    assert abs(float(x.mean()) - MU) / S <= 0.05
    assert abs(float(x.var(0).mean()) / S**2 - 1) <= 0.05
    assert out.nfe == steps


@pytest.mark.parametrize("kind", ["inpaint", "blur"])
def test_ddnm_matches_the_noiseless_posterior_mean(prior, kind):
    op, y, mean, _ = _problem(kind, 1e-3)
    x, _ = _run(DDNM(prior, 100, eta=1.0), op, y, 8000)
    assert float((x.mean(0) - mean).abs().max()) / S <= 0.05


@pytest.mark.parametrize("kind", ["inpaint", "blur"])
def test_diffpir_matches_the_posterior_mean(prior, kind):
    op, y, mean, _ = _problem(kind, 0.05)
    # λ = 1 is the Bayes-consistent weight for an exact prior (the paper's λ = 7 is tuned for natural images)
    x, _ = _run(DiffPIR(prior, 100, lam=1.0, zeta=1.0, sigma_y=0.05), op, y, 8000)
    assert float((x.mean(0) - mean).abs().max()) / S <= 0.05


@pytest.mark.parametrize("kind", ["inpaint", "blur"])
def test_pnp_dm_matches_posterior_mean_and_variance(prior, kind):
    op, y, mean, var = _problem(kind, 0.2)
    # one reverse step per training step in the prior step; ρ_min = σ_y/4 (the split-Gibbs bias is ~ρ²/σ_y²)
    x, _ = _run(PnPDM(prior, sigma_y=0.2, num_iters=100, burn_in=70, rho0=10.0, rho_decay=0.9, rho_min=0.05, prior_steps=1000), op, y, 6000)
    assert float((x.mean(0) - mean).abs().max()) / S <= 0.05
    assert float((x.var(0) / var - 1).abs().max()) <= 0.10


@pytest.mark.parametrize("kind", ["inpaint", "blur"])
def test_dps_reduces_the_residual_to_the_noise_level(prior, kind):
    op, y, _, _ = _problem(kind, 0.05)
    x, out = _run(DPS(prior, 300, zeta=0.3), op, y, 500)
    res = (op(out.x[0]) - y).reshape(500, -1).norm(dim=1).mean()
    noise = 0.05 * math.sqrt(y.numel())
    free = Unconditional(prior, (500, 1, H, W), 100)(None, None, generator=torch.Generator().manual_seed(2), progress=False).x[0]
    res_free = (op(free) - y).reshape(500, -1).norm(dim=1).mean()
    assert float(res) <= 1.1 * noise < float(res_free)


@pytest.mark.parametrize("algorithm", ["admm", "hqs", "red", "pgm"])
@pytest.mark.parametrize("kind", ["inpaint", "blur"])
def test_score_pnp_converges_to_the_map(prior, algorithm, kind):
    op, y, mean, _ = _problem(kind, 0.05)  # Gaussian: MAP = posterior mean
    # λ = 1 weighs data and prior as the posterior does (PGM: λα = 1); σ annealed 1 → 0.02
    lam = 2.0 if algorithm == "pgm" else 1.0
    s = ScorePnP(prior, algorithm, num_iters=300, sigma_start=1.0, sigma_end=0.02, lam=lam, sigma_y=0.05, red_step=0.5, pgm_alpha=0.5)
    x, _ = _run(s, op, y, 1)
    assert float((x[0] - mean).abs().max()) / S <= 0.05


def test_samplers_are_deterministic_given_the_seed(prior):
    op, y, _, _ = _problem("inpaint", 0.05)
    for smp in (DDNM(prior, 20), DiffPIR(prior, 20, sigma_y=0.05), DPS(prior, 20), PnPDM(prior, 0.05, 6, 3, prior_steps=20)):
        a, _ = _run(smp, op, y, 3, seed=5)
        b, _ = _run(smp, op, y, 3, seed=5)
        c, _ = _run(smp, op, y, 3, seed=6)
        assert torch.equal(a, b) and not torch.equal(a, c)


def test_output_statistics_and_nfe(prior):
    op, y, _, _ = _problem("inpaint", 0.05)
    out = DDNM(prior, 10)(y, op, generator=torch.Generator().manual_seed(0), num_samples=5, progress=False)
    assert out.x.shape == (5, 1, 1, H, W) and out.nfe == 50
    torch.testing.assert_close(out.mean, out.x.mean(0))
    torch.testing.assert_close(out.std, out.x.std(0, unbiased=False))
    with pytest.raises(Exception, match="generator"):
        DDNM(prior, 10)(y, op, generator=None)
