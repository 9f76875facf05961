"""Where the measured counts disagree with a reconstruction, and a correction that lets the data outrank the prior there.

A learned prior can erase what it has never seen (a lung lesion in a network trained on hearts) or add what the data do
not support, while whole-volume metrics still look better than OSEM's. Emission data say where this happened: under
the Poisson model ``y ~ Poisson(A x + s)`` the Pearson residuals ``r_i = (y_i − ŷ_i)/√ŷ_i`` of the right image have
mean 0 and variance 1, and their backprojection ``Aᵀr`` — the score of the Poisson likelihood, up to the weights — is a
zero-mean field whose variance ``Σ_i a_iv²`` is the backprojection of unit-variance noise. Smoothed over a region
(``sigma`` voxels) and divided by its standard deviation it is a z-map (:func:`count_discrepancy`): ``z > 0`` where
the data hold more counts than the image explains (an erased lesion), ``z < 0`` where the image holds activity the data
do not support. The variance is estimated with Rademacher probes (Hutchinson's estimator, "A stochastic estimator of
the trace of the influence matrix for Laplacian smoothing splines", 1990), smoothed, so the map costs a few projector
passes.

:func:`honour_counts` is the discrepancy principle applied per region instead of through one global weight: voxels
where ``|z|`` exceeds ``threshold`` (plus a margin of ``dilate`` voxels) get MLEM updates that pull them to the
counts (the rest of the image is left as it was); the difference it makes is the prior–data disagreement that a
sampler reports as part of its uncertainty.
"""

from __future__ import annotations

import math

import torch

from monai_diffrecon.errors import InvalidValueError, ShapeError
from monai_diffrecon.physics.functional.devices import randint

__all__ = ["count_discrepancy", "honour_counts"]


def _smooth3d(v: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian smoothing of ``(B, 1, X, Y, Z)`` (σ in voxels, zero padding, truncated at 3σ)."""
    if sigma <= 0:
        return v
    r = max(1, math.ceil(3 * sigma))
    k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=v.dtype, device=v.device) / sigma) ** 2)
    k = k / k.sum()
    out = v
    for d in range(3):
        shape = [1, 1, 1, 1, 1]
        shape[2 + d] = k.numel()
        pad = [0, 0, 0, 0, 0, 0]
        pad[2 * (2 - d)] = pad[2 * (2 - d) + 1] = r
        out = torch.nn.functional.conv3d(torch.nn.functional.pad(out, pad), k.reshape(shape))
    return out


def count_discrepancy(projector, counts: torch.Tensor, x: torch.Tensor, additive: torch.Tensor | None = None, sigma: float = 1.5,
                      probes: int = 8, generator: torch.Generator | None = None) -> torch.Tensor:
    """The regional z-map ``(B, 1, X, Y, Z)`` of the counts' disagreement with ``x`` (module doc).

    Args:
        projector: the system model ``A`` (e.g. :class:`~monai_diffrecon.physics.SPECTProjector`).
        counts: measured counts ``y``, the projector's output shape. x: the image ``(B, 1, X, Y, Z)``, ≥ 0.
        additive: expected additive counts ``s`` (scatter), like ``counts``.
        sigma: region size (Gaussian σ in voxels) over which residuals are pooled.
        probes: Rademacher probes of the null variance (more: a less noisy normaliser).
        generator: for the probes (default: a fixed seed, so the map is deterministic).
    """
    if probes < 1:
        raise InvalidValueError(f"probes: must be ≥ 1, got {probes}")
    est = projector(x)
    if additive is not None:
        if additive.shape != est.shape:
            raise ShapeError(f"additive: expected {tuple(est.shape)}, got {tuple(additive.shape)}")
        est = est + additive
    est = est.clamp_min(1e-3)
    num = _smooth3d(projector.adjoint((counts - est) / est.sqrt()), sigma)
    g = generator if generator is not None else torch.Generator(device=counts.device).manual_seed(0)
    var = torch.zeros_like(num)
    for _ in range(probes):
        eps = randint(0, 2, est.shape, g, device=est.device).to(est.dtype) * 2 - 1
        var = var + _smooth3d(projector.adjoint(eps), sigma) ** 2
    var = _smooth3d(var / probes, 2 * sigma)  # the variance field is smooth; smoothing removes most probe noise
    sens = projector.adjoint(torch.ones_like(est))
    floor = 1e-6 * float(var.max()) + 1e-30
    return torch.where(sens > 0, num / var.clamp_min(floor).sqrt(), torch.zeros_like(num))


def honour_counts(projector, counts: torch.Tensor, x: torch.Tensor, additive: torch.Tensor | None = None, threshold: float = 4.0,
                  iterations: int = 3, sigma: float = 1.5, dilate: int = 1, probes: int = 8,
                  generator: torch.Generator | None = None, subsets: int = 8) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x_corrected, mask, z)``: MLEM updates of ``x`` restricted to the regions where the counts disagree with it
    (``|z| > threshold``, dilated by ``dilate`` voxels), ``iterations`` OSEM passes (module doc). Where no region is
    flagged ``x`` is returned unchanged.

    Args:
        threshold: |z| above which a region is corrected (the z-map is roughly standard normal where ``x`` explains
            the counts; 4 keeps false alarms rare over a 64³ volume).
        iterations: (OS-)EM iterations inside the flagged regions.
        subsets: ordered subsets of views per iteration (for projectors with ``select_views``, like OSEM).
    """
    if threshold <= 0 or iterations < 0 or dilate < 0:
        raise InvalidValueError(f"threshold must be > 0, iterations and dilate ≥ 0 (got {threshold}, {iterations}, {dilate})")
    z = count_discrepancy(projector, counts, x, additive, sigma, probes, generator)
    mask = z.abs() > threshold
    if dilate:
        mask = torch.nn.functional.max_pool3d(mask.to(x.dtype), 2 * dilate + 1, 1, dilate) > 0
    if not bool(mask.any()) or iterations == 0:
        return x, mask, z
    n_sub = max(1, min(subsets, getattr(projector, "num_views", 1))) if hasattr(projector, "select_views") else 1
    parts = []
    for k in range(n_sub):
        if n_sub == 1:
            op, y_k, s_k = projector, counts, additive
        else:
            idx = torch.arange(k, projector.num_views, n_sub, device=counts.device)
            op, y_k = projector.select_views(idx), counts[:, :, idx]
            s_k = None if additive is None else additive[:, :, idx]
        parts.append((op, y_k, s_k, op.adjoint(torch.ones_like(y_k))))
    m = mask.to(x.dtype)
    xc = x.clamp_min(0) + m * 1e-3 * float(x.max())  # a floor inside the regions, so MLEM can raise zeroed voxels
    for _ in range(iterations):
        for op, y_k, s_k, sens in parts:
            est = op(xc) if s_k is None else op(xc) + s_k
            ratio = torch.where(est > 0, y_k / est.clamp_min(1e-12), torch.zeros_like(est))
            upd = torch.where(sens > 0, op.adjoint(ratio) / sens.clamp_min(1e-12), torch.ones_like(xc))
            xc = xc * (1 + m * (upd - 1))
    return xc, mask, z
