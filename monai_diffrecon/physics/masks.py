"""Cartesian k-space sampling masks (deterministic given a ``torch.Generator``).

All masks are real ``float32`` 0/1 tensors ready for :class:`~monai_diffrecon.physics.MultiCoilMRI`, on the
device the caller names (``device=``; random masks default to their generator's device, where they are drawn):
line masks are ``(1, 1, 1, W)`` (phase-encode lines along the last axis, fully sampled along ``H``, as in
fastMRI), 2D masks are ``(1, 1, H, W)``. The k-space centre is at index ``n // 2`` (centred FFT).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.physics.functional.devices import rand, randint

__all__ = ["random_lines_mask", "equispaced_mask", "poisson_disc_mask"]


def _check(acceleration: float, center: int, n: int) -> None:
    if not (acceleration >= 1):
        raise InvalidValueError(f"acceleration: must be ≥ 1, got {acceleration}")
    if not 0 <= center <= n:
        raise InvalidValueError(f"center_lines: must be in [0, {n}], got {center}")


def _center_slice(n: int, width: int) -> slice:
    start = n // 2 - width // 2
    return slice(start, start + width)


def random_lines_mask(
    num_cols: int, acceleration: float, center_lines: int = 20, *, generator: torch.Generator, device=None
) -> torch.Tensor:
    """Uniform random phase-encode lines plus a fully sampled centre (fastMRI ``RandomMaskFunc`` rule).

    Outside the ``center_lines`` auto-calibration (ACS) block each line is kept with probability
    ``(W/R − n_acs) / (W − n_acs)``, so the expected number of lines is ``W / R``.

    Returns:
        ``(1, 1, 1, W)`` float32 mask.
    """
    _check(acceleration, center_lines, num_cols)
    n_target = num_cols / acceleration
    prob = max(0.0, (n_target - center_lines) / max(num_cols - center_lines, 1))
    keep = rand(num_cols, generator, dtype=torch.float64) < prob
    keep[_center_slice(num_cols, center_lines)] = True
    return keep.to(device=device, dtype=torch.float32).reshape(1, 1, 1, num_cols)


def equispaced_mask(num_cols: int, acceleration: float, center_lines: int = 20, offset: int = 0, *,
                    match_acceleration: bool = False, device: torch.device | str = "cpu") -> torch.Tensor:
    """Equispaced lines plus the centre block; ``(1, 1, 1, W)``.

    By default every ``acceleration``-th line (starting at ``offset``) is kept and the ACS block is added on top, so
    the mask samples more than ``W / R`` lines (R = 4 with 20 ACS lines at 128 columns is R ≈ 2.7).
    ``match_acceleration=True`` widens the spacing instead, so that equispaced lines plus ACS block are ``W / R``
    lines in all (fastMRI's ``EquispacedMaskFractionFunc`` rule: spacing ``R (n_acs − W) / (n_acs R − W)``).
    """
    _check(acceleration, center_lines, num_cols)
    keep = torch.zeros(num_cols, dtype=torch.bool, device="cpu")
    if match_acceleration:
        if center_lines * acceleration >= num_cols:
            raise InvalidValueError(f"center_lines: {center_lines} ACS lines alone reach R = {num_cols / max(center_lines, 1):.2f} "
                                    f"at {num_cols} columns, no room for R = {acceleration}")
        spacing = acceleration * (center_lines - num_cols) / (center_lines * acceleration - num_cols)
        start = offset % max(int(round(spacing)), 1)
        keep[torch.from_numpy(np.around(np.arange(start, num_cols - 1, spacing)).astype(np.int64))] = True
    else:
        keep[offset % int(acceleration) :: int(acceleration)] = True
    keep[_center_slice(num_cols, center_lines)] = True
    return keep.to(device=device, dtype=torch.float32).reshape(1, 1, 1, num_cols)


def _poisson_disc(shape: tuple[int, int], scale: float, power: float, calib: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Dart throwing in random order: a pixel is taken if no taken pixel lies within its exclusion radius
    ``r(k) = scale · (1 + |k|_norm^power · 3)`` (small near the centre, larger at the edge)."""
    H, W = shape
    ky = (np.arange(H) - H // 2) / (H / 2)
    kx = (np.arange(W) - W // 2) / (W / 2)
    kr = np.sqrt(ky[:, None] ** 2 + kx[None, :] ** 2) / math.sqrt(2)
    radius = scale * (1.0 + 3.0 * kr**power)
    rmax = int(math.ceil(radius.max()))
    oy, ox = np.mgrid[-rmax : rmax + 1, -rmax : rmax + 1]
    od = np.sqrt(oy**2 + ox**2).ravel()
    oy, ox = oy.ravel(), ox.ravel()
    order = np.argsort(od)
    oy, ox, od = oy[order], ox[order], od[order]
    blocked = np.zeros((H, W), dtype=bool)
    mask = np.zeros((H, W), dtype=bool)
    for p in rng.permutation(H * W):
        i, j = divmod(int(p), W)
        if blocked[i, j]:
            continue
        mask[i, j] = True
        n = int(np.searchsorted(od, radius[i, j], side="left"))
        yy, xx = i + oy[:n], j + ox[:n]
        ok = (yy >= 0) & (yy < H) & (xx >= 0) & (xx < W)
        blocked[yy[ok], xx[ok]] = True
    cy, cx = _center_slice(H, calib[0]), _center_slice(W, calib[1])
    mask[cy, cx] = True
    return mask


def poisson_disc_mask(
    shape: tuple[int, int],
    acceleration: float,
    calib: tuple[int, int] = (20, 20),
    *,
    generator: torch.Generator,
    power: float = 1.0,
    tol: float = 0.03,
    max_iter: int = 20,
    device=None,
) -> torch.Tensor:
    """Variable-density Poisson-disc 2D mask (for 3D Cartesian ``ky × kz`` or 2D random sampling).

    The exclusion radius grows with ``|k|`` (``power`` sets how fast); its overall scale is bisected until the
    sampled fraction is within ``tol`` (relative) of ``1 / acceleration``.

    Returns:
        ``(1, 1, H, W)`` float32 mask with a fully sampled ``calib`` centre, on ``device`` (default: the generator's).
    """
    H, W = int(shape[0]), int(shape[1])
    _check(acceleration, 0, 0)
    if calib[0] > H or calib[1] > W:
        raise InvalidValueError(f"calib: {calib} larger than the mask {shape}")
    seed = int(randint(0, 2**62, (1,), generator))
    target = 1.0 / acceleration
    lo, hi = 0.3, max(H, W) / 2.0
    best = None
    for _ in range(max_iter):
        mid = math.sqrt(lo * hi)
        m = _poisson_disc((H, W), mid, power, calib, np.random.default_rng(seed))
        frac = m.mean()
        if best is None or abs(frac - target) < abs(best.mean() - target):
            best = m
        if abs(frac - target) <= tol * target:
            break
        if frac > target:
            lo = mid
        else:
            hi = mid
    return torch.from_numpy(best.astype(np.float32)).reshape(1, 1, H, W).to(generator.device if device is None else device)
