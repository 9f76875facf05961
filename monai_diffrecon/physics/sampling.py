"""Pixel-domain sampling operators: :class:`Mask` (inpainting, clouds, missing views), :class:`Decimate` and
:class:`Downsample` (anti-alias blur then decimation, for super-resolution).

Axes: images ``(B, C, H, W)`` or ``(B, C, H, W, D)``; masks broadcast against them.
"""

from __future__ import annotations

import torch

from monai_diffrecon.errors import InvalidValueError, ShapeError
from monai_diffrecon.physics.base import Compose, LinearOperator, _positive, check_tensor
from monai_diffrecon.physics.blur import Blur, gaussian_kernel

__all__ = ["Mask", "Decimate", "Downsample"]


class Mask(LinearOperator):
    """Element-wise weighting ``y = m ⊙ x`` with a real mask ``m`` (0/1 or weights); self-adjoint.

    Args:
        mask: real tensor broadcastable to ``x`` (e.g. ``(1, 1, H, W)`` shared, ``(B, 1, H, W)`` per sample).

    ``prox_l2`` and ``pinv`` are closed-form (element-wise). ``y`` keeps the full image shape (zeros where
    ``m = 0``), which keeps it aligned with ``x``.
    """

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        check_tensor(mask, "mask", complex_=False)
        if mask.ndim < 2:
            raise ShapeError(f"mask: expected at least (B|1, C|1, ...) dims, got {tuple(mask.shape)}")
        self.register_buffer("mask", mask.clone())
        self.in_shape = self.out_shape = tuple(None if s == 1 else s for s in mask.shape)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._like(self.mask, x) * x

    _adjoint = _forward

    def prox_l2(self, z, y, gamma, tol=1e-6, max_iter=100):
        z, y = self.check_input(z), self.check_output(y)
        g = _positive(gamma, "gamma", z)
        m = self._like(self.mask, z)
        return (g * m * y + z) / (g * m**2 + 1.0)

    def pinv(self, y, tol=1e-6, max_iter=100):
        y = self.check_output(y)
        m = self._like(self.mask, y)
        nz = m != 0
        return torch.where(nz, y / torch.where(nz, m, torch.ones_like(m)), torch.zeros_like(y))

    def norm(self, shape=None, **kwargs) -> float:
        return float(self.mask.abs().max())


class Decimate(LinearOperator):
    """Keep every ``factor``-th pixel along each spatial axis: ``y = x[..., ::f, ::f]``; adjoint inserts zeros.

    Args:
        factor: integer decimation factor ``f ≥ 1``.
        spatial_dims: number of trailing spatial axes (2 or 3).
    """

    def __init__(self, factor: int, spatial_dims: int = 2) -> None:
        super().__init__()
        if int(factor) != factor or factor < 1:
            raise InvalidValueError(f"factor: must be a positive integer, got {factor}")
        if spatial_dims not in (2, 3):
            raise InvalidValueError(f"spatial_dims: must be 2 or 3, got {spatial_dims}")
        self.factor = int(factor)
        self.spatial_dims = spatial_dims
        self.in_shape = self.out_shape = (None,) * (2 + spatial_dims)

    def check_input(self, x: torch.Tensor) -> torch.Tensor:
        x = super().check_input(x)
        if any(n % self.factor for n in x.shape[2:]):
            raise ShapeError(f"x: spatial size {tuple(x.shape[2:])} is not divisible by factor {self.factor}")
        return x

    def _sl(self) -> tuple[slice, ...]:
        return (slice(None), slice(None)) + (slice(None, None, self.factor),) * self.spatial_dims

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[self._sl()]

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        f = self.factor
        out = torch.zeros(*y.shape[:2], *(n * f for n in y.shape[2:]), dtype=y.dtype, device=y.device)
        out[self._sl()] = y
        return out

    def pinv(self, y, tol=1e-6, max_iter=100):
        return self._adjoint(self.check_output(y))

    def norm(self, shape=None, **kwargs) -> float:
        return 1.0


class Downsample(Compose):
    """Super-resolution operator ``y = D_f (k ⊛ x)``: circular anti-alias blur then decimation by ``factor``.

    Args:
        factor: integer downsampling factor.
        filter: ``"gaussian"`` (σ = factor / 2 pixels, the default), ``"box"`` (f × f average), ``None`` (no
            anti-aliasing) or an explicit real kernel tensor.
        spatial_dims: 2 or 3.

    ``prox_l2`` is closed-form (Woodbury identity on the circulant blur: ``S H Hᴴ Sᴴ`` is circulant on the
    low-resolution grid with spectrum equal to the average of the ``f^d`` aliased copies of ``|K̂|²``).
    """

    def __init__(self, factor: int, filter: str | torch.Tensor | None = "gaussian", spatial_dims: int = 2) -> None:
        # built on the CPU like every operator's buffers (``.to(device)`` moves them); a given kernel keeps its device
        if isinstance(filter, torch.Tensor):
            kernel = filter
        elif filter == "gaussian":
            kernel = gaussian_kernel((factor / 2.0,) * spatial_dims)
        elif filter == "box":
            kernel = torch.ones((int(factor),) * spatial_dims, device="cpu") / float(factor) ** spatial_dims
        elif filter is None:
            kernel = torch.ones((1,) * spatial_dims, device="cpu")
        else:
            raise InvalidValueError(f"filter: expected 'gaussian', 'box', None or a tensor, got {filter!r}")
        super().__init__(Decimate(factor, spatial_dims), Blur(kernel))
        self.factor = int(factor)
        self.spatial_dims = spatial_dims
        self.in_shape = self.out_shape = (None,) * (2 + spatial_dims)

    @property
    def blur(self) -> Blur:
        return self.ops[1]

    def check_input(self, x):
        return self.ops[0].check_input(self.blur.check_input(x))

    def check_output(self, y):
        return self.ops[0].check_output(y)

    def prox_l2(self, z, y, gamma, tol=1e-6, max_iter=100):
        # (HᴴSᴴSH + I/γ)⁻¹ r = γ [r − Hᴴ Sᴴ (I/γ + S H Hᴴ Sᴴ)⁻¹ S H r]   (Woodbury)
        z, y = self.check_input(z), self.check_output(y)
        g = _positive(gamma, "gamma", z)
        f, nd = self.factor, self.spatial_dims
        dims = tuple(range(-nd, 0))
        r = self.adjoint(y) + z / g
        kh = self.blur.transfer_function(r)
        p = kh.abs() ** 2  # (.., H, W)
        # spectrum of S H Hᴴ Sᴴ on the low-res grid: mean over the f^d aliased blocks of |K̂|²
        low = [n // f for n in p.shape[-nd:]]
        shape = list(p.shape[:-nd])
        for n in low:
            shape += [f, n]
        pa = p.reshape(shape).mean(dim=tuple(range(len(p.shape) - nd, len(shape), 2)))
        shr = torch.fft.fftn(self._forward(r), dim=dims)
        w = torch.fft.ifftn(shr / (1.0 / g + pa), dim=dims)
        w = w if (r.is_complex()) else w.real
        return g * (r - self.adjoint(w))
