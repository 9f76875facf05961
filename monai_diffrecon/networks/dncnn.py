"""A classical learned Gaussian denoiser for the score-based PnP comparison (arXiv 2412.11108).

:class:`DnCNN` (Zhang et al., IEEE TIP 2017) with FFDNet's noise-level map as an extra input channel, so one network
covers a range of σ: ``D(x, σ) = x − f([x, σ·1])`` (residual learning). It is trained only as a denoiser —
``E‖D(x + σn, σ) − x‖²`` for σ ~ U(0, σ_max) (:class:`~monai_diffrecon.training.denoiser.GaussianDenoiserTrainer`) —
on the same patches as the image diffusion prior, and exposes the same ``denoise(x, sigma, cond=None)`` call as
:class:`~monai_diffrecon.diffusion.DiffusionPrior`, so :class:`~monai_diffrecon.samplers.ScorePnP` runs either.
"""

from __future__ import annotations

import torch
from torch import nn

from monai_diffrecon.errors import ShapeError

__all__ = ["DnCNN"]


class DnCNN(nn.Module):
    """Args: channels (image channels), depth (convolution layers, ≥ 3), features (width)."""

    def __init__(self, channels: int = 1, depth: int = 12, features: int = 48) -> None:
        super().__init__()
        if depth < 3:
            raise ShapeError(f"DnCNN: depth must be ≥ 3, got {depth}")
        layers: list[nn.Module] = [nn.Conv2d(channels + 1, features, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(features, features, 3, padding=1, bias=False), nn.BatchNorm2d(features), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(features, channels, 3, padding=1))
        self.body = nn.Sequential(*layers)
        self.channels = channels

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        """The denoised image ``x − f([x, σ])`` (``sigma``: a number or one value per batch element)."""
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ShapeError(f"DnCNN: x must be (B, {self.channels}, H, W), got {tuple(x.shape)}")
        s = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).reshape(-1, 1, 1, 1).expand(x.shape[0], 1, *x.shape[2:])
        return x - self.body(torch.cat([x, s], dim=1))

    def denoise(self, x: torch.Tensor, sigma, cond=None) -> torch.Tensor:
        """:meth:`DiffusionPrior.denoise`'s signature (``cond`` must be ``None``: the denoiser is unconditional)."""
        if cond is not None:
            raise ShapeError("DnCNN: no condition channels")
        return self(x, sigma)
