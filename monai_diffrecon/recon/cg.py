"""Regularised least squares by conjugate gradient (CG-SENSE and friends).

``x = argmin ½‖A x − y‖² + ½λ‖x‖²``, solved with CG on ``(AᴴA + λI) x = Aᴴ y`` (Pruessmann et al., MRM 2001).
"""

from __future__ import annotations

import torch

from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.physics.base import LinearOperator, conjugate_gradient

__all__ = ["cg_sense"]


def cg_sense(op: LinearOperator, y: torch.Tensor, lam: float = 0.0, iterations: int = 30, tol: float = 1e-6) -> torch.Tensor:
    """CG solution of ``(AᴴA + λI) x = Aᴴ y`` started at zero (``λ = 0``: the minimum-norm least-squares image)."""
    if lam < 0:
        raise InvalidValueError(f"lam: must be ≥ 0, got {lam}")
    rhs = op.adjoint(y)
    return conjugate_gradient(lambda v: op.normal(v) + lam * v, rhs, None, tol, iterations, joint=op.mixes_batch)
