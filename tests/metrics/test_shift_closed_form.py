"""The shift metric on priors with closed-form denoisers and KL (monai_diffrecon.metrics.closed_form_priors): the
denoisers are the exact MMSE estimators, the image-domain estimate returns the exact KL for full-covariance Gaussians
and mixtures, and the k-space (Fourier, the paper's MRI case) measurement-domain estimate is exact for stationary
Gaussians under conjugate-symmetric line masks."""

from __future__ import annotations

import math

import pytest
import torch

from monai_diffrecon.errors import InvalidValueError, ShapeError
from monai_diffrecon.metrics.closed_form_priors import GaussianMixturePrior, fit_gaussian, fit_gaussian_mixture, gaussian_kl, mixture_kl
from monai_diffrecon.metrics.shift import kl_from_denoisers

SIGMAS = torch.logspace(-4, 4, 300, dtype=torch.float64)


def correlated(n, seed, shape=(1, 4, 4)):
    g = torch.Generator().manual_seed(seed)
    d = math.prod(shape)
    mix = torch.randn(d, d, generator=g, dtype=torch.float64) / math.sqrt(d)
    return (torch.randn(n, d, generator=g, dtype=torch.float64) @ mix + torch.rand(d, generator=g, dtype=torch.float64)).reshape(n, *shape)


