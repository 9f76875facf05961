"""Classical learned Gaussian denoisers for the score-based PnP comparison (arXiv 2412.11108).

:class:`DnCNN` (Zhang et al., IEEE TIP 2017) and :class:`UNetDenoiser` (a DRUNet-style residual UNet, Zhang et al.,
"Plug-and-Play Image Restoration with Deep Denoiser Prior", IEEE TPAMI 2021: strided down-sampling, residual units,
no normalisation) with FFDNet's noise-level map as an extra input channel, so one network covers a range of σ:
``D(x, σ) = x − f([x, σ·1])`` (residual learning). They are trained only as denoisers —
``E‖D(x + σn, σ) − x‖²`` for σ ~ U(0, σ_max) (:class:`~monai_diffrecon.training.denoiser.GaussianDenoiserTrainer`) —
on the same patches as the image diffusion prior, and exposes the same ``denoise(x, sigma, cond=None)`` call as
:class:`~monai_diffrecon.diffusion.DiffusionPrior`, so :class:`~monai_diffrecon.samplers.ScorePnP` runs either.
"""

from __future__ import annotations

import torch
from monai.networks.nets import UNet
from torch import nn

from monai_diffrecon.errors import ShapeError

__all__ = ["DnCNN", "UNetDenoiser"]


class _NoiseMapDenoiser(nn.Module):
    """``D(x, σ) = x − body([x, σ·1])`` and :meth:`DiffusionPrior.denoise`'s call; subclasses set ``body``, ``channels``."""

    body: nn.Module
    channels: int

    def residual(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        """The denoised image ``x − f([x, σ])`` (``sigma``: a number or one value per batch element)."""
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ShapeError(f"{type(self).__name__}: x must be (B, {self.channels}, H, W), got {tuple(x.shape)}")
        s = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).reshape(-1, 1, 1, 1).expand(x.shape[0], 1, *x.shape[2:])
        return x - self.residual(torch.cat([x, s], dim=1))

    def denoise(self, x: torch.Tensor, sigma, cond=None) -> torch.Tensor:
        """:meth:`DiffusionPrior.denoise`'s signature (``cond`` must be ``None``: the denoiser is unconditional)."""
        if cond is not None:
            raise ShapeError(f"{type(self).__name__}: no condition channels")
        return self(x, sigma)


class DnCNN(_NoiseMapDenoiser):
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


class UNetDenoiser(_NoiseMapDenoiser):
    """DRUNet-style residual UNet denoiser (MONAI :class:`~monai.networks.nets.UNet`: strided convolutions down,
    transposed up, ``res_units`` residual units per level, no normalisation). The defaults (36-72-144-288 features,
    1.04 M parameters) match the size of the natural-image diffusion prior it is compared with (``small`` preset);
    inputs are reflect-padded to a multiple of 2^(levels − 1) and cropped back.

    Args: channels (image channels), features (per level, ≥ 2 levels), res_units (residual units per level, ≥ 1).
    """

    def __init__(self, channels: int = 1, features: tuple[int, ...] = (36, 72, 144, 288), res_units: int = 1) -> None:
        super().__init__()
        if len(features) < 2 or res_units < 1:
            raise ShapeError(f"UNetDenoiser: need ≥ 2 levels and ≥ 1 residual unit, got features={features}, res_units={res_units}")
        self.body = UNet(2, channels + 1, channels, tuple(features), (2,) * (len(features) - 1), num_res_units=res_units, norm=None)
        self.channels = channels
        self.multiple = 2 ** (len(features) - 1)

    def residual(self, z: torch.Tensor) -> torch.Tensor:
        h, w = z.shape[-2:]
        ph, pw = -h % self.multiple, -w % self.multiple
        if ph or pw:  # reflect needs a pad smaller than the side; tiny inputs fall back to edge replication
            mode = "reflect" if ph < h and pw < w else "replicate"
            z = torch.nn.functional.pad(z, (0, pw, 0, ph), mode=mode)
        return self.body(z)[..., :h, :w]
