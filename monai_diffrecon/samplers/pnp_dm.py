"""PnP-DM: split-Gibbs posterior sampling with a diffusion prior (Wu et al., NeurIPS 2024).

Alternates, with a coupling strength ρ annealed ``ρ_k = max(ρ₀·decay^k, ρ_min)``:

* likelihood step ``z ~ p(z | x, y) ∝ exp(−‖Az − y‖²/2σ_y² − ‖z − x‖²/2ρ²)`` — an exact Gaussian sample by
  perturb-and-MAP: ``z = prox(x + ρ n₁ | y + σ_y n₂)`` with γ = ρ²/σ_y² (closed form for masks, blur and
  single-coil MRI, CG otherwise);
* prior step ``x ~ p(x | z) ∝ p(x) N(z; x, ρ²I)`` — "denoise from noise level ρ": start the reverse diffusion at
  ``t*`` with σ(t*) = ρ from ``x_t* = √ᾱ(t*)·z`` and run stochastic (η = 1) steps to t = 0, returning the sample
  there (residual noise σ(0) ≈ 0.01, like EDM's σ_min), not its denoised mean. Keep ρ_min well above σ(0).

After ``burn_in`` iterations the chain's states are averaged (posterior mean) and their variance is kept.
"""

from __future__ import annotations

import math

from monai_diffrecon.physics.functional.devices import randn
from monai_diffrecon.samplers.base import Sampler, regularised_start
from monai_diffrecon.samplers.engine import DiffusionLoop, ddim_noise

__all__ = ["PnPDM", "gaussian_likelihood_sample", "denoise_from_level"]


def gaussian_likelihood_sample(x, y, operator, rho: float, sigma_y: float, generator, cg_iters: int = 50):
    """Exact sample of ``N(z; mean, (AᴴA/σ_y² + I/ρ²)⁻¹)`` by perturb-and-MAP (real-valued data)."""
    nx = randn(x.shape, generator, dtype=x.dtype, device=x.device)
    ny = randn(y.shape, generator, dtype=y.dtype, device=y.device)
    return operator.prox_l2(x + rho * nx, y + sigma_y * ny, rho**2 / sigma_y**2, tol=1e-8, max_iter=cg_iters)


def denoise_from_level(loop: DiffusionLoop, z, rho: float, prior_steps: int, generator, counter=None, cond=None):
    """PnP-DM's prior step ``x ~ p(x | z) ∝ p(x) N(z; x, ρ²I)``: start the reverse diffusion of ``loop.prior`` at t* with
    σ(t*) = ρ from ``√ᾱ(t*)·z`` and run ``prior_steps·t*/T`` (≥ 2) stochastic steps, returning the sample (module doc)."""
    prior = loop.prior
    t_star, c = prior.match(rho)
    n = max(2, math.ceil(prior_steps * (float(t_star) + 1) / prior.num_train_timesteps))
    ts = loop.timesteps(n, float(t_star))
    return loop.run(float(c) * z, ts, generator, cond=cond, counter=counter, denoise_last=False)


class PnPDM(Sampler):
    """Split-Gibbs sampler (see module doc).

    Args:
        prior: the diffusion prior. sigma_y: measurement noise std.
        num_iters, burn_in: Gibbs iterations and how many to discard.
        rho0, rho_decay, rho_min: coupling annealing (PnP-DM defaults 10, 0.9, 0.3 for [−1, 1] images).
        prior_steps: reverse steps of each prior step, scaled by t*/T (at least 2).
    """

    def __init__(self, prior, sigma_y: float = 0.05, num_iters: int = 100, burn_in: int = 40, rho0: float = 10.0,
                 rho_decay: float = 0.9, rho_min: float = 0.3, prior_steps: int = 50, cond=None) -> None:
        super().__init__(prior)
        self.sigma_y, self.num_iters, self.burn_in = sigma_y, num_iters, burn_in
        self.rho0, self.rho_decay, self.rho_min, self.prior_steps = rho0, rho_decay, rho_min, prior_steps
        self.loop = DiffusionLoop(prior, noise=ddim_noise(1.0))
        self.cond = cond

    def prior_step(self, z, rho: float, generator, counter):
        return denoise_from_level(self.loop, z, rho, self.prior_steps, generator, counter, self.cond)

    def initialise(self, y, operator):
        """The Tikhonov start :func:`~monai_diffrecon.samplers.base.regularised_start` (once per call)."""
        return regularised_start(y, operator, self.sigma_y)

    def sample_one(self, y, operator, generator, counter, progress, init=None):
        x = init if init is not None else self.initialise(y, operator)
        total, total2, kept = None, None, 0
        for k in range(self.num_iters):
            rho = max(self.rho0 * self.rho_decay**k, self.rho_min)
            z = gaussian_likelihood_sample(x, y, operator, rho, self.sigma_y, generator)
            x = self.prior_step(z, rho, generator, counter)
            if k >= self.burn_in:
                total = x if total is None else total + x
                total2 = x * x if total2 is None else total2 + x * x
                kept += 1
        if kept == 0:
            return x, None, None
        mean = total / kept
        return x, mean, (total2 / kept - mean * mean).clamp_min(0)
