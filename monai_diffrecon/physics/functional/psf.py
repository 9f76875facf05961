"""Gaussian blur matrices for the depth-dependent collimator–detector response (CDR).

A parallel-hole collimator blurs a source at distance ``d`` from its face with a Gaussian of
``FWHM(d) = a + b·d`` (``a`` in mm: intrinsic + collimator resolution at the face; ``b`` dimensionless).
:func:`gaussian_toeplitz` returns the zero-padded 1-D blur as an explicit symmetric Toeplitz matrix, so the blur
and its adjoint are the same matrix (exactly, not approximately).
"""

from __future__ import annotations

import math

import torch

__all__ = ["FWHM_TO_SIGMA", "gaussian_toeplitz", "fwhm_at_distance"]

FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


def fwhm_at_distance(a_mm: float, b: float, distance_mm: torch.Tensor) -> torch.Tensor:
    """``FWHM(d) = a + b·d`` in mm for distances ``d ≥ 0`` (negative distances are clamped to 0)."""
    return a_mm + b * distance_mm.clamp_min(0.0)


def gaussian_toeplitz(sigma: torch.Tensor, n: int) -> torch.Tensor:
    """Symmetric ``n × n`` Gaussian blur matrices ``G[i, j] = g(i − j) / Σ_m g(m)``.

    Args:
        sigma: ``(...,)`` standard deviations in samples (float64 recommended); ``σ → 0`` gives the identity.
        n: number of samples along the blurred axis.

    Returns:
        ``(..., n, n)``. The normaliser sums ``g`` over all integer offsets (not just those inside the matrix), so
        rows near the edge lose the mass that falls outside the detector (zero padding) and ``G = Gᵀ`` exactly.
    """
    s = sigma.clamp_min(1e-6)[..., None]
    m_max = max(n, int(math.ceil(8 * float(sigma.max()))) + 1) if sigma.numel() else n
    m = torch.arange(-m_max, m_max + 1, dtype=s.dtype, device=s.device)
    norm = torch.exp(-(m**2) / (2 * s**2)).sum(-1)  # (...,)
    # the matrix is Toeplitz: evaluate g once per offset |i − j| ∈ [0, n) and gather (same values as g(i − j))
    off = torch.arange(n, dtype=s.dtype, device=s.device)
    g = torch.exp(-(off**2) / (2 * s**2)) / norm[..., None]  # (..., n)
    i = torch.arange(n, device=s.device)
    return g[..., (i[:, None] - i[None, :]).abs()]
