"""Coordinate channels for patch-trained priors, and full-image inference as patches.

A prior trained on random crops (:class:`~monai_diffrecon.training.PatchSampler`) with coordinate channels saw,
besides ``x_t`` (and any condition), the normalised position of every crop pixel in the *full* image grid:
``d`` channels (one per spatial axis, in array-axis order: rows then columns[, depth]) with values
``−1 + 2 i/(S−1)`` in ``[−1, 1]`` (``i`` the pixel index along an axis of length ``S``; 0 when ``S = 1``). As in
"Learning Image Priors through Patch-based Diffusion Models for Solving Inverse Problems" (Hu et al., arXiv
2406.02462), the position tells the network where its patch sits, so a prior over patches can still model
position-dependent content (anatomy is centred, sky is at the top).

Two ways to run such a network on the full image:

* :class:`CoordinateChannels` — the network sees the whole image at once, with the coordinates of the full grid
  appended. A convolutional network then matches its in-crop behaviour away from the crop borders *up to*
  its non-local parts: GroupNorm statistics are taken over the whole image instead of the crop, and the
  lowest-level self-attention of MONAI's ``DiffusionModelUNet`` attends over every position
  (``tests/training/test_patches.py`` measures the difference).
* :class:`PatchwiseNetwork` — the full image is split into the training patch size, as the patch-prior papers do
  at inference, so every network call sees exactly what it was trained on. Hu et al. zero-pad the image and use
  one randomly shifted partition per sampling step; here the output is the average over ``shifts`` fixed,
  evenly shifted partitions whose border patches are clamped inside the image (deterministic, no generator, no
  padded content the network never saw), which also hides the partition seams. Cost: about
  ``shifts × (S/p + 1)^d`` patch calls per step.

Both wrap a network with MONAI's ``network(x, timesteps, context=None)`` signature, so
``DiffusionPrior(CoordinateChannels(net), scheduler)`` needs no change in :class:`~monai_diffrecon.diffusion.DiffusionPrior`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from monai_diffrecon.errors import InvalidValueError

__all__ = ["CoordinateChannels", "PatchwiseNetwork", "coordinate_grid"]


def coordinate_grid(full_shape: Sequence[int], start: Sequence[int] | None = None, size: Sequence[int] | None = None,
                    device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Normalised coordinates of a window of a full grid: ``(d, *size)`` real, values in ``[−1, 1]``.

    Args:
        full_shape: the full image's spatial shape ``(H, W[, D])``; coordinates are ``−1 + 2 i/(S−1)`` per axis.
        start: the window's first index per axis (default 0); indices may fall outside the grid (zero padding):
            their coordinates extrapolate the same affine map beyond ``[−1, 1]``.
        size: the window's spatial shape (default: ``full_shape``).
        device, dtype: where and how to build the grid (built from numbers alone, so the caller names the device).

    Example:
        >>> coordinate_grid((5,), (1,), (3,)).tolist()
        [[-0.5, 0.0, 0.5]]
    """
    full = [int(s) for s in full_shape]
    start = [0] * len(full) if start is None else [int(s) for s in start]
    size = full if size is None else [int(s) for s in size]
    if not len(full) == len(start) == len(size):
        raise InvalidValueError(f"full_shape {full}, start {start} and size {size} need one entry per spatial axis")
    axes = [(-1.0 + 2.0 * (torch.arange(n, device=device, dtype=torch.float64) + s0) / (S - 1) if S > 1
             else torch.zeros(n, device=device, dtype=torch.float64)) for S, s0, n in zip(full, start, size)]
    return torch.stack(torch.meshgrid(*axes, indexing="ij")).to(dtype)


