"""Score-based plug-and-play (Park et al., arXiv 2412.11108): the diffusion model as a Gaussian denoiser
``D_σ(x) = x − σ ε̂(c x, t*)`` (parameter matching, :meth:`DiffusionPrior.denoise`) inside classical PnP
algorithms, with σ annealed geometrically from ``sigma_start`` to ``sigma_end``.

Data step: ``prox(v) = argmin ½‖Ax − y‖² + (1/2γ)‖x − v‖²`` with DPIR's weight ``γ_k = σ_k² / (λ σ_y²)``. With
λ = 1 the HQS/ADMM pair is the splitting of the posterior −log p(y|x) − log p(x) at coupling σ_k: the MMSE denoiser
D_σ is the proximal map of −σ² log p for a Gaussian prior, so the iterates approach the MAP (= the posterior mean
there) as σ_k falls to ``sigma_end`` (by default σ_y itself, DPIR's rule).

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
from monai_diffrecon.samplers.base import Sampler, check_sigma_y, data_scale, prior_sigma_min, regularised_start

__all__ = ["ScorePnP"]


class ScorePnP(Sampler):
    """Deterministic PnP with the score-based denoiser. Given only σ_y, the σ schedule and the data weight follow.

    Args:
        prior: the diffusion prior (or any ``denoise(x, σ)`` module, e.g. DnCNN).
        algorithm: ``admm``, ``hqs`` (= DPIR), ``red``, ``pgm``.
        num_iters: iterations (one denoiser call each; score_pnp: 101).
        sigma_start: first denoiser level; default ``0.5·w`` with w the half-width of ``data_range`` (the previous
            fixed 0.5; score_pnp's ADMM starts at 120/255 ≈ 0.47 on [0, 1] images, DPIR at 49/255).
        sigma_end: last denoiser level; default ``max(σ_y, σ(0))``: DPIR ends its schedule at the noise level σ_y
            (score_pnp's 10/255 and 3.2/255 at σ_y = 0.02 are within 2× of it), floored at the prior's smallest
            trained noise level σ(0). Was a fixed 0.01.
        lam: data-weight λ of ``hqs``/``admm``/``pgm``; default 1 (``hqs``/``admm``: the posterior's own weight, see
            the module doc; ``pgm``: ``1/pgm_alpha``, so that λα = 1). DPIR's 0.23 and score_pnp's 0.27 (the previous
            default) weigh the data 4× more, tuned on natural images. ``red`` does not use λ.
        sigma_y: measurement noise std (data units; > 0).
        red_step: RED's step η'. pgm_alpha: PGM's α (SGPnP FFHQ: 0.4).
        cond: condition channels of a conditional prior.
        data_range: ``(lo, hi)`` of the prior's data (default [−1, 1]).
    """

    def __init__(self, prior, algorithm: str = "hqs", num_iters: int = 40, sigma_start: float | None = None,
                 sigma_end: float | None = None, lam: float | None = None, sigma_y: float = 0.02, red_step: float = 0.2,
                 pgm_alpha: float = 0.4, cond=None, data_range: tuple[float, float] = (-1.0, 1.0)) -> None:
        super().__init__(prior)
        if algorithm not in ("admm", "hqs", "red", "pgm"):
            raise InvalidValueError(f"algorithm: admm, hqs, red or pgm, got {algorithm!r}")
        self.sigma_y = check_sigma_y(sigma_y)
        if lam is None:
            lam = 1.0 / pgm_alpha if algorithm == "pgm" else 1.0
        sigma_start = 0.5 * data_scale(data_range) if sigma_start is None else float(sigma_start)
        sigma_end = max(self.sigma_y, prior_sigma_min(prior)) if sigma_end is None else float(sigma_end)
        if not (lam > 0 and sigma_start > 0 and sigma_end > 0):
            raise InvalidValueError(f"lam, sigma_start and sigma_end must be > 0, got {lam}, {sigma_start}, "
                                    f"{sigma_end}")
        self.algorithm, self.num_iters, self.lam = algorithm, num_iters, float(lam)
        self.sigma_start, self.sigma_end = sigma_start, sigma_end
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
