"""Factories over MONAI's ``DiffusionModelUNet`` with sizes that train on a CPU.

| size | channels | res blocks | attention | params (2D, 1→1 ch) |
|---|---|---|---|---|
| ``tiny`` | (16, 32, 32) | 1 | last level | ≈ 0.28 M |
| ``small`` | (32, 64, 64) | 1 | last level | ≈ 1.1 M |
| ``base`` | (64, 128, 128, 256) | 2 | last two | ≈ 16 M |

Conditional priors get ``cond_channels`` extra input channels (concatenated to x_t by
:class:`~monai_diffrecon.diffusion.DiffusionPrior`).
"""

from __future__ import annotations

from monai.networks.nets import DiffusionModelUNet

from monai_diffrecon.errors import InvalidValueError

__all__ = ["diffusion_unet", "PRESETS"]

PRESETS = {
    "tiny": dict(channels=(16, 32, 32), attention_levels=(False, False, True), num_res_blocks=1, norm_num_groups=8, num_head_channels=16),
    "small": dict(channels=(32, 64, 64), attention_levels=(False, False, True), num_res_blocks=1, norm_num_groups=16, num_head_channels=32),
    "base": dict(channels=(64, 128, 128, 256), attention_levels=(False, False, True, True), num_res_blocks=2, norm_num_groups=32, num_head_channels=32),
}


def diffusion_unet(spatial_dims: int = 2, in_channels: int = 1, out_channels: int | None = None, cond_channels: int = 0,
                   size: str = "tiny", **overrides) -> DiffusionModelUNet:
    """A MONAI ``DiffusionModelUNet`` predicting ε for ``in_channels`` image channels (+ ``cond_channels``)."""
    if size not in PRESETS:
        raise InvalidValueError(f"size: one of {sorted(PRESETS)}, got {size!r}")
    kw = dict(PRESETS[size])
    kw.update(overrides)
    return DiffusionModelUNet(spatial_dims=spatial_dims, in_channels=in_channels + cond_channels,
                              out_channels=in_channels if out_channels is None else out_channels, **kw)
