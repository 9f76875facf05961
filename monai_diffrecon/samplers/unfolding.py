"""Diff-Unfolding sampling (arXiv 2505.11393): few-step DDIM with x̂₀ from the unrolled network.

The conditional denoiser :class:`~monai_diffrecon.networks.unfolding.UnfoldedDenoiser` gives
``x̂₀ = D_θ(x_t, t, y, A)``; :class:`UnfoldingPrior` turns it into the ε-prediction the one reverse-diffusion loop
(:class:`~monai_diffrecon.samplers.engine.DiffusionLoop`) expects, ``ε̂ = (x_t − √ᾱ_t x̂₀)/√(1−ᾱ_t)``, with the
measurement ``(y, A)`` passed as the loop's condition. No consistency step is added: the data term lives inside the
network. One NFE = one call of the unrolled network (K prior-block evaluations).
"""

from __future__ import annotations

import math

import torch

from monai_diffrecon.diffusion.prior import DiffusionPrior
from monai_diffrecon.errors import InvalidValueError, ShapeError
from monai_diffrecon.samplers.base import check_sigma_y
from monai_diffrecon.samplers.diffusion_samplers import DiffusionSampler

__all__ = ["UnfoldingPrior", "DiffUnfolding"]


class UnfoldingPrior(DiffusionPrior):
    """A :class:`DiffusionPrior` over an x̂₀-network taking the measurement: ``cond`` is the pair ``(y, operator)``."""

    def eps(self, x_t: torch.Tensor, t, cond=None, context=None) -> torch.Tensor:
        if not (isinstance(cond, tuple) and len(cond) == 2):
            raise ShapeError("UnfoldingPrior: cond must be the pair (y, operator)")
        y, operator = cond
        a = self.alpha_bar(t, x_t)
        x0 = self.network(x_t, self._t(t, x_t), y, operator)
        return (x_t - torch.sqrt(a) * x0) / torch.sqrt(1 - a)


class DiffUnfolding(DiffusionSampler):
    """Few-step posterior sampling with an unrolled conditional denoiser.

    Operators with complex input (``MultiCoilMRI``) are wrapped with ``ChannelsToComplex`` and the sample is returned
    complex, so the sampler drops into the MRI workflow like MSM and SelfDB.

    Args:
        prior: an :class:`UnfoldingPrior` (or the bare :class:`UnfoldedDenoiser` plus ``scheduler``).
        num_steps: DDIM steps (NFE), 10 by default. eta: DDIM noise (0 = deterministic).
        sigma_y: measurement noise std (data units). The data term lives in the network, which weighs it with the
            σ_y it was built and trained with (``UnfoldedDenoiser.sigma_y``); ``None`` takes that one, and a different
            value raises :class:`~monai_diffrecon.errors.InvalidValueError` (retrain or rebuild the network for it)
            instead of being ignored.
    """

    def __init__(self, prior, num_steps: int = 10, eta: float = 0.0, scheduler=None,
                 sigma_y: float | None = None) -> None:
        if not isinstance(prior, UnfoldingPrior):
            from monai_diffrecon.diffusion import make_scheduler

            prior = UnfoldingPrior(prior, scheduler if scheduler is not None else make_scheduler())
        own = getattr(prior.network, "sigma_y", None)
        sigma_y = check_sigma_y(sigma_y, allow_none=True)
        if sigma_y is not None and own is not None and not math.isclose(sigma_y, float(own), rel_tol=1e-6):
            raise InvalidValueError(f"sigma_y: the unrolled network weighs its data term with σ_y = {own}, "
                                    f"got {sigma_y}")
        super().__init__(prior, num_steps, eta=eta)
        self.sigma_y = sigma_y if sigma_y is not None else (None if own is None else float(own))

    def condition(self, y, operator):
        return (y, operator)  # the unrolled network takes the measurement and the operator

    def sample_one(self, y, operator, generator, counter, progress, init=None):
        if not getattr(operator, "in_complex", False):
            return super().sample_one(y, operator, generator, counter, progress, init)
        # e.g. MultiCoilMRI: the network works on (real, imaginary) channels; the sample is returned complex
        from monai_diffrecon.physics import ChannelsToComplex
        from monai_diffrecon.physics.functional.sense import channels_to_complex

        x, m, v = super().sample_one(y, operator @ ChannelsToComplex(), generator, counter, progress, init)
        return channels_to_complex(x), m, v
