"""Stateless multi-coil (SENSE) kernels for learning in k-space, where every sample has its own mask.

Shapes: image ``x`` complex ``(B, 1, H, W)``; coil maps ``(B | 1, C, H, W)`` with ``Σ_c |S_c|² = 1`` inside the
object (as :func:`~monai_diffrecon.physics.birdcage_maps` and ESPIRiT give); k-space ``(B, C, H, W)``; masks
broadcastable to k-space (``(B, 1, 1, W)`` Cartesian lines). :class:`~monai_diffrecon.physics.MultiCoilMRI` is the
operator-algebra version (one mask, adjoint-tested); these are its forward and adjoint written out for per-sample
masks inside training losses and the MSM / SelfDB samplers.
"""

from __future__ import annotations

import torch

from monai_diffrecon.physics.functional.devices import randn
from monai_diffrecon.physics.functional.fft import fftc, ifftc

__all__ = ["sense_expand", "sense_combine", "complex_to_channels", "channels_to_complex", "complex_randn"]


def sense_expand(x: torch.Tensor, maps: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``M F S x``: image → (masked) multi-coil k-space."""
    k = fftc(maps * x)
    return k if mask is None else k * mask


def sense_combine(k: torch.Tensor, maps: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``Sᴴ Fᴴ Mᵀ k``: (masked) multi-coil k-space → coil-combined image (the adjoint of :func:`sense_expand`)."""
    if mask is not None:
        k = k * mask
    return (maps.conj() * ifftc(k)).sum(1, keepdim=True)


def complex_to_channels(x: torch.Tensor) -> torch.Tensor:
    """Complex ``(B, 1, H, W)`` → real ``(B, 2, H, W)`` (real, imaginary) for a network."""
    return torch.cat([x.real, x.imag], dim=1).float()


def channels_to_complex(x: torch.Tensor) -> torch.Tensor:
    """Real ``(B, 2, H, W)`` → complex ``(B, 1, H, W)``."""
    return torch.complex(x[:, :1].float(), x[:, 1:2].float())


def complex_randn(shape, generator: torch.Generator, dtype: torch.dtype = torch.complex64, device=None) -> torch.Tensor:
    """Complex Gaussian whose real and imaginary parts are each N(0, 1) — the same per-channel noise a 2-channel
    image diffusion adds, and (orthonormal FFT) the same in k-space as in image space. Drawn on the generator's
    device, returned on ``device`` (default: the generator's)."""
    real_dtype = torch.float64 if dtype == torch.complex128 else torch.float32
    z = torch.complex(randn(shape, generator, dtype=real_dtype), randn(shape, generator, dtype=real_dtype))
    return z if device is None else z.to(device)
