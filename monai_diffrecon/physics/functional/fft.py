"""Centred orthonormal FFTs (fastMRI convention: ``fftshift(fft(ifftshift(x), norm="ortho"))``).

The k-space centre (DC) sits at index ``n // 2`` of each transformed axis, like the image centre. Because the
transform is orthonormal, ``‖fftc(x)‖ = ‖x‖`` (Parseval) and ``ifftc`` is its exact adjoint and inverse.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["fftc", "ifftc"]


def fftc(x: torch.Tensor, dims: Sequence[int] = (-2, -1)) -> torch.Tensor:
    """Centred orthonormal forward FFT of complex ``x`` over ``dims``."""
    dims = tuple(dims)
    return torch.fft.fftshift(torch.fft.fftn(torch.fft.ifftshift(x, dim=dims), dim=dims, norm="ortho"), dim=dims)


def ifftc(k: torch.Tensor, dims: Sequence[int] = (-2, -1)) -> torch.Tensor:
    """Centred orthonormal inverse FFT of complex ``k`` over ``dims`` (the adjoint and inverse of :func:`fftc`)."""
    dims = tuple(dims)
    return torch.fft.fftshift(torch.fft.ifftn(torch.fft.ifftshift(k, dim=dims), dim=dims, norm="ortho"), dim=dims)
