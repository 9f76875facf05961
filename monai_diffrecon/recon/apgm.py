"""Accelerated proximal gradient (APGM / FISTA, Beck & Teboulle, SIAM J. Imaging Sci. 2009) for

    min_x  ½‖A x − y‖² + λ R(x),

with R reached only through its proximal map ``prox(v, τ) ≈ argmin_u ½‖u − v‖² + τ R(u)`` — the exact TV prox, the
closed-form approximation of arXiv 2412.07718 (:func:`~monai_diffrecon.regularizers.tv_prox`) or any other. The
gradient step is ``step_scale / L`` with ``L = ‖A‖²`` (power iteration), so the prox is called with ``τ = λ·step``:
for the closed-form prox the step scale is the paper's scaling parameter (its error shrinks with τ).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.physics.base import LinearOperator

__all__ = ["apgm", "least_squares_tv_objective"]


def least_squares_tv_objective(op: LinearOperator, y: torch.Tensor, x: torch.Tensor, lam: float, regulariser: Callable) -> torch.Tensor:
    """``½‖A x − y‖² + λ R(x)`` per batch element, shape ``(B,)``; ``regulariser(x)`` returns ``(B,)``."""
    r = op(x) - y
    return 0.5 * r.abs().pow(2).reshape(r.shape[0], -1).sum(1) + lam * regulariser(x)


def apgm(
    op: LinearOperator,
    y: torch.Tensor,
    prox: Callable[[torch.Tensor, float], torch.Tensor],
    lam: float,
    iterations: int = 200,
    step_scale: float = 1.0,
    lipschitz: float | None = None,
    x0: torch.Tensor | None = None,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """FISTA on ``½‖A x − y‖² + λ R(x)``.

    Args:
        op: the forward operator ``A``.
        y: measurements.
        prox: ``prox(v, τ)``, the proximal map of ``τ R``.
        lam: regularisation weight λ ≥ 0.
        iterations: number of FISTA iterations.
        step_scale: step ``= step_scale / L``, in ``(0, 1]`` (1 is the largest step with the convergence guarantee).
        lipschitz: ``L = ‖A‖²``; estimated by power iteration on ``Aᴴ y``'s shape when ``None`` (a lower bound, converged
            to a relative change of 10⁻¹⁰: ``step_scale = 1`` exceeds 1/L by at most that much).
        x0: start (default ``0``).
        callback: ``callback(k, x_k)`` after each iteration.
    """
    if not (math.isfinite(lam) and lam >= 0):
        raise InvalidValueError(f"lam: must be finite and ≥ 0, got {lam}")
    if not (0 < step_scale <= 1):
        raise InvalidValueError(f"step_scale: must lie in (0, 1], got {step_scale}")
    if int(iterations) < 1:
        raise InvalidValueError(f"iterations: must be ≥ 1, got {iterations}")
    aty = op.adjoint(y)
    L = float(lipschitz) if lipschitz is not None else op.norm(shape=tuple(aty.shape)) ** 2
    if not (math.isfinite(L) and L > 0):
        raise InvalidValueError(f"lipschitz: must be finite and > 0, got {L}")
    tau = step_scale / L
    x = torch.zeros_like(aty) if x0 is None else x0.clone()
    z, t = x, 1.0
    for k in range(int(iterations)):
        x_new = prox(z - tau * (op.adjoint(op(z)) - aty), tau * lam)
        t_new = (1 + math.sqrt(1 + 4 * t * t)) / 2
        z = x_new + ((t - 1) / t_new) * (x_new - x)
        x, t = x_new, t_new
        if callback is not None:
            callback(k, x)
    return x
