"""Coil sensitivities: birdcage simulation and ESPIRiT estimation from the auto-calibration (ACS) region.

* :func:`birdcage_maps` — ``C`` loop elements evenly spaced on a circle around the field of view; each element's
  sensitivity falls off as ``1/ρ`` with the distance ``ρ`` to the element and carries the azimuthal phase of the
  position seen from the element plus the element's own phase offset. Normalised so ``Σ_c |S_c|² = 1``.
* :func:`estimate_coil_maps` — ESPIRiT (Uecker et al., MRM 2014, doi:10.1002/mrm.24751): the calibration matrix of
  ``k × k`` multi-coil patches of the ACS block is decomposed by SVD; its signal subspace defines, at every pixel,
  a ``C × C`` matrix whose eigenvector with eigenvalue ≈ 1 is the sensitivity vector (up to a phase, fixed here
  relative to coil 0). Pixels whose top eigenvalue is below ``crop`` are set to zero (outside the object).
"""

from __future__ import annotations

import math

import torch

from monai_diffrecon.errors import InvalidValueError, ShapeError
from monai_diffrecon.physics.base import check_tensor
from monai_diffrecon.physics.functional.fft import ifftc

__all__ = ["birdcage_maps", "estimate_coil_maps", "rss"]


def rss(x: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Root-sum-of-squares over the coil axis (keeps the axis)."""
    return x.abs().pow(2).sum(dim, keepdim=True).sqrt()


def birdcage_maps(
    num_coils: int,
    shape: tuple[int, ...],
    radius: float = 1.5,
    rings: int = 1,
    dtype: torch.dtype = torch.complex64,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Simulated birdcage coil sensitivities.

    Args:
        num_coils: number of coil elements ``C`` (divisible by ``rings`` in 3D).
        shape: ``(H, W)`` or ``(D, H, W)``.
        radius: element circle radius relative to the half field of view (> 1 puts the elements outside).
        rings: 3D only: number of element rings stacked along ``D``; each ring's sensitivity decays along ``D``
            with its distance to the ring.

    Returns:
        complex ``(1, C, *shape)`` with ``Σ_c |S_c|² = 1`` at every voxel, on ``device`` (computed in float64 on the
        CPU: the same maps on every device).
    """
    if num_coils < 1 or len(shape) not in (2, 3):
        raise ShapeError(f"birdcage_maps: need num_coils ≥ 1 and a 2D/3D shape, got {num_coils}, {shape}")
    if len(shape) == 3 and num_coils % rings:
        raise InvalidValueError(f"rings: {rings} does not divide num_coils {num_coils}")
    H, W = shape[-2:]
    y = (torch.arange(H, dtype=torch.float64, device="cpu") - H / 2) / (H / 2)
    x = (torch.arange(W, dtype=torch.float64, device="cpu") - W / 2) / (W / 2)
    yy, xx = torch.meshgrid(y, x, indexing="ij")
    per_ring = num_coils // rings if len(shape) == 3 else num_coils
    maps = []
    for c in range(num_coils):
        k = c % per_ring
        phi = 2 * math.pi * k / per_ring
        dy, dx = yy - radius * math.sin(phi), xx - radius * math.cos(phi)
        rho = torch.sqrt(dx**2 + dy**2)
        s = torch.polar(1.0 / rho, torch.atan2(dy, dx) - phi)
        if len(shape) == 3:
            D = shape[0]
            z = (torch.arange(D, dtype=torch.float64, device="cpu") - D / 2) / (D / 2)
            ring = c // per_ring
            zc = -1 + (2 * ring + 1) / rings
            s = s[None] / torch.sqrt(1 + ((z - zc) / (2.0 / rings)) ** 2)[:, None, None]
        maps.append(s)
    m = torch.stack(maps)[None]
    return (m / rss(m)).to(device=device, dtype=dtype)


def estimate_coil_maps(
    kspace: torch.Tensor,
    calib_size: int = 24,
    kernel_size: int = 6,
    threshold: float = 0.02,
    crop: float = 0.95,
) -> torch.Tensor:
    """ESPIRiT coil sensitivities from the fully sampled k-space centre (2D).

    Args:
        kspace: complex ``(C, H, W)`` or ``(B, C, H, W)``, centred (DC at ``n // 2``); only the central
            ``calib_size²`` block is used, so undersampled data with an ACS block works.
        calib_size: width of the calibration block (must be fully sampled).
        kernel_size: ESPIRiT kernel width ``k``.
        threshold: singular values above ``threshold · σ_max`` span the signal subspace.
        crop: top eigenvalue below which a pixel's maps are set to zero.

    Raises:
        InvalidValueError: no pixel passes ``crop`` (the maps would be all zero: a calibration block too small for the
            kernel), instead of returning maps that silently null every reconstruction.

    Returns:
        complex ``(B, C, H, W)`` maps (``B = 1`` for 3-D input), phase relative to coil 0.
    """
    check_tensor(kspace, "kspace", complex_=True)
    k = kspace[None] if kspace.ndim == 3 else kspace
    if k.ndim != 4:
        raise ShapeError(f"kspace: expected (C, H, W) or (B, C, H, W), got {tuple(kspace.shape)}")
    B, C, H, W = k.shape
    if not (kernel_size < calib_size <= min(H, W)):
        raise InvalidValueError(f"need kernel_size < calib_size ≤ min(H, W), got {kernel_size}, {calib_size}, {(H, W)}")
    out = []
    for b in range(B):
        cy, cx = H // 2 - calib_size // 2, W // 2 - calib_size // 2
        calib = k[b, :, cy : cy + calib_size, cx : cx + calib_size].to(torch.complex128)
        patches = calib.unfold(1, kernel_size, 1).unfold(2, kernel_size, 1)  # (C, n, n, k, k)
        A = patches.permute(1, 2, 0, 3, 4).reshape(-1, C * kernel_size**2)
        _, s, vh = torch.linalg.svd(A, full_matrices=False)
        keep = s > threshold * s[0]
        kernels = vh[keep].reshape(-1, C, kernel_size, kernel_size)  # signal-subspace patch vectors
        pad = torch.zeros(kernels.shape[0], C, H, W, dtype=kernels.dtype, device=kernels.device)
        oy, ox = H // 2 - kernel_size // 2, W // 2 - kernel_size // 2
        pad[:, :, oy : oy + kernel_size, ox : ox + kernel_size] = kernels
        a = ifftc(pad) * math.sqrt(H * W)  # unnormalised inverse DFT of each kernel: (n, C, H, W)
        a = a.reshape(a.shape[0], C, H * W)
        G = torch.einsum("jcp,jdp->pcd", a, a.conj()) / kernel_size**2  # (HW, C, C), Hermitian
        evals, evecs = torch.linalg.eigh(G)
        top = evecs[..., -1]  # (HW, C)
        lam = evals[..., -1]
        ph = top[:, :1] / top[:, :1].abs().clamp_min(1e-30)
        maps = top * ph.conj()
        maps = maps * (lam > crop)[:, None]
        if not bool((lam > crop).any()):
            raise InvalidValueError(
                f"ESPIRiT found no pixel with top eigenvalue > crop = {crop} (slice {b}; largest {float(lam.max()):.3f}): a "
                f"{calib_size}-line calibration block with kernel {kernel_size} is too small for this data; acquire more "
                "ACS lines, or lower kernel_size/crop")
        out.append(maps.T.reshape(C, H, W))
    return torch.stack(out).to(kspace.dtype)