def test_denoiser_is_the_posterior_mean():
    p = fit_gaussian_mixture(torch.cat([correlated(500, 0), correlated(500, 1) + 2]), 2, torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(3)
    x = p.sample(200_000, g)
    z = x + 0.7 * torch.randn(x.shape, generator=g, dtype=torch.float64)
    # E[(x − D(z)) h(z)] = 0 for any h: orthogonality of the MMSE residual, checked for h = z
    r = (x - p.denoise(z, 0.7)).reshape(x.shape[0], -1)
    assert float((r * z.reshape(x.shape[0], -1)).mean(0).abs().max()) < 0.02
    assert float(r.pow(2).mean()) < float((x - z).pow(2).mean())


def test_gaussian_kl_matches_monte_carlo_and_is_zero_on_itself():
    p, q = fit_gaussian(correlated(3000, 0)), fit_gaussian(correlated(3000, 1), rank=5)
    mc, se = mixture_kl(p, q, 40_000, torch.Generator().manual_seed(0))
    assert gaussian_kl(p, q) == pytest.approx(mc, abs=4 * se)
    assert gaussian_kl(p, p) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("kind", ["gaussian", "pca", "mixture"])
def test_image_domain_estimate_is_exact(kind):
    a, b = correlated(3000, 0), correlated(3000, 1) * 1.2 + 0.3
    g = torch.Generator().manual_seed(0)
    if kind == "mixture":
        p = fit_gaussian_mixture(torch.cat([a, a + 1.5]), 2, g)
        q = fit_gaussian_mixture(torch.cat([b, b - 1.0]), 2, g)
        truth, se = mixture_kl(p, q, 40_000, g)
    else:
        p, q = fit_gaussian(a, rank=6 if kind == "pca" else None), fit_gaussian(b, rank=6 if kind == "pca" else None)
        truth, se = gaussian_kl(p, q), 0.0
    est = kl_from_denoisers(p.denoise, q.denoise, p.sample(3000, g), SIGMAS, batch_size=1000)
    assert est.kl == pytest.approx(truth, rel=0.05, abs=4 * se)


def stationary(shape, seed):
    """A real stationary (circulant) Gaussian on ``shape`` = (1, H, W): covariance diagonal in the orthonormal 2D FFT."""
    g = torch.Generator().manual_seed(seed)
    H, W = shape[-2:]
    fy, fx = torch.meshgrid(torch.fft.fftfreq(H, dtype=torch.float64), torch.fft.fftfreq(W, dtype=torch.float64), indexing="ij")
    spec = 0.05 + 1.0 / (1 + (fy**2 + fx**2) * (20 + 20 * float(torch.rand(1, generator=g, dtype=torch.float64))))
    eye = torch.eye(H * W, dtype=torch.float64).reshape(H * W, 1, H, W)
    cov = torch.fft.ifft2(spec * torch.fft.fft2(eye, norm="ortho"), norm="ortho").real.reshape(H * W, H * W)
    mean = 0.2 * torch.randn(H * W, generator=g, dtype=torch.float64)
    return GaussianMixturePrior(torch.ones(1), mean[None], cov[None], shape)


def test_kspace_lines_estimate_is_exact_for_stationary_gaussians():
    shape = (1, 8, 8)
    p, q = stationary(shape, 0), stationary(shape, 1)
    g = torch.Generator().manual_seed(2)
    N = 1500
    x = p.sample(N, g)
    sig = torch.logspace(-3, 3, 120, dtype=torch.float64)
    H = shape[-2]
    # conjugate-symmetric random lines: line ky and −ky together, each pair with its own probability
    pair_rate = 0.3 + 0.6 * torch.rand(H // 2 + 1, generator=g, dtype=torch.float64)
    keep = torch.rand(N, H // 2 + 1, generator=g, dtype=torch.float64) < pair_rate
    ky = torch.arange(H)
    lines = keep[:, torch.minimum(ky, (H - ky) % H)].double()  # (N, H)
    masks = lines[:, None, :, None].expand(N, 1, H, shape[-1]).to(torch.complex128)
    rate = pair_rate[torch.minimum(ky, (H - ky) % H)][None, None, :, None].expand(1, 1, H, shape[-1])
    V = lambda v: torch.fft.fft2(v, norm="ortho")  # noqa: E731
    V_inv = lambda k: torch.fft.ifft2(k, norm="ortho").real  # noqa: E731
    y = masks * V(x)
    est = kl_from_denoisers(p.denoise, q.denoise, y, sig, masks=masks, mask_mean=rate, transform=(V, V_inv), batch_size=1500)
    assert est.domain == "measurement"
    assert est.kl == pytest.approx(gaussian_kl(p, q), rel=0.05)
    unweighted = kl_from_denoisers(p.denoise, q.denoise, y, sig, masks=masks, mask_mean=rate, transform=(V, V_inv), batch_size=1500, power=0.0)
    assert unweighted.kl < 0.85 * gaussian_kl(p, q)


def test_bad_inputs():
    with pytest.raises(ShapeError):
        GaussianMixturePrior(torch.ones(1), torch.zeros(1, 3), torch.eye(4)[None], (4,))
    with pytest.raises(InvalidValueError):
        GaussianMixturePrior(torch.ones(1), torch.zeros(1, 2), -torch.eye(2)[None], (2,))
    with pytest.raises(InvalidValueError):
        gaussian_kl(fit_gaussian_mixture(correlated(50, 0), 2, torch.Generator().manual_seed(0)), fit_gaussian(correlated(50, 1)))
    with pytest.raises(InvalidValueError):
        fit_gaussian(correlated(50, 0), rank=16)
    with pytest.raises(InvalidValueError):
        kl_from_denoisers(lambda x, s: x, lambda x, s: x, torch.zeros(2, 4), transform=(lambda v: v, lambda v: v))


def test_measurement_domain_denoiser():
    p = fit_gaussian_mixture(torch.cat([correlated(1000, 0), correlated(1000, 1) + 2]), 2, torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(4)
    x = p.sample(100_000, g)
    z = x + 0.5 * torch.randn(x.shape, generator=g, dtype=torch.float64)
    torch.testing.assert_close(p.denoise_observed(z[:8], 0.5, torch.ones_like(z[:8])), p.denoise(z[:8], 0.5))
    m = (torch.rand(x.shape, generator=g, dtype=torch.float64) < 0.5).double()
    y = m * z
    r = (x - p.denoise_observed(y, 0.5, m)).reshape(x.shape[0], -1)
    assert float((r * y.reshape(x.shape[0], -1)).mean(0).abs().max()) < 0.03  # MMSE residual ⟂ the measurements
    assert float(r.pow(2).mean()) < float((x - p.denoise(y, 0.5)).pow(2).reshape(x.shape[0], -1).mean())
    est = kl_from_denoisers(p.denoise_observed, p.denoise_observed, y[:16], torch.logspace(-2, 1, 5, dtype=torch.float64), masks=m[:16],
                            mask_aware=True)
    assert est.kl == 0.0
    with pytest.raises(InvalidValueError):
        kl_from_denoisers(p.denoise_observed, p.denoise_observed, y[:4], mask_aware=True)
