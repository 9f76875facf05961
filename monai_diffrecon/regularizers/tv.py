"""Total-variation proximal operators: the closed-form approximation of arXiv 2412.07718 and an exact reference.

Closed form (Chandler, Shoushtari, Wohlberg, Kamilov, IEEE TCI 2025):

    prox_{λ TV}(v) ≈ (1/K) Wᵀ 𝒯_{√2 K λ}(W v)

``W`` stacks, for each of the d regularised axes, the single-level undecimated Haar transform
(low-pass ``(v + v₊)/√2``, high-pass ``(v − v₊)/√2``, ``v₊`` the next sample), so ``WᵀW = K·I`` with ``K = 2d``.
``𝒯`` shrinks only the high-pass coefficients — soft thresholding per axis for anisotropic TV, group (ℓ2 across
axes) shrinkage per sample for isotropic TV. The result is exactly the proximal operator of *some* convex function
(so it is firmly non-expansive), it never increases TV, and it is accurate for small λ (the error grows with λ).

Boundaries: ``circular`` (``v₊`` wraps around) or ``replicate`` (non-circular TV ``Σ_{i<N−1}|v_{i+1} − v_i|``:
the last high-pass coefficient of each axis is zero and left unshrunk, equivalent to padding by one replicated
sample, transforming, shrinking only the interior high-pass coefficients, and cropping).

Exact reference (:func:`tv_prox_exact`): fast gradient projection on the dual (Beck & Teboulle, IEEE TIP 2009) for
the same TV definitions, iterated to a tolerance.
"""

from __future__ import annotations

import math

import torch

from monai_diffrecon.errors import InvalidValueError

__all__ = ["tv_prox", "tv_prox_exact", "tv_norm"]


def _axes(x: torch.Tensor, dims) -> tuple[int, ...]:
    if dims is None:
        dims = tuple(range(2, x.ndim)) if x.ndim > 2 else tuple(range(x.ndim))
    return tuple(sorted(d % x.ndim for d in dims))


def _check(boundary: str, lam) -> None:
    if boundary not in ("circular", "replicate"):
        raise InvalidValueError(f"boundary: 'circular' or 'replicate', got {boundary!r}")
    if not torch.is_tensor(lam) and lam < 0:
        raise InvalidValueError(f"lam: must be ≥ 0, got {lam}")


def _diff(x: torch.Tensor, d: int, boundary: str) -> torch.Tensor:
    """Forward difference v₊ − v along axis d (zero at the last sample for replicate)."""
    nxt = torch.roll(x, -1, dims=d)
    g = nxt - x
    if boundary == "replicate":
        idx = [slice(None)] * x.ndim
        idx[d] = slice(x.shape[d] - 1, x.shape[d])
        g[tuple(idx)] = 0
    return g


def _diff_adj(g: torch.Tensor, d: int, boundary: str) -> torch.Tensor:
    """Adjoint of :func:`_diff` along axis d."""
    if boundary == "replicate":
        g = g.clone()
        idx = [slice(None)] * g.ndim
        idx[d] = slice(g.shape[d] - 1, g.shape[d])
        g[tuple(idx)] = 0
    return torch.roll(g, 1, dims=d) - g


def tv_norm(x: torch.Tensor, dims=None, isotropic: bool = False, boundary: str = "replicate") -> torch.Tensor:
    """TV of each batch element (sum over the regularised axes), shape ``(B,)`` for ``(B, C, …)`` inputs."""
    _check(boundary, 0.0)
    axes = _axes(x, dims)
    g = torch.stack([_diff(x, d, boundary) for d in axes])
    mag = g.abs().pow(2).sum(0).sqrt() if isotropic else g.abs().sum(0)
    return mag.reshape(x.shape[0], -1).sum(1) if x.ndim > 2 else mag.sum()


def tv_prox(v: torch.Tensor, lam: float | torch.Tensor, dims=None, isotropic: bool = False, boundary: str = "replicate") -> torch.Tensor:
    """Closed-form approximate ``prox_{λ TV}(v)`` (see module doc); O(N), no iterations.

    Args:
        v: real tensor ``(B, C, …)`` (all axes after the channel axis are spatial by default).
        lam: λ ≥ 0 (float or a tensor broadcastable to v, e.g. per-sample ``(B, 1, 1, 1)``).
        dims: axes to regularise (default: every spatial axis; ``(-1,)`` for along-z only).
        isotropic: group shrinkage across axes (isotropic TV) instead of per-axis soft thresholding.
        boundary: ``"replicate"`` (non-circular) or ``"circular"``.
    """
    _check(boundary, lam)
    axes = _axes(v, dims)
    K = 2 * len(axes)
    thr = math.sqrt(2) * K * lam
    hi = [_diff(v, d, boundary) / math.sqrt(2) for d in axes]  # high-pass (v₊ − v)/√2 (sign irrelevant to shrinkage)
    if isotropic:
        mag = torch.stack(hi).pow(2).sum(0).sqrt()
        scale = (1 - thr / mag.clamp_min(1e-30)).clamp_min(0)
        hi = [h * scale for h in hi]
    else:
        hi = [torch.sign(h) * (h.abs() - thr).clamp_min(0) for h in hi]
    # (1/K) Σ_axes [L_dᵀ L_d v + H_dᵀ 𝒯(H_d v)] with L_dᵀL_d + H_dᵀH_d = 2I  ⇒  L_dᵀL_d v = 2v − H_dᵀH_d v
    out = torch.zeros_like(v)
    for d, h in zip(axes, hi):
        hv = _diff(v, d, boundary) / math.sqrt(2)
        out = out + 2 * v - _diff_adj(hv, d, boundary) / math.sqrt(2) + _diff_adj(h, d, boundary) / math.sqrt(2)
    return out / K


def tv_prox_exact(v: torch.Tensor, lam: float, dims=None, isotropic: bool = False, boundary: str = "replicate",
                  max_iter: int = 2000, tol: float = 1e-10) -> torch.Tensor:
    """Exact ``prox_{λ TV}(v) = argmin_x ½‖x − v‖² + λ TV(x)`` by FISTA on the dual (Beck & Teboulle 2009).

    The dual variable p (one per axis and sample) lives in the unit ℓ∞ ball (anisotropic) or per-sample unit ℓ2 ball
    across axes (isotropic); x = v − λ Dᵀp. Stops when the relative change of x falls below ``tol``.
    """
    _check(boundary, lam)
    if lam == 0:
        return v.clone()
    axes = _axes(v, dims)
    L = 4.0 * len(axes)  # ‖D‖² ≤ 4d

    def Dt(p):
        return sum(_diff_adj(pi, d, boundary) for pi, d in zip(p, axes))

    def project(p):
        if isotropic:
            mag = torch.stack(p).pow(2).sum(0).sqrt().clamp_min(1.0)
            return [pi / mag for pi in p]
        return [pi.clamp(-1, 1) for pi in p]

    p = [torch.zeros_like(v) for _ in axes]
    q = [pi.clone() for pi in p]
    t = 1.0
    x_old = v
    for _ in range(max_iter):
        x = v - lam * Dt(q)
        p_new = project([qi + _diff(x, d, boundary) / (lam * L) for qi, d in zip(q, axes)])
        t_new = (1 + math.sqrt(1 + 4 * t * t)) / 2
        q = [pn + (t - 1) / t_new * (pn - po) for pn, po in zip(p_new, p)]
        p, t = p_new, t_new
        x = v - lam * Dt(p)
        if float((x - x_old).norm()) <= tol * max(float(x.norm()), 1e-30):
            break
        x_old = x
    return v - lam * Dt(p)
