"""Diffusion samplers as short presets over :class:`~monai_diffrecon.samplers.engine.DiffusionLoop`.

Each preset chooses consistency steps, a noise rule and (DPS) a guidance term; the loop does the rest.
"""

from __future__ import annotations

import torch

from monai_diffrecon.physics.functional.devices import device_of, randn
from monai_diffrecon.samplers.base import Sampler, check_sigma_y, data_scale
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
    """Diffusion posterior sampling (Chung et al., "Diffusion Posterior Sampling for General Noisy Inverse Problems",
    arXiv 2209.14687): ancestral steps plus ``x_{t−1} ← x_{t−1} − ζ_t ∇_{x_t}‖y − A x̂₀(x_t)‖`` (gradients through
    the network; :func:`~monai_diffrecon.samplers.engine.dps_guidance`).

    Args:
        prior: the diffusion prior. num_steps: ancestral steps (paper: 1000).
        zeta: the paper's normalised step ζ' in data units; default ``1.0·w`` with w the half-width of ``data_range``
            (the official code's 0.3–1.0 at 1000 steps for [−1, 1] images; a step on ∇‖r‖ moves x by ζ, so it
            scales with the data's units).
        eta: DDIM noise (1 = the paper's ancestral step).
        cond: condition channels of a conditional prior.
        clip: ``(lo, hi)`` clamps x̂₀ to the prior's data range before the step, as the reference code does for
            images (off by default: the closed-form Gaussian tests have unbounded data); without it, few-step runs
            diverge (at 10 steps the first x̂₀ divides ε̂'s error by √ᾱ ≈ 0.02).
        sigma_y: measurement noise std (data units). ``None``: the paper's step alone. Given: each step is also
            bounded by the reverse-SDE step of the DPS likelihood N(y; A x̂₀, σ_y²), and the noise-free last step
            takes none, so the sample stops being pushed once the residual reaches the noise (closed-form
            inpainting posterior at σ_y = 0.01: std 23× too wide without, 4 % off with; see
            :func:`~monai_diffrecon.samplers.engine.dps_guidance`). DPS stays an approximation on ill-conditioned
            operators (deblurring at σ_y = 0.01: posterior mean off by 0.6–0.8 prior std either way).
        data_range: ``(lo, hi)`` of the prior's data (default [−1, 1]).
    """

    def __init__(self, prior, num_steps: int = 200, zeta: float | None = None, eta: float = 1.0, cond=None,
                 clip: tuple[float, float] | None = None, sigma_y: float | None = None,
                 data_range: tuple[float, float] = (-1.0, 1.0)) -> None:
        self.sigma_y = check_sigma_y(sigma_y, allow_none=True)
        self.zeta = 1.0 * data_scale(data_range) if zeta is None else float(zeta)
        super().__init__(prior, num_steps, [ClampX0(*clip)] if clip is not None else (), eta,
                         dps_guidance(self.zeta, self.sigma_y), cond=cond)


class DDNM(DiffusionSampler):
    """Denoising diffusion null-space model (Wang et al., "Zero-Shot Image Restoration Using Denoising Diffusion
    Null-Space Model", arXiv 2212.00490): x̂₀ ← x̂₀ − λ A⁺(A x̂₀ − y) each step, DDIM with η = 0.85 by default.

    ``sigma_y`` (data units) > 0 is DDNM⁺: the correction is damped per singular value below the measurement noise
    (through the Tikhonov-damped pseudo-inverse with ρ_t = (σ_y/σ_t)², see :class:`RangeNullSpace`) — the damping is
    the noise level itself, nothing to tune; 0 (the default) is plain DDNM for noiseless data, which copies the
    noise A⁺n into the image when there is some."""

    def __init__(self, prior, num_steps: int = 100, eta: float = 0.85, scale: float = 1.0, sigma_y: float = 0.0, cond=None) -> None:
        self.sigma_y = check_sigma_y(sigma_y, allow_zero=True)
        super().__init__(prior, num_steps, [RangeNullSpace(scale, self.sigma_y)], eta, cond=cond)


class DiffPIR(DiffusionSampler):
    """DiffPIR (Zhu et al., "Denoising Diffusion Models for Plug-and-Play Image Restoration", arXiv 2305.08995): HQS
    data step x̂₀ ← prox_{γ_t}(x̂₀) with ρ_t = λσ_y²/σ_t², then the DDIM-type step with ``s² = ζ(1 − ᾱ')`` (ζ mixes
    fresh noise into the re-derived ε̂).

    Args:
        prior: the diffusion prior. num_steps: reverse steps (paper: 100).
        lam: λ; default 1, the Bayes weight: the data step is then the posterior mean of x given y and an x̂₀ whose
            error std is σ_t, the diffusion's own noise level at the step (exact for white data; the closed-form
            Gaussian posterior mean is met within 0.1 prior std at σ_y = 0.01 and 0.1, where the paper's λ = 7, tuned
            on natural images whose denoisers err less than σ_t, is off by up to 0.33).
        zeta: ζ (paper: 0.3, kept).
        sigma_y: measurement noise std (data units; > 0).
        cond: condition channels of a conditional prior.
        clip: ``(lo, hi)`` clamps x̂₀ to the prior's data range before the data step, as the reference code does (off
            by default: the closed-form Gaussian tests have unbounded data).
        spacing: ``"uniform"`` or ``"quad"`` (the paper's quadratic timestep skip).
    """

    def __init__(self, prior, num_steps: int = 100, lam: float = 1.0, zeta: float = 0.3, sigma_y: float = 0.05,
                 cond=None, clip: tuple[float, float] | None = None, spacing: str = "uniform") -> None:
        self.sigma_y = check_sigma_y(sigma_y, name="sigma_y (DiffPIR needs the measurement noise level)")
        steps = ([ClampX0(*clip)] if clip is not None else []) + [ProxConsistency(lam, self.sigma_y)]
        super().__init__(prior, num_steps, steps, noise=diffpir_noise(zeta), cond=cond, spacing=spacing)
