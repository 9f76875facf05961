"""SPECT preprocessing shared by the 2.5D SPECT sampler and its training cohort (DiffSPECT-3D, arXiv 2412.16573).

:class:`~monai_diffrecon.samplers.SPECT25D` at inference and
:func:`~monai_diffrecon.training.spect_cohort.simulate_volume` in training both go OSEM of the acquired data →
:func:`spect_scale` → :func:`spect_condition`, so the network sees the same condition in both. Images enter the prior
in [−1, 1] by ``x ↦ 2x/s − 1`` (s the scale), μ-maps by ``μ/MU_REF·2 − 1`` and CT images by ``HU/1000`` (clipped to
[−1000, 2000] HU).

The condition of one axial slice (:func:`spect_condition`): its ``2k+1`` neighbouring slices of the initial
reconstruction (DDPET-3D / DiffSPECT-3D's 2.5D strategy), optionally the same reconstruction smoothed along z with
Gaussians of ``z_context`` slices (a volume-level encoding: context from the whole volume at a bounded channel count,
where the paper stacks many neighbours), the μ slice, and optionally the CT slice (the anatomical image the paper
conditions on).

The full-dose reference (:func:`full_dose_reference`) is what DiffSPECT-3D trains to and is scored against: the
reconstruction of the full-dose, full-view acquisition (OSEM with the full system model, scatter as an additive term,
optional Gaussian post-filter). Its defaults (8 iterations × 8 subsets, σ = 0.5 voxel) are the best heart PSNR
against the phantom over iterations {2, 4, 8, 16} × σ {0, 0.5, 1, 1.5, 2} on the first 4 validation phantoms of the
split registry with Compton scatter and the TEW estimate (13.25 dB; 16 iterations unfiltered, the choice before scatter
was simulated, 12.28 dB) — the protocol ``benchmarks/spect.py`` tunes its reference with.

Shapes: volumes ``(1, 1, X, Y, Z)`` (Z axial), counts per voxel of the acquisition; μ in cm⁻¹ and CT in HU on the
same grid ``(X, Y, Z)`` (leading singleton dimensions allowed).
"""

from __future__ import annotations

import math

import torch

from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.physics.blur import Blur, gaussian_kernel
from monai_diffrecon.transforms.array import Stack25D

__all__ = ["MU_REF", "HU_RANGE", "REFERENCE", "condition_channels", "full_dose_reference", "gaussian_filter3d",
           "spect_condition", "spect_scale"]

MU_REF = 0.15  # cm⁻¹: μ-maps enter the network as μ/MU_REF·2 − 1
HU_RANGE = (-1000.0, 2000.0)  # CT images enter the network as clip(HU)/1000
#: the full-dose reference reconstruction: OSEM iterations, subsets, Gaussian post-filter σ (voxels)
REFERENCE = {"iterations": 8, "subsets": 8, "sigma": 0.5}


def spect_scale(x_init: torch.Tensor, quantile: float = 0.995) -> torch.Tensor:
    """Robust intensity scale of a ``(1, 1, X, Y, Z)`` reconstruction: the ``quantile`` of its Gaussian-smoothed
    (σ = 1 voxel, per slice) values; never below 1e-6."""
    v = x_init[0].permute(3, 0, 1, 2)  # (Z, 1, X, Y)
    sm = Blur(gaussian_kernel(1.0, size=5, dtype=v.dtype, device=v.device))(v)
    return torch.quantile(sm.flatten().float(), quantile).clamp_min(1e-6).to(x_init.dtype)


def condition_channels(neighbours: int, z_context=(), ct_channel: bool = False) -> int:
    """Number of condition channels :func:`spect_condition` makes (the network's ``cond_channels``)."""
    return 2 * neighbours + 1 + len(tuple(z_context)) + 1 + int(bool(ct_channel))


