"""VP schedule helpers shared by priors and samplers.

The discrete VP schedule of a MONAI scheduler (``alphas_cumprod`` ᾱ_t, t = 0 … T−1) is extended to continuous ``t``
by linear interpolation of ᾱ between integer steps (the score_pnp code interpolates the schedule the same way), and
down to t = −1 (ᾱ = 1, no noise) so that noise levels below the first step remain reachable.
The equivalent variance-exploding noise level is ``σ(t) = √((1 − ᾱ_t)/ᾱ_t)`` (increasing in t); :func:`t_of_sigma`
inverts it piecewise-linearly, so ``σ(t_of_sigma(σ))`` equals σ to float64 round-off inside the schedule's range.

Devices: ᾱ(t) and t(σ) are computed on the device of ``alphas_cumprod`` (a prior moved to a GPU indexes its own
schedule there, without a copy back to the CPU per step); timestep sequences, which the samplers iterate in Python,
are CPU tensors.
"""

from __future__ import annotations

import torch

from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.physics.functional.devices import device_of

__all__ = ["alpha_bar_at", "sigma_of_t", "t_of_sigma", "make_scheduler", "timestep_sequence"]


def _ab(alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """ᾱ in float64 with ᾱ(−1) = 1 prepended (index k ↔ t = k − 1), on the schedule's device."""
    ac = torch.as_tensor(alphas_cumprod, device=device_of(alphas_cumprod)).detach().to(torch.float64)
    return torch.cat([torch.ones(1, dtype=torch.float64, device=ac.device), ac])


def alpha_bar_at(alphas_cumprod: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """ᾱ at continuous ``t`` ∈ [−1, T−1]: linear between schedule steps, and between ᾱ(−1) = 1 (clean data) and
    ᾱ₀ on [−1, 0] (so noise levels below the first step, σ < σ(0), stay reachable); ``t ≤ −1`` gives 1."""
    ab = _ab(alphas_cumprod)
    tt = torch.as_tensor(t, dtype=torch.float64, device=ab.device).detach()  # computed where the schedule lives
    T = ab.numel()
    tc = (tt + 1).clamp(0, T - 1)
    lo = tc.floor().long().clamp(0, T - 1)
    hi = (lo + 1).clamp(max=T - 1)
    w = tc - lo.to(torch.float64)
    return (1 - w) * ab[lo] + w * ab[hi]


def sigma_of_t(alphas_cumprod: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """VE noise level σ(t) = √((1 − ᾱ)/ᾱ) at continuous t."""
    a = alpha_bar_at(alphas_cumprod, t)
    return torch.sqrt((1 - a) / a)


def t_of_sigma(alphas_cumprod: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
    """Continuous t with σ(t) = sigma: ᾱ = 1/(1 + σ²) located between schedule steps, interpolated linearly in ᾱ
    (consistent with :func:`alpha_bar_at`). Raises if σ is outside ``[σ(0), σ(T−1)]``."""
    ab = _ab(alphas_cumprod)
    s = torch.as_tensor(sigma, dtype=torch.float64, device=ab.device)
    if bool((s < 0).any()):
        raise InvalidValueError(f"sigma: must be ≥ 0, got {s.tolist()}")
    s_max = torch.sqrt((1 - ab[-1]) / ab[-1])
    # tolerate float32 round-off of callers' own schedules (σ up to 1e-4 above the top is clamped to it)
    s = torch.where((s > s_max) & (s <= s_max * (1 + 1e-4)), s_max, s)
    target = 1.0 / (1.0 + s**2)
    if bool((target < ab[-1] - 1e-15).any()):
        hi = float(torch.sqrt((1 - ab[-1]) / ab[-1]))
        raise InvalidValueError(f"sigma: {s.tolist()} above the schedule's largest noise level {hi:.4g}")
    # ab is decreasing: find k with ab[k] ≥ target ≥ ab[k+1]
    rev = torch.flip(ab, [0])  # increasing
    j = torch.searchsorted(rev, target.clamp(ab[-1], 1.0))
    k = (ab.numel() - 1 - j).clamp(0, ab.numel() - 2)
    a0, a1 = ab[k], ab[k + 1]
    w = ((a0 - target) / (a0 - a1)).clamp(0, 1)
    return k.to(torch.float64) + w - 1.0


def make_scheduler(kind: str = "ddim", num_train_timesteps: int = 1000, schedule: str = "linear_beta", beta_start: float = 1e-4, beta_end: float = 0.02):
    """A MONAI scheduler with the DDPM linear schedule (β from 1e-4 to 0.02) and no x̂₀ clipping."""
    from monai.networks.schedulers import DDIMScheduler, DDPMScheduler

    common = dict(num_train_timesteps=num_train_timesteps, schedule=schedule, beta_start=beta_start, beta_end=beta_end, clip_sample=False)
    if kind == "ddim":
        return DDIMScheduler(**common)
    if kind == "ddpm":
        return DDPMScheduler(**common)
    raise InvalidValueError(f"kind: ddim or ddpm, got {kind!r}")


def timestep_sequence(scheduler, num_steps: int, t_start: float | None = None, spacing: str = "uniform") -> torch.Tensor:
    """Descending timesteps for ``num_steps`` reverse steps.

    From the top: the scheduler's own ``set_timesteps`` sequence (MONAI), so integer steps match training;
    ``spacing="quad"``: DiffPIR's quadratic skip ``t_i = T − 1 − ⌊√(i·T²/(N−1))⌋`` (large jumps at high noise, dense
    steps near t = 0). From an intermediate ``t_start`` (PnP-DM's "denoise from noise level ρ"): ``num_steps``
    values evenly spaced from ``t_start`` to 0 (continuous t).
    """
    if num_steps < 1:
        raise InvalidValueError(f"num_steps: must be ≥ 1, got {num_steps}")
    if spacing not in ("uniform", "quad"):
        raise InvalidValueError(f"spacing: 'uniform' or 'quad', got {spacing!r}")
    if t_start is None and spacing == "quad" and num_steps > 1:
        T = int(scheduler.num_train_timesteps)
        seq = torch.sqrt(torch.linspace(0.0, float(T) ** 2, num_steps, dtype=torch.float64, device="cpu")).floor().clamp_max(T - 1)
        return torch.unique(T - 1 - seq).flip(0)
    if t_start is None:
        scheduler.set_timesteps(num_steps)
        return scheduler.timesteps.to(torch.float64).cpu()
    if t_start <= 0:  # below the first training step: one step straight to the clean estimate
        return torch.tensor([float(t_start)], dtype=torch.float64, device="cpu")
    return torch.linspace(float(t_start), 0.0, num_steps, dtype=torch.float64, device="cpu")
