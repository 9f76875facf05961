"""Diffusion samplers as short presets over :class:`~monai_diffrecon.samplers.engine.DiffusionLoop`.

Each preset chooses consistency steps, a noise rule and (DPS) a guidance term; the loop does the rest.
"""

from __future__ import annotations

import torch

from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.physics.functional.devices import device_of, randn
from monai_diffrecon.samplers.base import Sampler
from monai_diffrecon.samplers.consistency import ClampX0, ProxConsistency, RangeNullSpace
from monai_diffrecon.samplers.engine import DiffusionLoop, ddim_noise, diffpir_noise, dps_guidance

__all__ = ["DiffusionSampler", "Unconditional", "Conditional", "DPS", "DDNM", "DiffPIR"]


class DiffusionSampler(Sampler):
    """Generic diffusion posterior sampler: start from N(0, I) in the operator's domain, run the loop.

    Args:
        prior: the diffusion prior.
        num_steps: reverse steps (the MONAI scheduler's ``set_timesteps``).
        consistency: list of consistency steps (MONAI transforms) applied to x̂₀ at every step.
        eta: DDIM noise (1 = DDPM ancestral). guidance: DPS-style callable, or ``None``.
        noise: explicit noise rule (overrides ``eta``).
        cond: condition channels for a conditional prior (e.g. 2.5D neighbours + CT), ``(B, C_cond, …)``.
        trajectory_png: if given, a PNG of x̂₀ along the first chain's steps is written there (2D images, or the
            middle slice of the last axis in 3D).
        spacing: ``"uniform"`` (the scheduler's ``set_timesteps``) or ``"quad"`` (DiffPIR's quadratic skip).
    """

    def __init__(self, prior, num_steps: int = 100, consistency=(), eta: float = 1.0, guidance=None, noise=None, cond=None,
                 trajectory_png: str | None = None, spacing: str = "uniform") -> None:
        super().__init__(prior)
        self.num_steps, self.spacing = num_steps, spacing
        self.loop = DiffusionLoop(prior, consistency, noise if noise is not None else ddim_noise(eta), guidance)
        self.cond = cond
        self.trajectory_png = trajectory_png

    def init_shape(self, y, operator) -> tuple[int, ...]:
        return tuple(operator.adjoint(y).shape)

    def condition(self, y, operator):
        """What the prior is conditioned on for this call (the fixed ``cond`` channels by default)."""
        return self.cond

    def sample_one(self, y, operator, generator, counter, progress, init=None):
        shape = self.init_shape(y, operator)
        dtype = torch.float64 if (y is not None and y.dtype == torch.float64) else torch.float32
        # on y's device; without data (unconditional sampling) on the prior's
        x = randn(shape, generator, dtype=dtype, device=y.device if torch.is_tensor(y) else device_of(self.prior))
        ts = self.loop.timesteps(self.num_steps, spacing=self.spacing)
        traj = [] if self.trajectory_png else None
        x = self.loop.run(x, ts, generator, y, operator, self.condition(y, operator), counter, progress, traj)
        if traj:
            save_trajectory(traj, self.trajectory_png)
            self.trajectory_png = None  # first chain only
        return x, None, None


