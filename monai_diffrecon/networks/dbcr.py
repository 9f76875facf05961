"""DB-CR network (arXiv 2504.03607): optical branch + SAR encoder fused by cross-attention.

The optical branch is a MONAI ``DiffusionModelUNet`` on ``concat(x_t, cloudy)`` (2·C_opt channels) predicting the clear
image x̂₀ (C_opt channels), timestep-embedded. The SAR branch is a small convolutional encoder of the co-registered
SAR (VV, VH) to a ``(H/8)·(W/8)``-token sequence with 2D sinusoidal positions; at every UNet level with attention the
transformer blocks cross-attend from optical features (queries) to the SAR tokens (keys, values) — the paper's SAR
fusion blocks (its backbone is not public; ours uses MONAI's spatial transformers). ``use_sar=False`` builds the same
optical branch without the SAR encoder and cross-attention (the no-SAR ablation).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from monai_diffrecon.errors import ShapeError
from monai_diffrecon.networks.unet import PRESETS

__all__ = ["SAREncoder", "DBCRNet", "StackedDBCR", "dbcr_network"]


def _sincos_2d(h: int, w: int, dim: int, device, dtype) -> torch.Tensor:
    """``(h·w, dim)`` 2D sine–cosine position codes (half the channels for rows, half for columns)."""
    quarter = dim // 4
    freq = torch.exp(-math.log(10000.0) * torch.arange(quarter, device=device, dtype=torch.float32) / max(quarter, 1))
    yy, xx = torch.meshgrid(torch.arange(h, device=device, dtype=torch.float32), torch.arange(w, device=device, dtype=torch.float32), indexing="ij")
    parts = [torch.sin(yy.reshape(-1, 1) * freq), torch.cos(yy.reshape(-1, 1) * freq),
             torch.sin(xx.reshape(-1, 1) * freq), torch.cos(xx.reshape(-1, 1) * freq)]
    pe = torch.cat(parts, dim=1)
    if pe.shape[1] < dim:
        pe = torch.cat([pe, torch.zeros(h * w, dim - pe.shape[1], device=device)], dim=1)
    return pe.to(dtype)


class SAREncoder(nn.Module):
    """SAR ``(B, C_sar, H, W)`` → tokens ``(B, H/8·W/8, dim)`` (three stride-2 convolution stages, GroupNorm, SiLU)."""

    def __init__(self, in_channels: int = 2, dim: int = 64) -> None:
        super().__init__()
        chans = (dim // 4, dim // 2, dim)
        layers, c = [], in_channels
        for k in chans:
            layers += [nn.Conv2d(c, k, 3, stride=2, padding=1), nn.GroupNorm(min(8, k), k), nn.SiLU(), nn.Conv2d(k, k, 3, padding=1), nn.SiLU()]
            c = k
        self.net = nn.Sequential(*layers)
        self.dim = dim

    def forward(self, sar: torch.Tensor) -> torch.Tensor:
        f = self.net(sar)
        B, D, h, w = f.shape
        return f.flatten(2).transpose(1, 2) + _sincos_2d(h, w, D, f.device, f.dtype)[None]


class DBCRNet(nn.Module):
    """``forward(x_t, timesteps, cloudy, sar=None) → x̂₀`` (all ``(B, C, H, W)`` float, H and W divisible by 8).

    Args:
        optical_channels: bands of the optical image (e.g. 4: B2, B3, B4, B8). sar_channels: 2 (VV, VH).
        size: MONAI UNet preset (``tiny``/``small``/``base``, :data:`~monai_diffrecon.networks.unet.PRESETS`).
        context_dim: SAR token width. use_sar: build the SAR branch (False: the optical-only ablation).
    """

    def __init__(self, optical_channels: int = 4, sar_channels: int = 2, size: str = "small", context_dim: int = 64, use_sar: bool = True) -> None:
        super().__init__()
        from monai.networks.nets import DiffusionModelUNet

        kw = dict(PRESETS[size])
        kw["attention_levels"] = tuple([False] + [True] * (len(kw["channels"]) - 1))  # fusion at every level below full res
        self.optical_channels, self.sar_channels, self.use_sar = optical_channels, sar_channels, use_sar
        self.sar_encoder = SAREncoder(sar_channels, context_dim) if use_sar else None
        self.unet = DiffusionModelUNet(spatial_dims=2, in_channels=2 * optical_channels, out_channels=optical_channels,
                                       with_conditioning=use_sar, cross_attention_dim=context_dim if use_sar else None, **kw)

    def forward(self, x_t: torch.Tensor, timesteps: torch.Tensor, cloudy: torch.Tensor, sar: torch.Tensor | None = None) -> torch.Tensor:
        if x_t.shape != cloudy.shape or x_t.shape[1] != self.optical_channels:
            raise ShapeError(f"DBCRNet: x_t and cloudy must both be (B, {self.optical_channels}, H, W), got {tuple(x_t.shape)}, {tuple(cloudy.shape)}")
        context = None
        if self.use_sar:
            if sar is None or sar.shape[0] != x_t.shape[0] or sar.shape[1] != self.sar_channels or sar.shape[-2:] != x_t.shape[-2:]:
                raise ShapeError(f"DBCRNet: sar must be (B, {self.sar_channels}, H, W) matching x_t, got {None if sar is None else tuple(sar.shape)}")
            context = self.sar_encoder(sar)
        return self.unet(torch.cat([x_t, cloudy], dim=1), timesteps, context=context)


class StackedDBCR(nn.Module):
    """A :class:`DBCRNet` behind MONAI's ``(x, timesteps)`` signature, ``x = concat(x_t, cloudy, sar)`` along channels.

    This is how the conditional-DDPM baseline uses the same two-branch network (same parameters): as the ε-network of
    a :class:`~monai_diffrecon.diffusion.DiffusionPrior` trained by the plain
    :class:`~monai_diffrecon.training.DenoisingScoreTrainer` on ``{"image": clear, "cond": concat(cloudy, sar)}`` and
    sampled from noise with ``cond`` = the measurement. The attribute ``dbcr`` holds the wrapped network.
    """

    def __init__(self, dbcr: DBCRNet) -> None:
        super().__init__()
        self.dbcr = dbcr

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        c, s = self.dbcr.optical_channels, self.dbcr.sar_channels if self.dbcr.use_sar else 0
        if x.ndim != 4 or x.shape[1] != 2 * c + s:
            raise ShapeError(f"StackedDBCR: x must be (B, {2 * c + s}, H, W) = x_t, cloudy, SAR, got {tuple(x.shape)}")
        return self.dbcr(x[:, :c], timesteps, x[:, c:2 * c], x[:, 2 * c:] if s else None)


def dbcr_network(optical_channels: int = 4, sar_channels: int = 2, size: str = "small", context_dim: int = 64, use_sar: bool = True) -> DBCRNet:
    return DBCRNet(optical_channels, sar_channels, size, context_dim, use_sar)
