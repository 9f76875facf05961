"""SPECT preprocessing shared by the 2.5D SPECT sampler and its training cohort (DiffSPECT-3D, arXiv 2412.16573).

:class:`~monai_diffrecon.samplers.SPECT25D` at inference and
:func:`~monai_diffrecon.training.spect_cohort.simulate_volume` in training both go OSEM of the acquired data →
:func:`spect_scale` → :func:`spect_condition`, so the network sees the same condition in both. Images enter the prior
in [−1, 1] by ``x ↦ 2x/s − 1`` (s the scale) and μ-maps by ``μ/MU_REF·2 − 1``.

Shapes: volumes ``(1, 1, X, Y, Z)`` (Z axial), counts per voxel of the acquisition; μ in cm⁻¹ on the same grid.
"""

from __future__ import annotations

import torch

from monai_diffrecon.physics.blur import Blur, gaussian_kernel
from monai_diffrecon.transforms.array import Stack25D

__all__ = ["MU_REF", "spect_scale", "spect_condition"]

MU_REF = 0.15  # cm⁻¹: μ-maps enter the network as μ/MU_REF·2 − 1


def spect_scale(x_init: torch.Tensor, quantile: float = 0.995) -> torch.Tensor:
    """Robust intensity scale of a ``(1, 1, X, Y, Z)`` reconstruction: the ``quantile`` of its Gaussian-smoothed
    (σ = 1 voxel, per slice) values; never below 1e-6."""
    v = x_init[0].permute(3, 0, 1, 2)  # (Z, 1, X, Y)
    sm = Blur(gaussian_kernel(1.0, size=5, dtype=v.dtype, device=v.device))(v)
    return torch.quantile(sm.flatten().float(), quantile).clamp_min(1e-6).to(x_init.dtype)


def spect_condition(x_init: torch.Tensor, mu: torch.Tensor | None, scale: torch.Tensor,
                    neighbours: int) -> torch.Tensor:
    """Condition channels ``(Z, 2k+2, X, Y)``: the ``2k+1`` neighbouring slices of ``x_init`` (in [−1, 1] units)
    and the μ slice (zeros if no μ-map)."""
    v = (2 * x_init[0] / scale - 1).float()  # (1, X, Y, Z)
    nb = Stack25D(neighbours)(v)  # (Z, 2k+1, X, Y)
    m = torch.zeros_like(v) if mu is None else (2 * mu.reshape(v.shape) / MU_REF - 1).float()
    return torch.cat([nb, m.permute(3, 0, 1, 2)], dim=1)
