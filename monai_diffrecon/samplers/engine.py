"""The one reverse-diffusion loop every diffusion sampler runs.

Per step ``t → t'`` (descending timesteps from the MONAI scheduler's ``set_timesteps``, or a continuous sequence
from an intermediate ``t*``):

1. ε̂ = ε_θ(x_t, t) and Tweedie x̂₀ = (x_t − √(1−ᾱ_t) ε̂)/√ᾱ_t (DDPM eq. 15);
2. the consistency steps (MONAI transforms) update x̂₀ with the measurement;
3. ε̂ is re-derived from the corrected x̂₀, ε̂' = (x_t − √ᾱ_t x̂₀')/√(1−ᾱ_t), and the DDIM update (eq. 12 of
   arXiv 2010.02502) moves to t': ``x_t' = √ᾱ_t' x̂₀' + √(1 − ᾱ_t' − s²) ε̂' + s z``, with the noise level ``s``
   from the noise rule: DDIM ``η`` (η = 1 is DDPM's ancestral step, η = 0 deterministic) or DiffPIR's ``ζ``
   (``s² = ζ(1 − ᾱ_t')``);
4. optional guidance (DPS): ``x_t' ← x_t' − ζ_t ∇_{x_t} ‖y − A x̂₀(x_t)‖``, the only case with gradients on.

A sampler whose x̂₀ is not one network call on ``x_t`` supplies an ``estimator`` instead of step 1: MSM (arXiv
2505.11853, Algorithm 1) aggregates w partial-measurement estimates per step and re-noises ``x_t`` on each partial mask
inside the step; the estimator returns the updated ``x_t`` with its x̂₀, and steps 2–3 run unchanged. Complex states
(multi-coil k-space) draw complex noise whose real and imaginary parts are each N(0, 1), the per-channel noise of a
2-channel image diffusion.

The update is written here instead of calling ``scheduler.step()`` because MONAI 1.6's steppers assume a step
size other than the one ``set_timesteps`` produces: ``DDIMScheduler.step`` moves to ``t − T // N`` while the
next timestep is ``t − (T−1)/(N−1)`` (e.g. 999 → 899 then evaluates at 888 for N = 10), and
``DDPMScheduler.step`` always moves to ``t − 1`` whatever N is. Both bias the samples when N < T; the schedule
(ᾱ, timesteps) still comes from the MONAI scheduler. ``tests/samplers`` measures the difference on a Gaussian.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from tqdm.auto import tqdm

from monai_diffrecon.diffusion.schedule import timestep_sequence
from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.physics.functional.devices import randn

__all__ = ["DiffusionLoop", "ddim_noise", "diffpir_noise", "dps_guidance"]


def ddim_noise(eta: float) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """DDIM noise rule: ``s = η √((1−ᾱ')/(1−ᾱ) · (1 − ᾱ/ᾱ'))`` (η = 1: DDPM ancestral sampling)."""

    def rule(a: torch.Tensor, a_prev: torch.Tensor) -> torch.Tensor:
        return eta * torch.sqrt(((1 - a_prev) / (1 - a) * (1 - a / a_prev)).clamp_min(0))

    return rule


def diffpir_noise(zeta: float) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """DiffPIR noise rule: ``s = √(ζ (1 − ᾱ'))`` (ζ = 0 deterministic, ζ = 1 all fresh noise)."""

    def rule(a: torch.Tensor, a_prev: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(zeta * (1 - a_prev))

    return rule


def dps_guidance(zeta: float, sigma_y: float | None = None) -> Callable:
    """DPS (arXiv 2209.14687): returns ``ζ_t ∇_{x_t} ‖y − A x̂₀(x_t)‖``, one residual norm per batch element.

    ``ζ_t = ζ``: the paper's normalised step ζ_i = ζ'/‖y − A x̂₀‖ on the squared norm (the official code applies it
    as a step on the norm), a step of fixed size in data units whatever the residual. With ``sigma_y``:
    ``ζ_t = min(ζ, ‖r‖ β/(√α (σ_y² + β)))`` with ``β = 1 − ᾱ_t/ᾱ_t'`` and ``α = 1 − β`` of the step — never more than
    the reverse-SDE step of the likelihood the method approximates, N(y; A x̂₀, σ_y²I) (DPS eq. 16), taken in its
    stable implicit form (the explicit β/σ_y² overshoots once β > 2σ_y² for a unit-norm A) — and no step on the
    last, noise-free step to x̂₀ (there a likelihood drift has no injected noise to balance it and pulls every
    sample towards y: the measured pixels' spread collapsed to 0 at σ_y = 0.01). Without the bound the fixed-size
    step keeps moving the sample by ≈ ζ after the residual has reached the noise level: at σ_y = 0.01 the
    closed-form inpainting posterior's std came out 23× too large (3.9 % off with it).
    """

    def guide(x_t: torch.Tensor, x0: torch.Tensor, state: dict) -> torch.Tensor:
        r = state["operator"](x0) - state["y"]
        norms = torch.linalg.vector_norm(r.reshape(r.shape[0], -1), dim=1)
        (grad,) = torch.autograd.grad(norms.sum(), x_t)
        if sigma_y is None:
            return zeta * grad
        a, a_prev = (float(state[k].reshape(-1)[0]) for k in ("alpha_bar", "alpha_bar_prev"))
        if a_prev >= 1:
            return torch.zeros_like(grad)
        beta = 1 - a / a_prev
        bound = norms.detach() * beta / ((1 - beta) ** 0.5 * (sigma_y**2 + beta))
        step = bound.clamp(max=zeta).to(grad.dtype)
        return step.reshape(-1, *([1] * (grad.ndim - 1))) * grad

    return guide


class DiffusionLoop:
    """Reverse diffusion with per-step consistency steps, guidance and a noise rule (see module doc).

    Args:
        prior: a :class:`~monai_diffrecon.diffusion.DiffusionPrior`.
        x0_steps: consistency steps (MONAI transforms, see :mod:`monai_diffrecon.samplers.consistency`).
        noise: ``(ᾱ_t, ᾱ_t') → s`` (:func:`ddim_noise` / :func:`diffpir_noise`).
        guidance: ``(x_t, x̂₀, state) → correction`` subtracted after the step (enables autograd through ε_θ).
        shared_noise: draw one noise image per step for the whole batch (slices of a volume).
        estimator: ``(x_t, t, t', ᾱ_t, ᾱ_t', generator, counter) → (x_t, x̂₀)`` replacing the network call of step 1
            (module doc); it counts its own network calls. Not combined with ``guidance``.
    """

    def __init__(self, prior, x0_steps: Sequence = (), noise: Callable | None = None, guidance: Callable | None = None,
                 shared_noise: bool = False, estimator: Callable | None = None) -> None:
        if estimator is not None and guidance is not None:
            raise InvalidValueError("DiffusionLoop: an estimator and a guidance term cannot be combined")
        self.prior = prior
        self.x0_steps = list(x0_steps)
        self.noise = noise if noise is not None else ddim_noise(1.0)
        self.guidance = guidance
        self.shared_noise = shared_noise
        self.estimator = estimator

    def draw(self, shape, generator: torch.Generator, dtype, device=None) -> torch.Tensor:
        """Standard normal noise on ``device`` (``None``: the generator's); with ``shared_noise`` one draw is shared
        by the whole batch (DDPET-3D's trick for the slices of one volume processed as a batch). Drawn on the
        generator's device, then moved: the same stream on every device. A complex ``dtype`` draws real and imaginary
        parts each N(0, 1)."""
        if dtype.is_complex:
            real = torch.float64 if dtype == torch.complex128 else torch.float32
            return torch.complex(self.draw(shape, generator, real, device), self.draw(shape, generator, real, device))
        if self.shared_noise:
            return randn((1, *shape[1:]), generator, dtype=dtype, device=device).expand(shape)
        return randn(shape, generator, dtype=dtype, device=device)

    def step(self, x_t: torch.Tensor, x0: torch.Tensor, a: torch.Tensor, a_prev: torch.Tensor, final: bool,
             generator: torch.Generator) -> torch.Tensor:
        """Step 3 of the module doc: from ``x_t`` with clean estimate ``x̂₀`` to ``t'`` (ᾱ ``a`` → ``a_prev``) by the
        noise rule; ``final`` (the step to x̂₀) adds no noise. Samplers that run two chains in lockstep (BlindDPS)
        call it once per chain."""
        e = (x_t - torch.sqrt(a) * x0) / torch.sqrt(1 - a)
        s = self.noise(a, a_prev) if not final else torch.zeros_like(a)
        x_next = torch.sqrt(a_prev) * x0 + torch.sqrt((1 - a_prev - s**2).clamp_min(0)) * e
        if bool((s > 0).any()):
            x_next = x_next + s * self.draw(x_t.shape, generator, x_t.dtype, x_t.device)
        return x_next

    def timesteps(self, num_steps: int, t_start: float | None = None, spacing: str = "uniform") -> torch.Tensor:
        return timestep_sequence(self.prior.scheduler, num_steps, t_start, spacing)

    def run(
        self,
        x_t: torch.Tensor,
        timesteps: torch.Tensor,
        generator: torch.Generator,
        y: torch.Tensor | None = None,
        operator=None,
        cond: torch.Tensor | None = None,
        counter=None,
        progress: bool = False,
        trajectory: list | None = None,
        denoise_last: bool = True,
    ) -> torch.Tensor:
        """Run from ``x_t`` at ``timesteps[0]`` through the following timesteps.

        ``denoise_last=True``: the last step goes to the clean estimate x̂₀ (DDPM/DDIM practice). ``False``: stop at
        the last timestep and return the sample rescaled to data units, ``x_t/√ᾱ_t`` — a sample still carrying the
        small noise σ(t_last), as EDM samplers stop at σ_min: what PnP-DM's "sample from p(x | z)" needs (replacing
        the last step by its mean would remove most of a small-ρ sample's spread).
        """
        steps = timesteps.tolist()
        targets = steps[1:] + ([-1.0] if denoise_last else [])
        for i, (t, t_prev) in enumerate(tqdm(list(zip(steps, targets)), desc="sampling", disable=not progress, leave=False)):
            a = self.prior.alpha_bar(t, x_t)
            a_prev = self.prior.alpha_bar(t_prev, x_t)
            need_grad = self.guidance is not None
            if self.estimator is not None:
                x_t, x0 = self.estimator(x_t, t, t_prev, a, a_prev, generator, counter)
            else:
                with torch.set_grad_enabled(need_grad):
                    x_in = x_t.detach().requires_grad_(need_grad)
                    eps = self.prior.eps(x_in, t, cond)
                    x0 = (x_in - torch.sqrt(1 - a) * eps) / torch.sqrt(a)
                if counter is not None:
                    counter += 1
            state = {"x0": x0.detach(), "y": y, "operator": operator, "x_t": x_t, "t": t, "alpha_bar": a,
                     "alpha_bar_prev": a_prev, "sigma_t": torch.sqrt((1 - a) / a), "step": i, "num_steps": len(targets),
                     "cond": cond}
            for step in self.x0_steps:
                state = step(state)
            x0c = state["x0"]
            if trajectory is not None:
                trajectory.append(x0c.detach().clone())
            if t_prev < 0 and self.guidance is None:
                return x0c.detach()
            x_next = self.step(x_t, x0c, a, a_prev, t_prev < 0, generator)
            if self.guidance is not None:
                x_next = x_next - self.guidance(x_in, x0, state)
            x_t = x_next.detach()
        if denoise_last:
            return x_t
        return x_t / torch.sqrt(self.prior.alpha_bar(steps[-1], x_t))
