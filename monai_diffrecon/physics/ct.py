"""Parallel-beam CT (the Radon transform), 2D or slice-wise 3D.

Model: ``y[v, k] = ∫ x(s_k e_u(θ_v) + t n(θ_v)) dt`` — a line integral (units: value × length, e.g. μ in mm⁻¹
times mm gives the dimensionless line integral). The integral is a sum of bilinear samples every pixel along the
ray, stored as one sparse matrix (``V·D`` rows, ``H·W`` columns); the adjoint is its exact transpose.

Angle convention (shared with :class:`~monai_diffrecon.physics.SPECTProjector`): the detector coordinate of pixel
``(i, j)`` at angle ``θ`` is ``s = (i − (H−1)/2)·cos θ − (j − (W−1)/2)·sin θ`` (pixels, times ``pixel_size``); bin
``k`` sits at ``s_k = (k − (D−1)/2)·detector_spacing``. Angles over ``[0, 180)`` give a complete parallel-beam scan.

Axes: ``x`` ``(B, 1, H, W)`` → ``y`` ``(B, 1, V, D)``; with ``num_slices=S`` the slices ride along:
``(B, 1, H, W, S)`` → ``(B, 1, V, D, S)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from monai_diffrecon.errors import InvalidValueError, ShapeError
from monai_diffrecon.physics.base import LinearOperator, check_angles
from monai_diffrecon.physics.functional.rotate import apply_csr, bilinear_matrix, padded_size, register_csr_pair

__all__ = ["ParallelBeamCT"]


class ParallelBeamCT(LinearOperator):
    """Parallel-beam projector with an exact sparse adjoint.

    Args:
        angles_deg: ``(V,)`` projection angles in degrees.
        num_detectors: number of detector bins ``D``.
        image_shape: ``(H, W)``; defaults to ``(D, D)``.
        pixel_size: pixel edge length (any length unit; sets the units of the line integral).
        detector_spacing: bin pitch in the same unit; defaults to ``pixel_size``.
        num_slices: if given, the operator is slice-wise 3D with ``S = num_slices`` slices in the last axis.
        dtype: dtype of the stored sparse table.

    Example:
        >>> import torch
        >>> A = ParallelBeamCT(torch.arange(0, 180, 2.0), 32)
        >>> tuple(A(torch.ones(1, 1, 32, 32)).shape)
        (1, 1, 90, 32)
    """

    in_complex = False
    out_complex = False

    def __init__(
        self,
        angles_deg: torch.Tensor | Sequence[float],
        num_detectors: int,
        image_shape: Sequence[int] | None = None,
        pixel_size: float = 1.0,
        detector_spacing: float | None = None,
        num_slices: int | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        angles = check_angles(angles_deg)
        if int(num_detectors) < 1:
            raise ShapeError(f"num_detectors: must be ≥ 1, got {num_detectors}")
        D = int(num_detectors)
        H, W = (D, D) if image_shape is None else (int(image_shape[0]), int(image_shape[1]))
        if detector_spacing is None:
            detector_spacing = pixel_size
        for name, v in (("pixel_size", pixel_size), ("detector_spacing", detector_spacing)):
            if not (math.isfinite(v) and v > 0):
                raise InvalidValueError(f"{name}: must be finite and > 0, got {v}")
        self.image_shape = (H, W)
        self.num_detectors = D
        self.pixel_size = float(pixel_size)
        self.detector_spacing = float(detector_spacing)
        self.num_slices = None if num_slices is None else int(num_slices)
        V = angles.numel()
        tail = () if num_slices is None else (self.num_slices,)
        self.in_shape = (None, 1, H, W, *tail)
        self.out_shape = (None, 1, V, D, *tail)
        self.register_buffer("angles_deg", angles.to(dtype))
        self._build(dtype)
        self.register_load_state_dict_post_hook(lambda module, _: module._build(module._radon_val.dtype))

    def _build(self, dtype: torch.dtype) -> None:
        H, W = self.image_shape
        D = self.num_detectors
        dev = self.angles_deg.device
        angles = self.angles_deg.detach().to("cpu", torch.float64)  # the tables are built on the CPU, then moved
        bins = (torch.arange(D, dtype=torch.float64, device="cpu") - (D - 1) / 2) * (self.detector_spacing / self.pixel_size)
        L = padded_size(max(H, W), min(H, W))
        depths = torch.arange(L, dtype=torch.float64, device="cpu") - (L - 1) / 2
        csr = bilinear_matrix(H, W, angles, bins, depths, depth_weight=self.pixel_size, fold_depth=True, dtype=torch.float64)
        register_csr_pair(self, "_radon", csr, dtype, dev)

    @property
    def num_views(self) -> int:
        return self.angles_deg.numel()

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        H, W = self.image_shape
        B, S = x.shape[0], (1 if self.num_slices is None else self.num_slices)
        xm = x.reshape(B, H * W, S).permute(1, 0, 2).reshape(H * W, B * S)
        y = apply_csr(self, "_radon", xm)
        y = y.reshape(self.num_views * self.num_detectors, B, S).permute(1, 0, 2)
        return y.reshape(B, 1, *self.out_shape[2:])

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        H, W = self.image_shape
        B, S = y.shape[0], (1 if self.num_slices is None else self.num_slices)
        ym = y.reshape(B, self.num_views * self.num_detectors, S).permute(1, 0, 2).reshape(-1, B * S)
        x = apply_csr(self, "_radon", ym, transpose=True)
        return x.reshape(H * W, B, S).permute(1, 0, 2).reshape(B, 1, *self.in_shape[2:])

    def extra_repr(self) -> str:
        return f"views={self.num_views}, detectors={self.num_detectors}, image_shape={self.image_shape}, slices={self.num_slices}"
