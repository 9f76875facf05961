"""Classical image-restoration baselines the natural-image bundles show beside their result (and the benchmarks
score): Wiener deconvolution, a noise-level estimate, and TV denoising.

* :func:`wiener` — ``X = K̂* Y / (|K̂|² + nsr)`` on ``y − mean(y)`` (the regularised filter's DC gain ``1/(1 + nsr)``
  would otherwise darken the image), with the circular blur's own transfer function;
* :func:`estimate_noise_std` — the robust median-absolute-deviation estimate of white Gaussian noise from the finest
  diagonal Haar coefficients (Donoho & Johnstone 1994): ``σ̂ = median|HH| / 0.6745``;
* :func:`tv_denoise` — the exact isotropic TV prox (:func:`~monai_diffrecon.regularizers.tv_prox_exact`) with
  ``λ = factor·σ̂``.
"""

from __future__ import annotations

import torch

from monai_diffrecon.errors import ShapeError
from monai_diffrecon.physics.blur import Blur
from monai_diffrecon.regularizers import tv_prox_exact

__all__ = ["estimate_noise_std", "tv_denoise", "wiener"]


def _check2d(y: torch.Tensor, name: str) -> None:
    if y.ndim != 2:
        raise ShapeError(f"{name}: a 2D image (H, W) required, got {tuple(y.shape)}")


def wiener(y: torch.Tensor, kernel: torch.Tensor, nsr: float) -> torch.Tensor:
    """Wiener deconvolution of the 2D image ``y`` by ``kernel`` (centred at ``(kh // 2, kw // 2)``, periodic)."""
    _check2d(y, "y")
    m = float(y.mean())
    H = Blur(kernel.to(y.dtype)[None, None]).transfer_function(y[None, None])[0, 0]
    return torch.fft.ifft2(torch.fft.fft2(y - m) * H.conj() / (H.abs() ** 2 + nsr)).real + m


def estimate_noise_std(y: torch.Tensor) -> float:
    """σ̂ of white Gaussian noise in the 2D image ``y`` (module doc)."""
    _check2d(y, "y")
    H, W = (y.shape[0] // 2) * 2, (y.shape[1] // 2) * 2
    v = y[:H, :W]
    hh = (v[0::2, 0::2] - v[0::2, 1::2] - v[1::2, 0::2] + v[1::2, 1::2]) / 2
    return float(hh.abs().median()) / 0.6745


def tv_denoise(y: torch.Tensor, factor: float = 1.0, sigma: float | None = None) -> torch.Tensor:
    """Isotropic TV denoising of the 2D image ``y`` with ``λ = factor·σ`` (``σ`` estimated when ``None``)."""
    _check2d(y, "y")
    s = estimate_noise_std(y) if sigma is None else float(sigma)
    return tv_prox_exact(y[None, None], factor * s, isotropic=True, max_iter=300, tol=1e-6)[0, 0]
