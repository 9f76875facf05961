"""Measurement noise models. Every draw takes an explicit ``torch.Generator`` (same seed ⇒ same noise).

* :class:`GaussianNoise`: ``y + σ n``. For complex ``y`` the real and imaginary parts each get variance ``σ²``
  (so ``E|n|² = 2σ²``), the convention of real/imaginary-channel libraries such as deepinv.
* :class:`PoissonNoise`: ``Poisson(gain · y) / gain`` (``normalize=True``) or raw counts ``Poisson(gain · y)``.

Draws are made on the generator's own device and moved to ``y``'s (:mod:`~monai_diffrecon.physics.functional.devices`):
a CPU generator gives the same noise whether ``y`` is on the CPU or a GPU.
"""

from __future__ import annotations

import torch
from torch import nn

from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.physics.base import check_tensor
from monai_diffrecon.physics.functional.devices import poisson, randn_like

__all__ = ["GaussianNoise", "PoissonNoise"]


def _need_generator(generator: object) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise InvalidValueError("generator: pass an explicit torch.Generator (noise must be reproducible)")
    return generator


class GaussianNoise(nn.Module):
    """Additive white Gaussian noise with standard deviation ``sigma`` (per real component).

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> y = GaussianNoise(0.1)(torch.zeros(1, 1, 4, 4), generator=g)
    """

    def __init__(self, sigma: float) -> None:
        super().__init__()
        if not (float(sigma) >= 0):
            raise InvalidValueError(f"sigma: must be ≥ 0, got {sigma}")
        self.sigma = float(sigma)

    def forward(self, y: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
        y = check_tensor(y, "y")
        return y + self.sigma * randn_like(y, _need_generator(generator))

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}"


class PoissonNoise(nn.Module):
    """Poisson counting noise.

    Args:
        gain: counts per unit of ``y`` (``y`` already in expected counts ⇒ ``gain=1``).
        normalize: divide the counts by ``gain`` (keeps the scale of ``y``); ``False`` returns counts.
    """

    def __init__(self, gain: float = 1.0, normalize: bool = True) -> None:
        super().__init__()
        if not (float(gain) > 0):
            raise InvalidValueError(f"gain: must be > 0, got {gain}")
        self.gain = float(gain)
        self.normalize = bool(normalize)

    def forward(self, y: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
        y = check_tensor(y, "y", complex_=False)
        gen = _need_generator(generator)
        if bool((y < 0).any()):
            raise InvalidValueError(f"y: Poisson rates must be ≥ 0, min is {float(y.min()):.4g}")
        counts = poisson(y * self.gain, gen)
        return counts / self.gain if self.normalize else counts

    def extra_repr(self) -> str:
        return f"gain={self.gain}, normalize={self.normalize}"
