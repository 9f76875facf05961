"""Centred orthonormal FFTs (fastMRI convention: ``fftshift(fft(ifftshift(x), norm="ortho"))``).

The k-space centre (DC) sits at index ``n // 2`` of each transformed axis, like the image centre. Because the
transform is orthonormal, ``‖fftc(x)‖ = ‖x‖`` (Parseval) and ``ifftc`` is its exact adjoint and inverse.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["fftc", "ifftc", "centering_phases"]


def fftc(x: torch.Tensor, dims: Sequence[int] = (-2, -1)) -> torch.Tensor:
    """Centred orthonormal forward FFT of complex ``x`` over ``dims``."""
    dims = tuple(dims)
    return torch.fft.fftshift(torch.fft.fftn(torch.fft.ifftshift(x, dim=dims), dim=dims, norm="ortho"), dim=dims)


def ifftc(k: torch.Tensor, dims: Sequence[int] = (-2, -1)) -> torch.Tensor:
    """Centred orthonormal inverse FFT of complex ``k`` over ``dims`` (the adjoint and inverse of :func:`fftc`)."""
    dims = tuple(dims)
    return torch.fft.fftshift(torch.fft.ifftn(torch.fft.ifftshift(k, dim=dims), dim=dims, norm="ortho"), dim=dims)


def centering_phases(n: int, dtype: torch.dtype = torch.complex128, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Phase ramps that turn the plain FFT into the centred one along an axis of length ``n``.

    With ``h = n // 2``: ``fftc(x)[k] = b[k] · fft(a ⊙ x)[k]`` where ``a[m] = exp(2πi h m / n)`` and
    ``b[k] = exp(2πi h (k − h) / n)`` (for even ``n`` both are ±1 checkerboards). Folding ``a`` into coil maps and
    ``b`` into the sampling mask removes the four shifts per forward/adjoint pair.

    Returns:
        ``(a, b)``, each ``(n,)`` complex, on ``device`` (computed in float64 on the CPU: the same ramps everywhere).
    """
    h = n // 2
    m = torch.arange(n, dtype=torch.float64, device="cpu")
    a = torch.polar(torch.ones(n, dtype=torch.float64, device="cpu"), 2 * torch.pi * h * m / n)
    b = torch.polar(torch.ones(n, dtype=torch.float64, device="cpu"), 2 * torch.pi * h * (m - h) / n)
    if n % 2 == 0:  # exact ±1 (avoid rounding in cos/sin of multiples of π)
        a, b = a.real.round().to(a.dtype), b.real.round().to(b.dtype)
    return a.to(device=device, dtype=dtype), b.to(device=device, dtype=dtype)
