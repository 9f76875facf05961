"""PnP-DM: split-Gibbs posterior sampling with a diffusion prior (Wu et al., "Principled Probabilistic Imaging
using Diffusion Models as Plug-and-Play Priors", NeurIPS 2024, arXiv 2405.18782).

Alternates, with a coupling strength ρ annealed ``ρ_k = max(ρ₀·decay^k, ρ_min)``:

* likelihood step ``z ~ p(z | x, y) ∝ exp(−‖Az − y‖²/2σ_y² − ‖z − x‖²/2ρ²)`` — an exact Gaussian sample by
  perturb-and-MAP: ``z = prox(x + ρ n₁ | y + σ_y n₂)`` with γ = ρ²/σ_y² (closed form for masks, blur and
  single-coil MRI, CG otherwise);
* prior step ``x ~ p(x | z) ∝ p(x) N(z; x, ρ²I)`` — "denoise from noise level ρ": start the reverse diffusion at
  ``t*`` with σ(t*) = ρ from ``x_t* = √ᾱ(t*)·z`` and run stochastic (η = 1) steps to t = 0 through the levels of
  the paper's EDM grid below ρ (:func:`prior_levels`), returning the sample there (residual noise σ(0) ≈ 0.01, like
  EDM's σ_min), not its denoised mean.

At a fixed ρ the chain samples the posterior of the inflated likelihood ``N(y; Ax, σ_y²I + ρ²AAᵀ)``, so the final
coupling ρ_min sets the calibration: the default ``ρ_min = max(σ_y/2, 1.5σ(0))`` inflates the noise std by at most
√(1 + 1/4) − 1 ≈ 12 % and stays above the prior's own floor σ(0) (a prior step from ρ ≈ σ(0) hardly moves). The
paper's fixed 0.3 (tuned at σ_y = 0.05) made the closed-form inpainting posterior's std 19× too wide at σ_y = 0.01
and 2.1× at σ_y = 0.1; with the defaults it is within 16 % (``tests/samplers``). After ``burn_in`` iterations
(default: when ρ reaches ρ_min) the chain's states are averaged (posterior mean) and their variance is kept. A small
ρ_min mixes slowly along directions the data leave to the prior (the chain moves by ≈ ρ per iteration there), so one
chain's variance under-estimates the spread along them; draw several samples (``num_samples``) for the posterior
std.
"""

from __future__ import annotations

import math

import torch

from monai_diffrecon.diffusion.schedule import sigma_of_t, t_of_sigma
from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.physics.functional.devices import randn
from monai_diffrecon.samplers.base import Sampler, check_sigma_y, data_scale, prior_sigma_min, regularised_start
from monai_diffrecon.samplers.engine import DiffusionLoop, ddim_noise

__all__ = ["PnPDM", "gaussian_likelihood_sample", "denoise_from_level", "prior_levels", "annealing_length"]


def gaussian_likelihood_sample(x, y, operator, rho: float, sigma_y: float, generator, cg_iters: int = 50):
    """Exact sample of ``N(z; mean, (AᴴA/σ_y² + I/ρ²)⁻¹)`` by perturb-and-MAP (real-valued data)."""
    nx = randn(x.shape, generator, dtype=x.dtype, device=x.device)
    ny = randn(y.shape, generator, dtype=y.dtype, device=y.device)
    return operator.prox_l2(x + rho * nx, y + sigma_y * ny, rho**2 / sigma_y**2, tol=1e-8, max_iter=cg_iters)


def prior_levels(prior, rho: float, prior_steps: int) -> torch.Tensor:
    """Timesteps of PnP-DM's prior step from level ρ (CPU, float64, descending): ``t*`` with σ(t*) = ρ, then the
    levels below ρ of the EDM grid ``σ_i = (σ_max^{1/7} + i/(N−1)(σ_min^{1/7} − σ_max^{1/7}))^7``, i < N =
    ``prior_steps``, spanning the prior's schedule σ(T−1) … σ(0) (the paper's code uses this grid with N = 100; it
    puts most steps at small σ, where a few uniform-in-t steps under-disperse the sample by ≈ 25 % in std on the
    closed-form Gaussian). The last level is σ(0), i.e. t = 0."""
    ac = prior.alphas_cumprod
    s_min, s_max = float(sigma_of_t(ac, 0.0)), float(sigma_of_t(ac, ac.numel() - 1))
    n = max(int(prior_steps), 2)
    i = torch.arange(n, dtype=torch.float64, device="cpu")
    grid = (s_max ** (1 / 7) + i / (n - 1) * (s_min ** (1 / 7) - s_max ** (1 / 7))) ** 7
    levels = torch.cat([torch.tensor([float(rho)], dtype=torch.float64, device="cpu"), grid[grid < rho * (1 - 1e-9)]])
    ts = t_of_sigma(ac, levels.to(ac.device)).to("cpu", torch.float64)
    if ts.numel() == 1 and float(ts[0]) > 0:  # ρ between σ(0) and the grid's last level above it
        ts = torch.cat([ts, torch.zeros(1, dtype=torch.float64, device="cpu")])
    return ts


