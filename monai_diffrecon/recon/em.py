"""Maximum-likelihood expectation maximisation for emission tomography (MLEM, OSEM).

Update (Shepp & Vardi 1982; ordered subsets: Hudson & Larkin 1994), for subset ``m`` of the views::

    x ← x / (A_mᵀ 1) · A_mᵀ( y_m / (A_m x + s_m) )

``y`` are measured counts, ``s`` an optional additive term (scatter estimate, same shape as ``y``). Subset ``m``
holds views ``m, m + M, m + 2M, …`` (PyTomography's split). Voxels with zero sensitivity stay zero.

The sensitivity images ``A_mᵀ 1`` (one adjoint per subset, together one full adjoint) depend on the projector alone,
so :func:`osem` keeps them per projector (a :class:`weakref.WeakKeyDictionary`: they go when the projector goes) and
reuses them on later calls with the same projector, subset count, batch size, dtype and device — bit-identical to
recomputing them. A projector whose tables were replaced or changed in place since (``load_state_dict``, ``.to``,
an in-place edit of a buffer) gets fresh ones.
"""

from __future__ import annotations

import weakref

import torch
from tqdm.auto import tqdm

from monai_diffrecon.errors import InvalidValueError, ShapeError
from monai_diffrecon.physics.base import check_tensor
from monai_diffrecon.physics.spect import SPECTProjector

__all__ = ["osem", "mlem"]

# projector → {(subsets, batch, dtype, device): (buffer snapshot, [A_mᵀ 1 for each subset m])}
_SENSITIVITY: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _state(projector) -> list[torch.Tensor]:
    """The tensors a projector's output depends on: its buffers and parameters (its submodules' included)."""
    return [*projector.buffers(), *projector.parameters()]


def _snapshot(tensors: list[torch.Tensor]) -> tuple:
    """Weak references to ``tensors`` with their in-place version counters (holds no table alive)."""
    return tuple((weakref.ref(t), t._version) for t in tensors)  # torch's in-place counter


def _unchanged(snapshot: tuple, tensors: list[torch.Tensor]) -> bool:
    return len(tensors) == len(snapshot) and all(ref() is t and v == t._version for (ref, v), t in zip(snapshot, tensors))


def _sensitivities(projector: SPECTProjector, subsets: int, ops: list, y_parts: list) -> list[torch.Tensor]:
    """``A_mᵀ 1`` for each subset (module doc: cached per projector, recomputed when its tensors changed)."""
    tensors = _state(projector) if isinstance(projector, torch.nn.Module) else None
    if tensors is None or any(t.requires_grad for t in tensors):  # unknown state, or differentiable tables: no cache
        return [op.adjoint(torch.ones_like(y_m)) for op, y_m in zip(ops, y_parts)]
    per = _SENSITIVITY.setdefault(projector, {})
    y0 = y_parts[0]
    key = (subsets, y0.shape[0], y0.dtype, y0.device)
    hit = per.get(key)
    if hit is not None and _unchanged(hit[0], tensors):
        return hit[1]
    for k in [k for k, (snap, _) in per.items() if not _unchanged(snap, tensors)]:
        del per[k]  # the tables changed since: those images are stale
    with torch.no_grad():  # the tables need no gradient, so this equals the computation with autograd on
        sens = [op.adjoint(torch.ones_like(y_m)) for op, y_m in zip(ops, y_parts)]
    per[key] = (_snapshot(tensors), sens)
    return sens


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
    ops, ys, ss = [], [], []
    for m in range(subsets):
        idx = torch.arange(m, projector.num_views, subsets, device=counts.device)
        ops.append(projector if subsets == 1 else projector.select_views(idx))
        ys.append(counts[:, :, idx])
        ss.append(None if additive is None else additive[:, :, idx])
    parts = list(zip(ops, ys, ss, _sensitivities(projector, subsets, ops, ys)))
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