def _z_smooth(v: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian smoothing of ``(1, X, Y, Z)`` along z (σ in slices, replicate padding, truncated at 3σ)."""
    r = max(1, math.ceil(3 * sigma))
    k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=v.dtype, device=v.device) / sigma) ** 2)
    k = k / k.sum()
    _, X, Y, Z = v.shape
    w = torch.nn.functional.pad(v.reshape(X * Y, 1, Z), (r, r), mode="replicate")
    return torch.nn.functional.conv1d(w, k.reshape(1, 1, -1)).reshape(1, X, Y, Z)


def spect_condition(x_init: torch.Tensor, mu: torch.Tensor | None, scale: torch.Tensor, neighbours: int,
                    z_context=(), ct: torch.Tensor | None = None, ct_channel: bool = False) -> torch.Tensor:
    """Condition channels ``(Z, C, X, Y)`` (module doc), in this order: the ``2k+1`` neighbouring slices of ``x_init``
    (in [−1, 1] units), one slice of ``x_init`` smoothed along z per σ in ``z_context`` (slices), the μ slice (zeros
    if no μ-map) and, with ``ct_channel``, the CT slice (HU/1000; without a CT image it is synthesised from μ with
    the inverse of the HU → μ model, −1000 HU where μ = 0). ``C = condition_channels(neighbours, z_context, ct_channel)``."""
    v = (2 * x_init[0] / scale - 1).float()  # (1, X, Y, Z)
    parts = [Stack25D(neighbours)(v)]  # (Z, 2k+1, X, Y)
    for sig in z_context:
        if not float(sig) > 0:
            raise InvalidValueError(f"z_context: smoothing widths must be > 0 slices, got {tuple(z_context)}")
        parts.append(_z_smooth(v, float(sig)).permute(3, 0, 1, 2))
    m = torch.zeros_like(v) if mu is None else (2 * mu.reshape(v.shape) / MU_REF - 1).float()
    parts.append(m.permute(3, 0, 1, 2))
    if ct_channel:
        if ct is None:
            from monai_diffrecon.io.dicom import mu_to_hu

            hu = torch.full_like(v, HU_RANGE[0]) if mu is None else torch.where(
                mu.reshape(v.shape) > 0, mu_to_hu(mu.reshape(v.shape)).to(v.dtype), torch.full_like(v, HU_RANGE[0]))
        else:
            hu = ct.reshape(v.shape).to(v.dtype)
        parts.append((hu.clamp(*HU_RANGE) / 1000.0).permute(3, 0, 1, 2))
    return torch.cat(parts, dim=1)


def gaussian_filter3d(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Isotropic Gaussian post-filter of a ``(1, 1, X, Y, Z)`` volume (σ in voxels; 0 returns ``x``)."""
    if sigma <= 0:
        return x
    k = gaussian_kernel(sigma, size=2 * math.ceil(3 * sigma) + 1, dtype=x.dtype, device=x.device)
    v = x[0, 0]
    v = Blur(k)(v.permute(2, 0, 1)[:, None])[:, 0].permute(1, 2, 0)  # in-plane (X, Y) per z-slice
    k1 = k.sum(0)
    k1 = k1 / k1.sum()
    r = k1.numel() // 2
    vz = torch.nn.functional.pad(v.reshape(-1, 1, v.shape[-1]), (r, r), mode="replicate")
    v = torch.nn.functional.conv1d(vz, k1.reshape(1, 1, -1)).reshape(v.shape)
    return v[None, None]


def full_dose_reference(projector, counts: torch.Tensor, additive: torch.Tensor | None = None, iterations: int | None = None,
                        subsets: int | None = None, sigma: float | None = None) -> torch.Tensor:
    """The full-dose, full-view reconstruction ``(1, 1, X, Y, Z)`` of ``counts`` (module doc): OSEM with the system
    model ``projector`` and the ``additive`` scatter estimate, then the Gaussian post-filter; ``None`` arguments take
    :data:`REFERENCE`."""
    from monai_diffrecon.recon.em import osem

    it = REFERENCE["iterations"] if iterations is None else iterations
    sub = REFERENCE["subsets"] if subsets is None else subsets
    sig = REFERENCE["sigma"] if sigma is None else sigma
    x = osem(projector, counts, it, max(1, min(sub, projector.num_views)), additive=additive)
    return gaussian_filter3d(x, sig)
