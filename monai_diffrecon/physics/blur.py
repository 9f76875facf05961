"""Circular convolution (deblurring operators), 2D or 3D, computed with FFTs.

Model: ``y = k ⊛ x`` with periodic boundaries; ``k`` is centred at index ``(kh // 2, kw // 2[, kd // 2])``.
In Fourier space ``ŷ = K̂ ⊙ x̂``, so the adjoint is ``conj(K̂)``, the normal operator ``|K̂|²`` and the prox
``x̂ = (γ conj(K̂) ŷ + ẑ) / (γ|K̂|² + 1)`` are exact and cheap.

Axes: ``x`` ``(B, C, H, W)`` or ``(B, C, H, W, D)``; the kernel is ``(kh, kw[, kd])`` shared by all images, or
``(B|1, C|1, kh, kw[, kd])`` per image/channel (e.g. a blind-deblurring kernel estimate per sample).
"""

from __future__ import annotations

import torch

from monai_diffrecon.errors import ShapeError
from monai_diffrecon.physics.base import LinearOperator, _positive, check_tensor

__all__ = ["Blur", "KernelBlur", "gaussian_kernel", "centroid_shift", "shift_kernel"]


def gaussian_kernel(sigma: float | tuple[float, ...], size: int | tuple[int, ...] | None = None, dtype=torch.float32,
                    device: torch.device | str = "cpu") -> torch.Tensor:
    """Normalised Gaussian kernel (sum 1). ``sigma`` per axis in pixels; ``size`` defaults to ``2·ceil(3σ)+1``.
    Computed in float64 on the CPU (the same kernel on every device), returned in ``dtype`` on ``device``."""
    sig = (sigma, sigma) if isinstance(sigma, (int, float)) else tuple(sigma)
    if size is None:  # 3σ rounded to float32 first, as the kernel sizes have always been computed
        size = tuple(2 * int(torch.ceil(torch.tensor(3.0 * s, device="cpu")).item()) + 1 for s in sig)
    elif isinstance(size, int):
        size = (size,) * len(sig)
    grids = torch.meshgrid(*[torch.arange(n, dtype=torch.float64, device="cpu") - n // 2 for n in size], indexing="ij")
    r2 = sum((g / max(s, 1e-12)) ** 2 for g, s in zip(grids, sig))
    k = torch.exp(-0.5 * r2)
    return (k / k.sum()).to(device=device, dtype=dtype)


class Blur(LinearOperator):
    """Circular blur ``y = k ⊛ x`` (FFT), real or complex images, with closed-form ``prox_l2`` and ``pinv``.

    Args:
        kernel: ``(kh, kw[, kd])`` or ``(B|1, C|1, kh, kw[, kd])``, real. Must not be larger than the image.
        pinv_eps: frequencies with ``|K̂|² ≤ pinv_eps · max|K̂|²`` are treated as zero in :meth:`pinv`.

    Example:
        >>> import torch
        >>> A = Blur(gaussian_kernel(1.5))
        >>> tuple(A(torch.rand(2, 3, 32, 32)).shape)
        (2, 3, 32, 32)
    """

    def __init__(self, kernel: torch.Tensor, pinv_eps: float = 1e-6) -> None:
        super().__init__()
        check_tensor(kernel, "kernel", complex_=False)
        if kernel.ndim in (2, 3):
            kernel = kernel[None, None]
        if kernel.ndim not in (4, 5):
            raise ShapeError(f"kernel: expected (kh, kw[, kd]) or (B|1, C|1, kh, kw[, kd]), got {tuple(kernel.shape)}")
        self.register_buffer("kernel", kernel.clone())
        self.ndim_spatial = kernel.ndim - 2
        self.pinv_eps = float(pinv_eps)
        b, c = kernel.shape[:2]
        self.in_shape = self.out_shape = (None if b == 1 else b, None if c == 1 else c) + (None,) * self.ndim_spatial

    def check_input(self, x: torch.Tensor) -> torch.Tensor:
        x = super().check_input(x)
        self._check_size(x, "x")
        return x

    def check_output(self, y: torch.Tensor) -> torch.Tensor:
        y = super().check_output(y)
        self._check_size(y, "y")
        return y

    def _check_size(self, t: torch.Tensor, name: str) -> None:
        ks = self.kernel.shape[2:]
        if any(k > n for k, n in zip(ks, t.shape[2:])):
            raise ShapeError(f"{name}: spatial size {tuple(t.shape[2:])} is smaller than the kernel {tuple(ks)}")

    def _dims(self) -> tuple[int, ...]:
        return tuple(range(-self.ndim_spatial, 0))

    def transfer_function(self, like: torch.Tensor) -> torch.Tensor:
        """``K̂`` on the grid of ``like`` (complex, ``(B|1, C|1, H, W[, D])``), kernel centre moved to the origin."""
        k = self._like(self.kernel, like)
        spatial = like.shape[2:]
        pad = torch.zeros(*k.shape[:2], *spatial, dtype=k.dtype, device=k.device)
        pad[(slice(None), slice(None)) + tuple(slice(0, n) for n in k.shape[2:])] = k
        pad = torch.roll(pad, shifts=tuple(-(n // 2) for n in k.shape[2:]), dims=self._dims())
        return torch.fft.fftn(pad, dim=self._dims())

    def _apply_fourier(self, x: torch.Tensor, filt: torch.Tensor) -> torch.Tensor:
        out = torch.fft.ifftn(torch.fft.fftn(x, dim=self._dims()) * filt, dim=self._dims())
        return out if x.is_complex() else out.real

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._apply_fourier(x, self.transfer_function(x))

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self._apply_fourier(y, self.transfer_function(y).conj())

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        x = self.check_input(x)
        return self._apply_fourier(x, self.transfer_function(x).abs() ** 2)

    def prox_l2(self, z, y, gamma, tol=1e-6, max_iter=100):
        z, y = self.check_input(z), self.check_output(y)
        g = _positive(gamma, "gamma", z)
        kh = self.transfer_function(z)
        dims = self._dims()
        num = g * kh.conj() * torch.fft.fftn(y, dim=dims) + torch.fft.fftn(z, dim=dims)
        out = torch.fft.ifftn(num / (g * kh.abs() ** 2 + 1.0), dim=dims)
        return out if (z.is_complex() or y.is_complex()) else out.real

    def pinv(self, y, tol=1e-6, max_iter=100):
        y = self.check_output(y)
        kh = self.transfer_function(y)
        p = kh.abs() ** 2
        keep = p > self.pinv_eps * p.amax(dim=self._dims(), keepdim=True)
        inv = torch.where(keep, kh.conj() / torch.where(keep, p, torch.ones_like(p)), torch.zeros_like(kh))
        return self._apply_fourier(y, inv)

    def norm(self, shape=None, **kwargs) -> float:
        if shape is None:
            raise ShapeError("Blur.norm(): pass `shape` (the image size sets the frequency grid)")
        return float(self.transfer_function(torch.zeros(shape, dtype=self.kernel.dtype, device=self.kernel.device)).abs().max())


class KernelBlur(LinearOperator):
    """The blur as a linear map of the *kernel* for a fixed image: ``m ↦ m ⊛ x`` (circular, same centring as
    :class:`Blur`, so ``KernelBlur(x)(k) == Blur(k)(x)``) — the kernel likelihood of blind deblurring (Blind-PnPDM).

    Args:
        image: ``(B, C, H, W)`` real image x (buffer). kernel_size: ``(kh, kw)`` support of the unknown kernel.

    Input ``(B, 1, kh, kw)`` (one kernel per image, shared by its channels); output ``(B, C, H, W)``.
    """

    def __init__(self, image: torch.Tensor, kernel_size: tuple[int, int]) -> None:
        super().__init__()
        check_tensor(image, "image", complex_=False)
        if image.ndim != 4:
            raise ShapeError(f"image: expected (B, C, H, W), got {tuple(image.shape)}")
        kh, kw = (int(v) for v in kernel_size)
        if kh > image.shape[-2] or kw > image.shape[-1] or kh < 1 or kw < 1:
            raise ShapeError(f"kernel_size {kernel_size} must fit in the image {tuple(image.shape[-2:])}")
        self.register_buffer("image", image.clone())
        self.kernel_size = (kh, kw)
        B, C, H, W = image.shape
        self.in_shape, self.out_shape = (B, 1, kh, kw), (B, C, H, W)

    def _embed(self, k: torch.Tensor) -> torch.Tensor:
        H, W = self.image.shape[-2:]
        kh, kw = self.kernel_size
        pad = torch.zeros(*k.shape[:2], H, W, dtype=k.dtype, device=k.device)
        pad[..., :kh, :kw] = k
        return torch.roll(pad, shifts=(-(kh // 2), -(kw // 2)), dims=(-2, -1))

    def _crop(self, p: torch.Tensor) -> torch.Tensor:
        kh, kw = self.kernel_size
        return torch.roll(p, shifts=(kh // 2, kw // 2), dims=(-2, -1))[..., :kh, :kw]

    def _image_hat(self, like: torch.Tensor) -> torch.Tensor:
        return torch.fft.fft2(self.image.to(device=like.device, dtype=like.dtype))

    def _forward(self, k: torch.Tensor) -> torch.Tensor:
        return torch.fft.ifft2(torch.fft.fft2(self._embed(k)) * self._image_hat(k)).real

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        corr = torch.fft.ifft2(torch.fft.fft2(y) * self._image_hat(y).conj()).real.sum(dim=1, keepdim=True)
        return self._crop(corr)


def centroid_shift(k: torch.Tensor) -> tuple[int, int]:
    """The integer shift ``(dy, dx)`` that moves the centroid of kernel ``k`` ``(…, kh, kw)`` (summed over leading
    dims) to the support's centre ``(kh // 2, kw // 2)``."""
    kh, kw = k.shape[-2:]
    w = k.reshape(-1, kh, kw).sum(0).clamp_min(0)
    tot = float(w.sum())
    if tot <= 0:
        return 0, 0
    iy = torch.arange(kh, dtype=w.dtype, device=w.device)
    ix = torch.arange(kw, dtype=w.dtype, device=w.device)
    cy, cx = float((w.sum(1) * iy).sum()) / tot, float((w.sum(0) * ix).sum()) / tot
    return int(round(kh // 2 - cy)), int(round(kw // 2 - cx))


def shift_kernel(k: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``k`` ``(…, kh, kw)`` shifted by ``(dy, dx)`` pixels, zero-filled (no wrap-around)."""
    out = torch.zeros_like(k)
    kh, kw = k.shape[-2:]
    ys, yd = (slice(0, kh - dy), slice(dy, kh)) if dy >= 0 else (slice(-dy, kh), slice(0, kh + dy))
    xs, xd = (slice(0, kw - dx), slice(dx, kw)) if dx >= 0 else (slice(-dx, kw), slice(0, kw + dx))
    out[..., yd, xd] = k[..., ys, xs]
    return out