def denoise_from_level(loop: DiffusionLoop, z, rho: float, prior_steps: int, generator, counter=None, cond=None,
                       spacing: str = "edm"):
    """PnP-DM's prior step ``x ~ p(x | z) ∝ p(x) N(z; x, ρ²I)``: start the reverse diffusion of ``loop.prior`` at t*
    with σ(t*) = ρ from ``√ᾱ(t*)·z`` and run stochastic steps to t = 0, returning the sample (module doc).

    ``spacing="edm"``: through the EDM-grid levels below ρ (:func:`prior_levels`); ``"uniform"``:
    ``prior_steps·t*/T`` (≥ 2) steps evenly spaced in t (the earlier rule, kept for Blind-PnPDM's bundle)."""
    prior = loop.prior
    t_star, c = prior.match(rho)
    if spacing == "edm":
        ts = prior_levels(prior, rho, prior_steps)
    elif spacing == "uniform":
        n = max(2, math.ceil(prior_steps * (float(t_star) + 1) / prior.num_train_timesteps))
        ts = loop.timesteps(n, float(t_star))
    else:
        raise InvalidValueError(f"spacing: 'edm' or 'uniform', got {spacing!r}")
    return loop.run(float(c) * z, ts, generator, cond=cond, counter=counter, denoise_last=False)


def annealing_length(rho0: float, rho_decay: float, rho_min: float) -> int:
    """Iterations until ``ρ₀·decay^k`` reaches ρ_min (the first k with ρ_k = ρ_min)."""
    if rho0 <= rho_min:
        return 0
    return math.ceil(math.log(rho0 / rho_min) / math.log(1 / rho_decay) - 1e-9)


class PnPDM(Sampler):
    """Split-Gibbs sampler (see module doc). Given only σ_y, every other default follows from it and the data range.

    Args:
        prior: the diffusion prior. sigma_y: measurement noise std (data units).
        num_iters: Gibbs iterations; default ``burn_in + 60`` (the paper's 60 averaged iterations, 100 − 40).
        burn_in: iterations discarded; default :func:`annealing_length` — the averaging starts once ρ has reached
            ρ_min (the paper's 40 ≥ the 33 its annealing 10 → 0.3 takes).
        rho0: initial coupling; default ``10·w`` (w = half-width of ``data_range``; the paper's 10 for [−1, 1]),
            far wider than the data, so the chain starts close to the prior.
        rho_decay: per-iteration annealing factor (paper 0.9).
        rho_min: final coupling; default ``max(σ_y/2, 1.5σ(0))`` with σ(0) the prior's smallest noise level (module
            doc; the paper's fixed 0.3 was tuned for σ_y = 0.05).
        prior_steps: N of the EDM grid of the prior step (the paper's 100; a step from ρ runs the levels below ρ:
            ≈ 30 % of them at ρ = 1, 15 % at ρ = 0.05). Was 50 uniform-in-t steps scaled by t*/T (2–5 at small ρ).
        data_range: ``(lo, hi)`` of the prior's data (default [−1, 1]).
        prior_spacing: ``"edm"`` or ``"uniform"`` (see :func:`denoise_from_level`).

    Example:
        >>> from monai_diffrecon.samplers.testing import gaussian_prior, gaussian_problem
        >>> p = gaussian_problem("inpaint", 0.1)
        >>> out = PnPDM(gaussian_prior(), sigma_y=0.1, num_iters=70)(p.y, p.operator, generator=torch.Generator(),
        ...                                                          progress=False)
        >>> out.mean.shape
        torch.Size([1, 1, 4, 4])
    """

    def __init__(self, prior, sigma_y: float = 0.05, num_iters: int | None = None, burn_in: int | None = None,
                 rho0: float | None = None, rho_decay: float = 0.9, rho_min: float | None = None,
                 prior_steps: int = 100, cond=None, data_range: tuple[float, float] = (-1.0, 1.0),
                 prior_spacing: str = "edm") -> None:
        super().__init__(prior)
        self.sigma_y = check_sigma_y(sigma_y)
        if not 0 < rho_decay < 1:
            raise InvalidValueError(f"rho_decay: must be in (0, 1), got {rho_decay}")
        self.rho0 = 10.0 * data_scale(data_range) if rho0 is None else float(rho0)
        self.rho_min = max(self.sigma_y / 2, 1.5 * prior_sigma_min(prior)) if rho_min is None else float(rho_min)
        if not 0 < self.rho_min:
            raise InvalidValueError(f"rho_min: must be > 0, got {rho_min}")
        self.rho_decay, self.prior_steps, self.prior_spacing = rho_decay, prior_steps, prior_spacing
        if burn_in is None:
            burn_in = annealing_length(self.rho0, rho_decay, self.rho_min)
            if num_iters is not None:
                burn_in = min(burn_in, max(num_iters - 1, 0))
        self.burn_in = int(burn_in)
        self.num_iters = self.burn_in + 60 if num_iters is None else int(num_iters)
        self.loop = DiffusionLoop(prior, noise=ddim_noise(1.0))
        self.cond = cond

    def prior_step(self, z, rho: float, generator, counter):
        return denoise_from_level(self.loop, z, rho, self.prior_steps, generator, counter, self.cond,
                                  self.prior_spacing)

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