def save_trajectory(trajectory: list, path: str, panels: int = 8) -> None:
    """PNG of x̂₀ at ``panels`` evenly spaced steps (first batch element, first channel, mid-slice if 3D)."""
    from monai_diffrecon.data.preview import save_panels

    idx = torch.linspace(0, len(trajectory) - 1, min(panels, len(trajectory)), device="cpu").round().long().tolist()
    imgs = []
    for i in idx:
        a = trajectory[i][0, 0].detach().float().cpu()
        while a.ndim > 2:
            a = a[..., a.shape[-1] // 2]
        imgs.append((f"step {i + 1}/{len(trajectory)}", a.abs().numpy() if a.is_complex() else a.numpy(), "gray"))
    save_panels(imgs, path, ncols=min(panels, 4), title="x̂₀ along the reverse diffusion")


class Unconditional(DiffusionSampler):
    """Unconditional DDPM/DDIM sampling of ``shape`` (call with ``y=None, operator=None``)."""

    def __init__(self, prior, shape: tuple[int, ...], num_steps: int = 100, eta: float = 1.0, cond=None) -> None:
        super().__init__(prior, num_steps, (), eta, cond=cond)
        self.shape = tuple(shape)

    def init_shape(self, y, operator):
        return self.shape


class Conditional(DiffusionSampler):
    """A conditional DDPM/DDIM: sample ``out_channels`` image channels from noise, the prior conditioned on the
    measurement itself (``cond = y``; call with ``operator=None``) — e.g. the cloud-removal baseline that starts from
    noise instead of the cloudy image (:class:`~monai_diffrecon.networks.dbcr.StackedDBCR`). ``clip=(lo, hi)`` clamps
    x̂₀ to the data range at every step (DDPM's ``clip_denoised``): at t ≈ T the estimate divides ε̂'s error by
    √ᾱ_T ≈ 0.006, and an unclipped deterministic DDIM carries that to the end."""

    def __init__(self, prior, out_channels: int, num_steps: int = 50, eta: float = 0.0, clip: tuple[float, float] | None = None) -> None:
        super().__init__(prior, num_steps, [ClampX0(*clip)] if clip is not None else (), eta)
        self.out_channels = int(out_channels)

    def init_shape(self, y, operator):
        return (y.shape[0], self.out_channels, *y.shape[2:])

    def condition(self, y, operator):
        return y


class DPS(DiffusionSampler):
    """Diffusion posterior sampling (Chung et al., arXiv 2209.14687): ancestral steps plus
    ``x_{t−1} ← x_{t−1} − ζ ∇_{x_t}‖y − A x̂₀(x_t)‖`` (gradients through the network). ``clip=(lo, hi)`` clamps x̂₀
    to the prior's data range before the step, as the reference code does for images (off by default: the closed-form
    Gaussian tests have unbounded data); without it, few-step runs diverge (at 10 steps the first x̂₀ divides ε̂'s
    error by √ᾱ ≈ 0.02)."""

    def __init__(self, prior, num_steps: int = 200, zeta: float = 1.0, eta: float = 1.0, cond=None,
                 clip: tuple[float, float] | None = None) -> None:
        super().__init__(prior, num_steps, [ClampX0(*clip)] if clip is not None else (), eta, dps_guidance(zeta), cond=cond)


class DDNM(DiffusionSampler):
    """Denoising diffusion null-space model (Wang et al., arXiv 2212.00490): x̂₀ ← x̂₀ − λ_t A⁺(A x̂₀ − y) each step,
    DDIM with η = 0.85 by default; ``sigma_y > 0`` damps the correction per singular value below the measurement
    noise (DDNM⁺, through the Tikhonov-damped pseudo-inverse; see :class:`RangeNullSpace`)."""

    def __init__(self, prior, num_steps: int = 100, eta: float = 0.85, scale: float = 1.0, sigma_y: float = 0.0, cond=None) -> None:
        super().__init__(prior, num_steps, [RangeNullSpace(scale, sigma_y)], eta, cond=cond)


class DiffPIR(DiffusionSampler):
    """DiffPIR (Zhu et al., arXiv 2305.08995): HQS data step x̂₀ ← prox_{γ_t}(x̂₀) with ρ_t = λσ_y²/σ_t², then the
    DDIM-type step with ``s² = ζ(1 − ᾱ')`` (ζ mixes fresh noise into the re-derived ε̂). ``clip=(lo, hi)`` clamps
    x̂₀ to the prior's data range before the data step, as the reference code does (off by default: the closed-form
    Gaussian tests have unbounded data)."""

    def __init__(self, prior, num_steps: int = 100, lam: float = 7.0, zeta: float = 0.3, sigma_y: float = 0.05, cond=None,
                 clip: tuple[float, float] | None = None, spacing: str = "uniform") -> None:
        if sigma_y <= 0:
            raise InvalidValueError("sigma_y: DiffPIR needs the measurement noise level (> 0)")
        steps = ([ClampX0(*clip)] if clip is not None else []) + [ProxConsistency(lam, sigma_y)]
        super().__init__(prior, num_steps, steps, noise=diffpir_noise(zeta), cond=cond, spacing=spacing)
