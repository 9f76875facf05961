"""Score-based plug-and-play (Park et al., arXiv 2412.11108): the diffusion model as a Gaussian denoiser
``D_σ(x) = x − σ ε̂(c x, t*)`` (parameter matching, :meth:`DiffusionPrior.denoise`) inside classical PnP
algorithms, with σ annealed geometrically from ``sigma_start`` to ``sigma_end``.

Data step: ``prox(v) = argmin ½‖Ax − y‖² + (1/2γ)‖x − v‖²`` with DPIR's weight ``γ_k = σ_k² / (λ σ_y²)``.

* ``admm``: x = prox(z − s); z = D_σ(x + s); s = s + x − z (returns z)
* ``hqs`` (DPIR): x = prox(z); z = D_σ(x)
* ``red``: RED by proximal gradient (as score_pnp runs it through deepinv's PGD): a gradient step on the RED
  regulariser, whose gradient is (x − D_σ(x))/σ², then the data prox: x ← prox_{η}(x − η' (x − D_σ(x))) with
  η' = ``red_step`` and data weight γ = η'σ²/σ_y² (the regulariser's curvature is ≤ 1/σ²)
* ``pgm`` (SGPnP): x' = prox(x); x ← x' − α (x − D_σ(x)) (λα = 1 balances data and prior exactly)
"""

from __future__ import annotations

import math

import torch

from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.samplers.base import Sampler, regularised_start

__all__ = ["ScorePnP"]


class ScorePnP(Sampler):
    """Deterministic PnP with the score-based denoiser. ``algorithm``: ``admm``, ``hqs`` (= DPIR), ``red``, ``pgm``."""

    def __init__(self, prior, algorithm: str = "hqs", num_iters: int = 40, sigma_start: float = 0.5, sigma_end: float = 0.01,
                 lam: float = 0.27, sigma_y: float = 0.02, red_step: float = 0.2, pgm_alpha: float = 0.4, cond=None) -> None:
        super().__init__(prior)
        if algorithm not in ("admm", "hqs", "red", "pgm"):
            raise InvalidValueError(f"algorithm: admm, hqs, red or pgm, got {algorithm!r}")
        self.algorithm, self.num_iters, self.lam, self.sigma_y = algorithm, num_iters, lam, sigma_y
        self.sigmas = torch.logspace(math.log10(sigma_start), math.log10(sigma_end), num_iters, dtype=torch.float64, device="cpu").tolist()
        self.red_step, self.pgm_alpha, self.cond = red_step, pgm_alpha, cond

    def initialise(self, y, operator):
        """The Tikhonov start :func:`~monai_diffrecon.samplers.base.regularised_start` (once per call)."""
        return regularised_start(y, operator, self.sigma_y)

    def sample_one(self, y, operator, generator, counter, progress, init=None):
        def D(v, s):
            counter.__iadd__(1)
            with torch.no_grad():
                return self.prior.denoise(v, s, self.cond)

        def prox(v, s):
            return operator.prox_l2(v, y, s**2 / (self.lam * self.sigma_y**2), max_iter=30)

        x = init if init is not None else self.initialise(y, operator)
        z, u = x.clone(), torch.zeros_like(x)
        for s in self.sigmas:
            if self.algorithm == "admm":
                x = prox(z - u, s)
                z = D(x + u, s)
                u = u + x - z
            elif self.algorithm == "hqs":
                z = D(prox(z, s), s)
            elif self.algorithm == "red":
                v = z - self.red_step * (z - D(z, s))
                z = operator.prox_l2(v, y, self.red_step * s**2 / self.sigma_y**2, max_iter=30)
            else:
                xp = prox(z, s)
                z = xp - self.pgm_alpha * (z - D(z, s))
        return z.detach(), None, None
