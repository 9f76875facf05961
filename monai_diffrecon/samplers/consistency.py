"""Per-step consistency steps: MONAI ``Transform``s applied to the denoised estimate x̂₀ inside a sampler loop.

Each step takes the loop's state dictionary and returns it with ``"x0"`` updated. Keys provided by the loop:
``x0`` (current estimate), ``y`` (measurement), ``operator`` (LinearOperator), ``x_t``, ``t``, ``alpha_bar`` (ᾱ_t),
``alpha_bar_prev`` (ᾱ of the step's target), ``sigma_t`` (VE noise level √((1−ᾱ)/ᾱ) of the step), ``step`` and
``num_steps``. Because they are plain MONAI transforms, a bundle config lists them (fully-qualified ``_target_``) and
can reorder or replace them.
"""

from __future__ import annotations

import weakref

import torch
from monai.transforms import Transform

from monai_diffrecon.errors import InvalidValueError

__all__ = ["ConsistencyStep", "ClampX0", "ProxConsistency", "GradientConsistency", "RangeNullSpace", "PoissonMLEMConsistency", "TVProx"]


class ConsistencyStep(Transform):
    """Base: ``__call__(state) → state`` with ``state["x0"]`` replaced by :meth:`update`."""

    def update(self, x0: torch.Tensor, state: dict) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, data: dict) -> dict:
        d = dict(data)
        d["x0"] = self.update(d["x0"], d)
        return d


class ClampX0(ConsistencyStep):
    """``x̂₀ ← clamp(x̂₀, lo, hi)``: keeps the estimate inside the prior's data range (DDPM/DiffPIR reference code
    clip x̂₀ to [−1, 1] before the data step)."""

    def __init__(self, lo: float = -1.0, hi: float = 1.0) -> None:
        if not lo < hi:
            raise InvalidValueError(f"ClampX0: need lo < hi, got {lo}, {hi}")
        self.lo, self.hi = lo, hi

    def update(self, x0, state):
        return x0.clamp(self.lo, self.hi)


class ProxConsistency(ConsistencyStep):
    """Data proximal step ``x̂₀ ← argmin ½‖A x − y‖² + (1/2γ)‖x − x̂₀‖²`` via ``operator.prox_l2``.

    ``γ`` is ``gamma`` if given, else DiffPIR's schedule (arXiv 2305.08995): ``ρ_t = λ σ_y² / σ_t²`` and ``γ = 1/ρ_t``,
    i.e. the data weight relative to the prior grows as the noise level σ_t of the step falls.

    Args:
        lam: DiffPIR's λ. sigma_y: measurement noise std. gamma: fixed γ (overrides the schedule).
        cg_iters: CG iterations when the operator has no closed-form prox.
    """

    def __init__(self, lam: float = 7.0, sigma_y: float = 0.05, gamma: float | None = None, cg_iters: int = 30) -> None:
        if gamma is None and (lam <= 0 or sigma_y <= 0):
            raise InvalidValueError("lam and sigma_y must be > 0 (or give gamma)")
        self.lam, self.sigma_y, self.gamma, self.cg_iters = lam, sigma_y, gamma, cg_iters

    def step_size(self, state: dict) -> float:
        if self.gamma is not None:
            return float(self.gamma)
        return float(state["sigma_t"]) ** 2 / (self.lam * self.sigma_y**2)

    def update(self, x0, state):
        return state["operator"].prox_l2(x0, state["y"], self.step_size(state), max_iter=self.cg_iters)


class GradientConsistency(ConsistencyStep):
    """Gradient step on the data term: ``x̂₀ ← x̂₀ − η Aᴴ(A x̂₀ − y)``; ``η = step / ‖A‖²`` if ``normalise``."""

    def __init__(self, step: float = 1.0, normalise: bool = True, iterations: int = 1) -> None:
        self.step, self.normalise, self.iterations = step, normalise, iterations
        self._norm2: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # operator → ‖A‖² (cached)

    def update(self, x0, state):
        A = state["operator"]
        eta = self.step
        if self.normalise:
            if A not in self._norm2:
                self._norm2[A] = A.norm(tuple(x0.shape), max_iter=50, tol=1e-4) ** 2
            eta = self.step / max(self._norm2[A], 1e-12)
        for _ in range(self.iterations):
            x0 = x0 - eta * A.adjoint(A(x0) - state["y"])
        return x0


