"""Analytic diffusion networks with known posteriors, for closed-form sampler tests (no trained weights).

For data ``x₀ ~ N(μ, s² I)`` and ``x_t = √ᾱ x₀ + √(1−ᾱ) ε``, the exact noise predictor is
``ε*(x_t, t) = √(1−ᾱ) (x_t − √ᾱ μ) / (ᾱ s² + 1 − ᾱ)``. ``mean`` and ``std`` may be tensors broadcastable to x
(a per-pixel Gaussian), so posteriors of linear inverse problems stay in closed form. ``prediction`` makes the module
output what a network of that parameterisation would (x₀, v or the EDM-preconditioned F; see
:mod:`monai_diffrecon.diffusion.parameterization`), for a :class:`~monai_diffrecon.diffusion.DiffusionPrior` built
with the same ``prediction`` and ``sigma_data``.
"""

from __future__ import annotations

import torch
from torch import nn

from monai_diffrecon.diffusion.parameterization import Parameterization
from monai_diffrecon.diffusion.schedule import alpha_bar_at
from monai_diffrecon.physics.functional.devices import device_of

__all__ = ["GaussianEpsilon"]


class GaussianEpsilon(nn.Module):
    """Exact network for Gaussian data ``N(mean, std²)``; same call signature as MONAI's ``DiffusionModelUNet``.
    Outputs ε by default, or the target of ``prediction`` (module doc)."""

    def __init__(self, alphas_cumprod: torch.Tensor, mean: float | torch.Tensor = 0.0, std: float | torch.Tensor = 1.0,
                 prediction: str = "epsilon", sigma_data: float = 0.5) -> None:
        super().__init__()
        dev = device_of(alphas_cumprod, mean, std)
        self.register_buffer("alphas_cumprod", torch.as_tensor(alphas_cumprod, dtype=torch.float64, device=dev).clone())
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float64, device=dev).clone())
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float64, device=dev).clone())
        self.parameterization = Parameterization(prediction, float(sigma_data))
        self.calls = 0

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, context=None) -> torch.Tensor:
        self.calls += 1
        a = alpha_bar_at(self.alphas_cumprod, timesteps.detach()).to(x.device)
        a = a.reshape(-1, *([1] * (x.ndim - 1))).to(x.dtype)
        mu, s = self.mean.to(x.dtype), self.std.to(x.dtype)
        p = self.parameterization
        x_t = p.input_to_state(x, a)
        eps = torch.sqrt(1 - a) * (x_t - torch.sqrt(a) * mu) / (a * s**2 + 1 - a)
        if p.prediction == "epsilon":
            return eps
        # exact E[x₀ | x_t] (Gaussian posterior), then the target the parameterisation regresses
        x0 = (torch.sqrt(a) * s**2 * x_t + (1 - a) * mu) / (a * s**2 + 1 - a)
        return p.target(x0, eps, a)