def _call(network: nn.Module, x: torch.Tensor, timesteps: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
    return network(x, timesteps) if context is None else network(x, timesteps, context=context)


class CoordinateChannels(nn.Module):
    """``network(cat[x, coords(x's grid)], t)``: appends the full grid's coordinate channels (module doc).

    Args:
        network: the patch-trained network; its input channels are ``x``'s channels (image + condition) + ``d``.
        spatial_dims: 2 or 3.

    Forward: ``x (B, C, *S)``, ``timesteps (B,)`` → the network's output for the whole of ``S``.
    """

    def __init__(self, network: nn.Module, spatial_dims: int = 2) -> None:
        super().__init__()
        if spatial_dims not in (1, 2, 3):
            raise InvalidValueError(f"spatial_dims: 1, 2 or 3, got {spatial_dims}")
        self.network, self.spatial_dims = network, int(spatial_dims)

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        S = x.shape[2:]
        if len(S) != self.spatial_dims:
            raise InvalidValueError(f"x: expected {self.spatial_dims} spatial axes, got shape {tuple(x.shape)}")
        g = coordinate_grid(S, device=x.device, dtype=x.dtype)
        return _call(self.network, torch.cat([x, g.expand(x.shape[0], *g.shape)], 1), timesteps, context)


class PatchwiseNetwork(nn.Module):
    """Runs a patch-trained network on a full image as patches of its training size (module doc).

    For each of ``shifts`` offsets ``k·p/shifts`` (the same along every axis), the image is covered by a partition
    into ``p``-sized patches shifted by that offset, the border patches clamped inside the image (so they overlap
    their neighbours rather than reach into padding: every network call sees an in-image crop, as in training);
    every patch goes through the network (with its own coordinate channels of the full grid when ``coords``), and
    each pixel's output is the mean over all patches that cover it. All patches of one partition go through the
    network as one batch.

    Args:
        network: network trained on ``patch_size`` crops (input: ``x``'s channels [+ ``d`` coordinate channels]).
        patch_size: the training crop, an int or one per axis.
        spatial_dims: 2 or 3.
        coords: append each patch's coordinate channels (the network was trained with them).
        shifts: how many shifted partitions to average (1: a single partition aligned with the image corner).
    """

    def __init__(self, network: nn.Module, patch_size: int | Sequence[int], spatial_dims: int = 2, coords: bool = True,
                 shifts: int = 2) -> None:
        super().__init__()
        p = [int(patch_size)] * spatial_dims if isinstance(patch_size, int) else [int(v) for v in patch_size]
        if len(p) != spatial_dims or min(p) < 1:
            raise InvalidValueError(f"patch_size: a positive size per spatial axis, got {patch_size}")
        if shifts < 1:
            raise InvalidValueError(f"shifts: at least 1, got {shifts}")
        self.network, self.patch, self.spatial_dims, self.coords, self.shifts = network, p, int(spatial_dims), bool(coords), int(shifts)

    def _starts(self, S: list[int], offset: list[int]) -> list[list[int]]:
        """Per axis: the starts of the partition shifted by ``offset``, clamped into the image (border patches overlap
        their neighbours instead of reaching into padding)."""
        out = []
        for s, q, o in zip(S, self.patch, offset):
            n = -(-(s + o) // q)
            out.append(sorted({min(max(i * q - o, 0), s - q) for i in range(n)}))
        return out

    def _partition(self, x: torch.Tensor, timesteps: torch.Tensor, context, offset: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        B, S, p = x.shape[0], list(x.shape[2:]), self.patch
        tiles, slices = [], []
        for st in torch.cartesian_prod(*[torch.tensor(a, device="cpu") for a in self._starts(S, offset)]).reshape(-1, len(S)).tolist():
            sl = (slice(None), slice(None), *[slice(a, a + q) for a, q in zip(st, p)])
            tile = x[sl]
            if self.coords:
                g = coordinate_grid(S, st, p, device=x.device, dtype=x.dtype)
                tile = torch.cat([tile, g.expand(B, *g.shape)], 1)
            tiles.append(tile)
            slices.append(sl)
        m = len(tiles)
        ctx = None if context is None else context.repeat(m, *([1] * (context.ndim - 1)))
        out = _call(self.network, torch.cat(tiles, 0), timesteps.repeat(m), ctx)
        acc = out.new_zeros(B, out.shape[1], *S)
        count = out.new_zeros(1, 1, *S)
        for j, sl in enumerate(slices):
            acc[sl] += out[j * B:(j + 1) * B]
            count[(slice(None), slice(None), *sl[2:])] += 1
        return acc, count

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        if x.ndim - 2 != self.spatial_dims:
            raise InvalidValueError(f"x: expected {self.spatial_dims} spatial axes, got shape {tuple(x.shape)}")
        t = torch.as_tensor(timesteps, device=x.device)
        t = t.expand(x.shape[0]) if t.ndim == 0 else t
        if any(s < q for s, q in zip(x.shape[2:], self.patch)):
            raise InvalidValueError(f"x: spatial shape {tuple(x.shape[2:])} smaller than the patch {tuple(self.patch)}")
        acc, count = 0, 0
        for k in range(self.shifts):
            a, c = self._partition(x, t, context, [k * q // self.shifts for q in self.patch])
            acc, count = acc + a, count + c
        return acc / count
