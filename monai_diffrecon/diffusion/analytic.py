"""Analytic ε-networks with known posteriors, for closed-form sampler tests (no trained weights).

For data ``x₀ ~ N(μ, s² I)`` and ``x_t = √ᾱ x₀ + √(1−ᾱ) ε``, the exact noise predictor is
``ε*(x_t, t) = √(1−ᾱ) (x_t − √ᾱ μ) / (ᾱ s² + 1 − ᾱ)``. ``mean`` and ``std`` may be tensors broadcastable to x
(a per-pixel Gaussian), so posteriors of linear inverse problems stay in closed form.
"""

from __future__ import annotations

import torch
from torch import nn

from monai_diffrecon.diffusion.schedule import alpha_bar_at
from monai_diffrecon.physics.functional.devices import device_of

__all__ = ["GaussianEpsilon"]


class GaussianEpsilon(nn.Module):
    """Exact ε for Gaussian data ``N(mean, std²)``; same call signature as MONAI's ``DiffusionModelUNet``."""

    def __init__(self, alphas_cumprod: torch.Tensor, mean: float | torch.Tensor = 0.0, std: float | torch.Tensor = 1.0) -> None:
        super().__init__()
        dev = device_of(alphas_cumprod, mean, std)
        self.register_buffer("alphas_cumprod", torch.as_tensor(alphas_cumprod, dtype=torch.float64, device=dev).clone())
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float64, device=dev).clone())
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float64, device=dev).clone())
        self.calls = 0

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, context=None) -> torch.Tensor:
        self.calls += 1
        a = alpha_bar_at(self.alphas_cumprod, timesteps.detach()).to(x.device)
        a = a.reshape(-1, *([1] * (x.ndim - 1))).to(x.dtype)
        mu, s = self.mean.to(x.dtype), self.std.to(x.dtype)
        return torch.sqrt(1 - a) * (x - torch.sqrt(a) * mu) / (a * s**2 + 1 - a)
