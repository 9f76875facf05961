"""The shift metric against closed forms: factorised Gaussians p = N(μ_p, s_p²), q = N(μ_q, s_q²) per coordinate,
whose denoisers and KL are exact. Image domain must return the KL; measurement domain (random masks with
coordinate-dependent observation rates) must too with W = E[P]^{-1/2}, and the paper's E[P]^{-3/2} must not."""

import math

import pytest
import torch

from monai_diffrecon.errors import InvalidValueError, ShapeError
from monai_diffrecon.metrics.shift import default_sigmas, denoiser_from_prior, kl_from_denoisers

D = 256
SIGMAS = torch.logspace(-3, 3, 400, dtype=torch.float64)


def gauss(mu, s):
    return lambda z, sigma: mu + s**2 / (s**2 + sigma**2) * (z - mu)


def kl_true(mu_p, s_p, mu_q, s_q):
    return float((torch.log(s_q / s_p) + (s_p**2 + (mu_p - mu_q) ** 2) / (2 * s_q**2) - 0.5).sum())


@pytest.fixture(scope="module")
def pair():
    g = torch.Generator().manual_seed(0)
    mu_p, mu_q = torch.rand(1, D, generator=g, dtype=torch.float64), torch.rand(1, D, generator=g, dtype=torch.float64)
    s_p = 0.5 + 0.2 * torch.rand(1, D, generator=g, dtype=torch.float64)
    s_q = 0.5 + 0.2 * torch.rand(1, D, generator=g, dtype=torch.float64)
    x = mu_p + s_p * torch.randn(2000, D, generator=g, dtype=torch.float64)
    return mu_p, s_p, mu_q, s_q, x


def test_image_domain_equal_variances_is_exact(pair):
    mu_p, s_p, mu_q, _, x = pair
    est = kl_from_denoisers(gauss(mu_p, s_p), gauss(mu_q, s_p), x[:4], SIGMAS)  # ΔD does not depend on x here
    assert est.kl == pytest.approx(kl_true(mu_p, s_p, mu_q, s_p), rel=2e-3)
    assert est.domain == "image" and est.integrand.shape == SIGMAS.shape


def test_image_domain_different_variances(pair):
    mu_p, s_p, mu_q, s_q, x = pair
    est = kl_from_denoisers(gauss(mu_p, s_p), gauss(mu_q, s_q), x, SIGMAS, batch_size=500)
    assert est.kl == pytest.approx(kl_true(mu_p, s_p, mu_q, s_q), rel=0.02)


def test_measurement_domain_weight_power(pair):
    mu_p, s_p, mu_q, s_q, x = pair
    g = torch.Generator().manual_seed(1)
    rate = 0.25 + 0.7 * torch.rand(1, D, generator=g, dtype=torch.float64)  # per-coordinate observation probability
    masks = (torch.rand(x.shape, generator=g, dtype=torch.float64) < rate).double()
    y = masks * x  # only the corrupted measurements of p
    truth = kl_true(mu_p, s_p, mu_q, s_q)
    half = kl_from_denoisers(gauss(mu_p, s_p), gauss(mu_q, s_q), y, SIGMAS, masks=masks, power=0.5, batch_size=500)
    assert half.kl == pytest.approx(truth, rel=0.03) and half.domain == "measurement"
    unweighted = kl_from_denoisers(gauss(mu_p, s_p), gauss(mu_q, s_q), y, SIGMAS, masks=masks, power=0.0, batch_size=500)
    assert unweighted.kl < 0.8 * truth  # without W the estimate is the observed fraction of the KL
    paper = kl_from_denoisers(gauss(mu_p, s_p), gauss(mu_q, s_q), y, SIGMAS, masks=masks, power=1.5, batch_size=500)
    assert paper.kl > 1.5 * truth  # E[P]^{-3/2} over-weights rarely observed coordinates


def test_identical_priors_give_zero(pair):
    mu_p, s_p, _, _, x = pair
    assert kl_from_denoisers(gauss(mu_p, s_p), gauss(mu_p, s_p), x[:8]).kl == 0.0


def test_denoiser_from_prior_matches_gaussian_tweedie():
    from monai_diffrecon.samplers.testing import gaussian_prior

    D_p = denoiser_from_prior(gaussian_prior(0.3, 0.8))
    z = torch.randn(2, 1, 4, 4, dtype=torch.float64)
    for sigma in (0.05, 0.5, 3.0):
        assert torch.allclose(D_p(z, sigma), gauss(0.3, 0.8)(z, sigma), atol=2e-3)


def test_denoiser_below_the_schedule_keeps_the_true_sigma():
    """Below the schedule's σ_min (0.01) ε̂ comes from σ_min but the step is σ ε̂, so D → x as σ → 0 (a clamped σ in
    the step made ‖ΔD‖²/σ³ blow up like σ_min²/σ³ on the paper's grid, which starts at 0.002)."""
    from monai_diffrecon.samplers.testing import gaussian_prior

    D = denoiser_from_prior(gaussian_prior(0.3, 0.8))
    z = torch.randn(2, 1, 4, 4, dtype=torch.float64)
    assert torch.allclose(D(z, 0.002), gauss(0.3, 0.8)(z, 0.002), atol=1e-6)
    # the integrand ‖ΔD‖²/σ³ below σ_lo matches the exact Gaussian one (it vanishes like σ instead of growing)
    Dq = denoiser_from_prior(gaussian_prior(0.0, 0.8))
    for sigma in (0.002, 0.005):
        ours = float(((D(z, sigma) - Dq(z, sigma)) ** 2).sum()) / sigma**3
        exact = float(((gauss(0.3, 0.8)(z, sigma) - gauss(0.0, 0.8)(z, sigma)) ** 2).sum()) / sigma**3
        assert ours == pytest.approx(exact, rel=0.05)


def test_default_grid_and_bad_input(pair):
    s = default_sigmas()
    assert s.numel() == 40 and s[0] == pytest.approx(0.002) and s[-1] == pytest.approx(0.002 + 39 * (80 - 0.002) / 99)
    mu_p, s_p, _, _, x = pair
    f = gauss(mu_p, s_p)
    with pytest.raises(ShapeError):
        kl_from_denoisers(f, f, x[:4], masks=torch.ones(3, D))
    with pytest.raises(InvalidValueError, match="observed"):
        m = torch.ones(4, D, dtype=torch.float64)
        m[:, 0] = 0
        kl_from_denoisers(f, f, x[:4], masks=m)
    with pytest.raises(InvalidValueError):
        kl_from_denoisers(f, f, x[:4], sigmas=torch.tensor([1.0, 0.5]))
    assert math.isfinite(kl_from_denoisers(f, f, x[:4], sigmas=[0.1, 0.2]).kl)