class RangeNullSpace(ConsistencyStep):
    """DDNM's range–null-space decomposition (arXiv 2212.00490): ``x̂₀ ← x̂₀ − λ A⁺(A x̂₀ − y)``; the range of Aᴴ
    comes from the data, the null space from the prior.

    Noisy data (DDNM⁺): DDNM⁺ scales the correction per singular value ``s`` by ``min(1, σ_t s/σ_y)`` so that the
    measurement noise copied into the image never exceeds the diffusion noise level σ_t of the step. Without an SVD
    we apply the smooth version of that rule, ``(σ_t s)²/((σ_t s)² + σ_y²)``, which is exactly the Tikhonov-damped
    pseudo-inverse ``(AᴴA + ρ_t I)⁻¹Aᴴ`` with ``ρ_t = (σ_y/σ_t)²`` (σ_t the VE level √((1−ᾱ)/ᾱ)) — computed by
    the operator's ``prox_l2`` (closed form where one exists, CG otherwise). Small singular values, whose pinv
    would amplify the noise (deblurring, g-factor in parallel MRI), are then left to the prior.
    """

    def __init__(self, scale: float = 1.0, sigma_y: float = 0.0, cg_iters: int = 50) -> None:
        self.scale, self.sigma_y, self.cg_iters = scale, sigma_y, cg_iters

    def update(self, x0, state):
        A, y = state["operator"], state["y"]
        if self.sigma_y > 0:
            sigma_t = float(state["sigma_t"].flatten()[0])
            gamma = (sigma_t / self.sigma_y) ** 2  # prox weight 1/ρ_t
            return x0 + self.scale * (A.prox_l2(x0, y, gamma, max_iter=self.cg_iters) - x0)
        return x0 - self.scale * A.pinv(A(x0) - y, max_iter=self.cg_iters)


class PoissonMLEMConsistency(ConsistencyStep):
    """Poisson-likelihood data consistency on x̂₀ (emission data: ``y`` are counts, ``A`` the system model).

    ``lam = None`` — plain MLEM: ``iterations`` MLEM updates started from x̂₀ (the data term alone; every step pulls
    the image fully towards the counts, noise included).

    ``lam > 0`` — Poisson proximal step (the Poisson analogue of DiffPIR's data step): a few iterations of
    penalised EM for ``min_x  Σ (A x − y log A x) + β_t/2 ‖x − x̂₀‖²`` with De Pierro's separable surrogate, which
    has a closed-form per-voxel update

        x ← ((β z − s) + √((s − β z)² + 4 β s x_EM)) / (2β),   x_EM = x·Aᵀ(y/Ax)/s,  s = Aᵀ1,  z = x̂₀,

    and ``β_t = lam / (σ_t · scale)²``: the prior's uncertainty about x̂₀ at this step (σ_t the VE noise level, in
    the prior's units, times ``scale`` to counts). Early steps (large σ_t) follow the data; late steps (σ_t → 0)
    keep the prior's estimate, so the last steps do not copy Poisson noise into the image. β → 0 gives MLEM.

    The prior may work in a normalised intensity space: ``x_phys = (x̂₀ − offset)·scale`` is reconstructed and
    mapped back. Non-positive values are floored at ``floor`` (MLEM keeps zeros at zero).

    Args:
        iterations: (penalised) EM iterations per sampler step. scale, offset: prior → physical (counts per voxel).
        lam: proximal weight (``None``: plain MLEM). additive: optional expected additive counts (scatter).
    """

    def __init__(self, iterations: int = 2, scale: float = 1.0, offset: float = 0.0, floor: float = 1e-6, additive: torch.Tensor | None = None,
                 lam: float | None = None) -> None:
        if lam is not None and lam <= 0:
            raise InvalidValueError(f"lam: must be > 0 or None, got {lam}")
        self.iterations, self.scale, self.offset, self.floor, self.additive, self.lam = iterations, scale, offset, floor, additive, lam
        self._sens: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # operator → sensitivity Aᵀ1 (cached)

    def update(self, x0, state):
        A, y = state["operator"], state["y"]
        z = (x0 - self.offset) * self.scale
        x = z.clamp_min(self.floor)
        if A not in self._sens or self._sens[A].shape != x.shape:
            self._sens[A] = A.adjoint(torch.ones_like(y))
        sens = self._sens[A]
        beta = None
        if self.lam is not None:
            beta = self.lam / (float(state["sigma_t"].flatten()[0]) * self.scale) ** 2
        for _ in range(self.iterations):
            est = A(x) if self.additive is None else A(x) + self.additive
            ratio = torch.where(est > 0, y / est.clamp_min(1e-12), torch.zeros_like(est))
            x_em = torch.where(sens > 0, x * A.adjoint(ratio) / sens.clamp_min(1e-12), torch.zeros_like(x))
            if beta is None:
                x = x_em
            else:
                b = beta * z - sens
                root = torch.sqrt(b * b + 4 * beta * sens * x_em)
                # the positive root, in the form without cancellation for either sign of b
                x = torch.where(b > 0, (b + root) / (2 * beta), 2 * sens * x_em / (root - b).clamp_min(1e-30)).clamp_min(self.floor)
        return x / self.scale + self.offset


class TVProx(ConsistencyStep):
    """Closed-form TV proximal step (arXiv 2412.07718) on x̂₀ — see :func:`monai_diffrecon.regularizers.tv_prox`.

    Args:
        lam: TV weight λ. dims: axes to regularise (default: all spatial axes; e.g. ``(-1,)`` for along-z only).
        isotropic: group shrinkage across axes (isotropic TV) instead of per-axis soft thresholding.
        boundary: ``"replicate"`` (non-circular) or ``"circular"``.
    """

    def __init__(self, lam: float = 0.01, dims: tuple[int, ...] | None = None, isotropic: bool = False, boundary: str = "replicate") -> None:
        self.lam, self.dims, self.isotropic, self.boundary = lam, dims, isotropic, boundary

    def update(self, x0, state):
        from monai_diffrecon.regularizers.tv import tv_prox

        return tv_prox(x0, self.lam, self.dims, self.isotropic, self.boundary)
