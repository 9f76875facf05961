"""Where new tensors go: the device rules every module of the package follows (issue 20).

1. A tensor computed from inputs lives on the inputs' device; a tensor built from Python numbers alone (a grid, a
   kernel, a phantom) is built on a device the caller names — never on torch's implicit default device, which
   ``torch.set_default_device`` can change behind the caller's back.
2. Random draws come from an explicit ``torch.Generator`` and are made **on the generator's own device**, then moved
   to the data's device: a CPU generator gives the same numbers whether the data live on the CPU or on a GPU (CPU
   results stay bit-for-bit what they were), and a CUDA generator works too (it draws on its GPU).

:func:`device_of` answers rule 1 for constructors that accept tensors or plain numbers; :func:`randn`,
:func:`rand`, :func:`randint`, :func:`randperm`, :func:`randn_like`, :func:`poisson` and :func:`binomial` are rule 2.

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.zeros(2, 3)                      # on a GPU: torch.zeros(2, 3, device="cuda")
    >>> n = randn_like(x, g)                       # drawn on the CPU generator, moved to x's device
    >>> bool(torch.equal(n, torch.randn(2, 3, generator=torch.Generator().manual_seed(0))))
    True
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["binomial", "device_of", "poisson", "rand", "randint", "randn", "randn_like", "randperm"]

Shape = Sequence[int] | torch.Size | int


def device_of(*values, default: torch.device | str = "cpu") -> torch.device:
    """The device of the first tensor (or module with parameters/buffers) among ``values``, else ``default``.

    Lets a constructor that accepts tensors or plain numbers (angles as a list or a tensor, a kernel given or built)
    keep the device of whatever tensor it was given.
    """
    for v in values:
        if isinstance(v, torch.Tensor):
            return v.device
        if isinstance(v, nn.Module):
            for t in v.parameters():
                return t.device
            for t in v.buffers():
                return t.device
    return torch.device(default)


def _shape(shape: Shape) -> tuple[int, ...]:
    return (int(shape),) if isinstance(shape, int) else tuple(shape)


def _moved(t: torch.Tensor, device) -> torch.Tensor:
    return t if device is None else t.to(device)


def randn(shape: Shape, generator: torch.Generator, *, dtype: torch.dtype | None = None, device=None) -> torch.Tensor:
    """Standard normal ``shape`` drawn on ``generator``'s device, then moved to ``device`` (default: stays there)."""
    return _moved(torch.randn(_shape(shape), generator=generator, dtype=dtype, device=generator.device), device)


def rand(shape: Shape, generator: torch.Generator, *, dtype: torch.dtype | None = None, device=None) -> torch.Tensor:
    """Uniform [0, 1) ``shape`` drawn on ``generator``'s device, then moved to ``device``."""
    return _moved(torch.rand(_shape(shape), generator=generator, dtype=dtype, device=generator.device), device)


def randint(low: int, high: int, shape: Shape, generator: torch.Generator, *, device=None) -> torch.Tensor:
    """Integers in ``[low, high)`` (int64) drawn on ``generator``'s device, then moved to ``device``."""
    return _moved(torch.randint(low, high, _shape(shape), generator=generator, device=generator.device), device)


def randperm(n: int, generator: torch.Generator, *, device=None) -> torch.Tensor:
    """A random permutation of ``0 … n−1`` drawn on ``generator``'s device, then moved to ``device``."""
    return _moved(torch.randperm(n, generator=generator, device=generator.device), device)


def randn_like(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Standard normal noise with ``x``'s shape, dtype and device; for complex ``x`` the real and then the imaginary
    part are each N(0, 1) (so ``E|n|² = 2``, the convention of :class:`~monai_diffrecon.physics.GaussianNoise`)."""
    real = x.real.dtype if x.is_complex() else x.dtype
    n = randn(x.shape, generator, dtype=real)
    if x.is_complex():
        n = torch.complex(n, randn(x.shape, generator, dtype=real))
    return n.to(x.device)


def poisson(rates: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``Poisson(rates)`` drawn on ``generator``'s device; the result is on ``rates``' device."""
    return torch.poisson(rates.to(generator.device), generator=generator).to(rates.device)


def binomial(count: torch.Tensor, prob: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``Binomial(count, prob)`` drawn on ``generator``'s device; the result is on ``count``'s device."""
    g = generator.device
    return torch.binomial(count.to(g), prob.to(g), generator=generator).to(count.device)
