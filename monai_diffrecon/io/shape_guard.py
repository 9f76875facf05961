"""Input-size guard: refuse, while reading, an image the bundle's network cannot take — before sampling starts.

MONAI's ``DiffusionModelUNet`` halves the image at every level but the last and concatenates the skip connections on
the way up, so every spatial side must be a multiple of ``2^(levels-1)`` (4 for the project's presets); a latent prior
(``AutoencoderKL`` first stage, RELD) multiplies that by the autoencoder's own downsampling. Otherwise the failure
comes from deep inside the network (``torch.cat``: "Sizes of tensors must match") after the run has started; here it
is a :class:`~monai_diffrecon.errors.ShapeError` that names the input file and the size to use.

Example::

    check_spatial_size("case/blurred.png", (33, 33), spatial_divisor(sampler))
    # ShapeError: case/blurred.png: image 33×33 — this bundle's network needs sides that are positive multiples
    # of 4 (crop or pad to e.g. 32×32)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torch import nn

from monai_diffrecon.errors import ShapeError

__all__ = ["spatial_divisor", "check_spatial_size"]


def spatial_divisor(module: nn.Module) -> int:
    """The number every spatial side of the image must be a multiple of for every network inside ``module`` (a
    sampler, a prior or a network): the largest UNet factor ``2^(downsampling levels)`` times the largest
    ``AutoencoderKL`` factor (latent priors see the image downsampled by their first stage). ``1`` if none (or
    ``module`` is not an ``nn.Module``)."""
    from monai.networks.nets import AutoencoderKL, DiffusionModelUNet
    from monai.networks.nets.autoencoderkl import AEKLDownsample

    unet = first_stage = 1
    for m in module.modules() if isinstance(module, nn.Module) else ():
        if isinstance(m, DiffusionModelUNet):
            unet = max(unet, 2 ** sum(getattr(b, "downsampler", None) is not None for b in m.down_blocks))
        elif isinstance(m, AutoencoderKL):
            first_stage = max(first_stage, 2 ** sum(isinstance(b, AEKLDownsample) for b in m.encoder.modules()))
    return unet * first_stage


def check_spatial_size(path: str | Path, size: Sequence[int], divisor: int, what: str = "image") -> None:
    """Raise a :class:`~monai_diffrecon.errors.ShapeError` naming ``path`` unless every side in ``size`` (``(H, W)``
    or ``(X, Y[, Z])``, pixels) is a positive multiple of ``divisor`` (from :func:`spatial_divisor`)."""
    size = tuple(int(s) for s in size)
    if all(s >= divisor and s % divisor == 0 for s in size):
        return
    shown = "×".join(map(str, size))
    fit = "×".join(str(max(divisor, s // divisor * divisor)) for s in size)
    raise ShapeError(f"{path}: {what} {shown} — this bundle's network needs sides that are positive multiples of "
                     f"{divisor} (crop or pad to e.g. {fit})")
