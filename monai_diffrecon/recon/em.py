"""Maximum-likelihood expectation maximisation for emission tomography (MLEM, OSEM).

Update (Shepp & Vardi 1982; ordered subsets: Hudson & Larkin 1994), for subset ``m`` of the views::

    x ← x / (A_mᵀ 1) · A_mᵀ( y_m / (A_m x + s_m) )

``y`` are measured counts, ``s`` an optional additive term (scatter estimate, same shape as ``y``). Subset ``m``
holds views ``m, m + M, m + 2M, …`` (PyTomography's split). Voxels with zero sensitivity stay zero.
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from monai_diffrecon.errors import InvalidValueError, ShapeError
from monai_diffrecon.physics.base import check_tensor
from monai_diffrecon.physics.spect import SPECTProjector

__all__ = ["osem", "mlem"]


def osem(
    projector: SPECTProjector,
    counts: torch.Tensor,
    iterations: int = 4,
    subsets: int = 8,
    x0: torch.Tensor | None = None,
    additive: torch.Tensor | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Ordered-subsets EM.

    Args:
        projector: the system model (views are split into ``subsets`` with :meth:`SPECTProjector.select_views`).
        counts: measured counts ``(B, 1, V, X, Z)``, ≥ 0.
        iterations: full passes over all subsets.
        subsets: number of ordered subsets (1 gives MLEM); must not exceed the number of views.
        x0: positive start image ``(B, 1, X, Y, Z)``; default ones.
        additive: expected additive counts (scatter), same shape as ``counts``.
        progress: show a progress bar.

    Returns:
        activity estimate ``(B, 1, X, Y, Z)`` in counts per voxel (same units as the projector's input).
    """
    counts = check_tensor(counts, "counts", projector.out_shape, complex_=False)
    if bool((counts < 0).any()):
        raise InvalidValueError("counts: must be ≥ 0")
    if not 1 <= subsets <= projector.num_views:
        raise InvalidValueError(f"subsets: must be in [1, {projector.num_views}], got {subsets}")
    if additive is not None:
        additive = check_tensor(additive, "additive", tuple(counts.shape), complex_=False)
    B = counts.shape[0]
    x = torch.ones(B, *projector.in_shape[1:], dtype=counts.dtype, device=counts.device) if x0 is None else x0.clone()
    check_tensor(x, "x0", (B, *projector.in_shape[1:]), complex_=False)
    if bool((x < 0).any()):
        raise InvalidValueError("x0: must be ≥ 0")
    parts = []
    for m in range(subsets):
        idx = torch.arange(m, projector.num_views, subsets, device=counts.device)
        op = projector if subsets == 1 else projector.select_views(idx)
        y_m = counts[:, :, idx]
        s_m = None if additive is None else additive[:, :, idx]
        sens = op.adjoint(torch.ones_like(y_m))
        parts.append((op, y_m, s_m, sens))
    bar = tqdm(total=iterations * subsets, desc="OSEM", disable=not progress, leave=False)
    for _ in range(iterations):
        for op, y_m, s_m, sens in parts:
            est = op(x)
            if s_m is not None:
                est = est + s_m
            ratio = torch.where(est > 0, y_m / torch.where(est > 0, est, torch.ones_like(est)), torch.zeros_like(est))
            x = torch.where(sens > 0, x * op.adjoint(ratio) / torch.where(sens > 0, sens, torch.ones_like(sens)), torch.zeros_like(x))
            bar.update(1)
    bar.close()
    return x


def mlem(
    projector: SPECTProjector,
    counts: torch.Tensor,
    iterations: int = 20,
    x0: torch.Tensor | None = None,
    additive: torch.Tensor | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """MLEM: :func:`osem` with one subset."""
    if iterations < 0:
        raise ShapeError("iterations: must be ≥ 0")
    return osem(projector, counts, iterations, 1, x0, additive, progress)
