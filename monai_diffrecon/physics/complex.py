"""Layout adaptors: real ↔ complex, and slice batches ↔ volumes, so priors compose with any operator.

* :class:`RealToComplex`: ``x ↦ x + 0i`` (real ``(B, …)`` → complex); adjoint ``Re(y)``.
* :class:`ComplexToReal`: ``y ↦ [Re y, Im y]`` stacked in a trailing axis of size 2 (complex ``(B, …)`` → real
  ``(B, …, 2)``); adjoint ``y[..., 0] + i y[..., 1]``. Unitary (‖·‖ preserved).

Both are adjoint-exact for the real inner product ``⟨a, b⟩ = Re Σ conj(a) b``. Example: a magnitude-image prior
with multi-coil MRI is ``ComplexToReal() @ MultiCoilMRI(maps, mask) @ RealToComplex()`` (real in, real out).
"""

from __future__ import annotations

import torch

from monai_diffrecon.physics.base import LinearOperator

__all__ = ["RealToComplex", "ComplexToReal", "SlicesToVolume"]


class RealToComplex(LinearOperator):
    """Embed a real tensor as complex (imaginary part 0)."""

    in_complex = False
    out_complex = True

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.complex(x, torch.zeros_like(x))

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return y.real.clone()

    def pinv(self, y, tol=1e-6, max_iter=100):
        return self.check_output(y).real.clone()

    def norm(self, shape=None, **kwargs) -> float:
        return 1.0


class ComplexToReal(LinearOperator):
    """Complex ``(B, …)`` → real ``(B, …, 2)`` (real and imaginary parts); unitary."""

    in_complex = True
    out_complex = False

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.view_as_real(x).clone()

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return torch.complex(y[..., 0], y[..., 1])

    def pinv(self, y, tol=1e-6, max_iter=100):
        return self._adjoint(self.check_output(y))

    def norm(self, shape=None, **kwargs) -> float:
        return 1.0


class ChannelsToComplex(LinearOperator):
    """Real ``(B, 2, …)`` (real, imaginary channels — a network's view of a complex image) → complex ``(B, 1, …)``;
    unitary. Lets a prior on 2-channel images use complex operators: ``MultiCoilMRI(...) @ ChannelsToComplex()``."""

    in_complex = False
    out_complex = True

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        from monai_diffrecon.errors import ShapeError

        if x.shape[1] != 2:
            raise ShapeError(f"ChannelsToComplex: expected 2 channels (real, imaginary), got shape {tuple(x.shape)}")
        return torch.complex(x[:, :1], x[:, 1:2])

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return torch.cat([y.real, y.imag], dim=1)

    def pinv(self, y, tol=1e-6, max_iter=100):
        return self._adjoint(self.check_output(y))

    def norm(self, shape=None, **kwargs) -> float:
        return 1.0


class SlicesToVolume(LinearOperator):
    """Batch of axial slices ``(Z, C, X, Y)`` → volume ``(1, C, X, Y, Z)`` (a permutation; adjoint = inverse).

    Lets a 2.5D prior that sees a volume as a batch of slices use a volumetric operator:
    ``SPECTProjector(...) @ SlicesToVolume(Z)`` maps slice batches to projections.
    """

    def __init__(self, num_slices: int | None = None) -> None:
        super().__init__()
        self.num_slices = num_slices
        self.mixes_batch = True
        self.in_shape = (num_slices, None, None, None)
        self.out_shape = (1, None, None, None, num_slices)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(1, 2, 3, 0).unsqueeze(0)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return y[0].permute(3, 0, 1, 2)

    def pinv(self, y, tol=1e-6, max_iter=100):
        return self._adjoint(self.check_output(y))

    def norm(self, shape=None, **kwargs) -> float:
        return 1.0
