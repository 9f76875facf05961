"""Natural-image data that ships offline, and blur-kernel generators.

* :data:`SKIMAGE_TRAIN` / :data:`SKIMAGE_TEST` — photographs inside the scikit-image wheel, split so that test
  images are never used for training.
* :func:`random_patches` — random crops with flips / 90° rotations, values in [0, 1].
* :func:`motion_blur_kernel` — camera-shake kernels: a random trajectory (velocity driven by Gaussian
  accelerations, an inertia term pulling back to the centre and occasional impulsive jerks, in the spirit of
  Boracchi & Foi, IEEE TIP 2012) rasterised with bilinear splatting on a ``size × size`` support, centred on its
  centre of mass and normalised to sum 1. ``intensity`` ∈ (0, 1] scales the trajectory length.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from monai_diffrecon.physics.functional.devices import rand, randint, randn
from monai_diffrecon.errors import InvalidValueError, ShapeError

__all__ = ["SKIMAGE_TRAIN", "SKIMAGE_TEST", "load_skimage", "random_patches", "motion_blur_kernel"]

SKIMAGE_TRAIN = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina", "grass",
                 "gravel", "brick", "clock", "page", "text")
SKIMAGE_TEST = ("camera", "moon", "coins", "cell")


def load_skimage(name: str, gray: bool = True) -> torch.Tensor:
    """A scikit-image sample image as float32 ``(C, H, W)`` in [0, 1] (``C = 1`` if ``gray``, else 3)."""
    import warnings

    from skimage import data
    from skimage.color import gray2rgb, rgb2gray, rgba2rgb

    if name not in SKIMAGE_TRAIN + SKIMAGE_TEST:
        raise InvalidValueError(f"name: one of {SKIMAGE_TRAIN + SKIMAGE_TEST}, got {name!r}")
    loader = getattr(data, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        img = np.asarray(loader())
    if img.dtype == bool:
        img = img.astype(np.float64)
    img = img.astype(np.float64)
    if img.max() > 1.0:
        img = img / (65535.0 if img.max() > 255 else 255.0)
    if img.ndim == 3 and img.shape[-1] == 4:
        img = rgba2rgb(img)
    if gray:
        img = rgb2gray(img) if img.ndim == 3 else img
        t = torch.from_numpy(img)[None]
    else:
        img = gray2rgb(img) if img.ndim == 2 else img
        t = torch.from_numpy(img).permute(2, 0, 1)
    return t.float().clamp(0, 1)


def random_patches(images: list[torch.Tensor], size: int, n: int, generator: torch.Generator, augment: bool = True) -> torch.Tensor:
    """``n`` random ``size × size`` crops ``(n, C, size, size)`` drawn uniformly over the images (with flips and
    90° rotations if ``augment``)."""
    out = []
    for _ in range(n):
        img = images[int(randint(0, len(images), (1,), generator))]
        C, H, W = img.shape
        if H < size or W < size:
            raise ShapeError(f"image {tuple(img.shape)} smaller than the patch size {size}")
        i = int(randint(0, H - size + 1, (1,), generator))
        j = int(randint(0, W - size + 1, (1,), generator))
        p = img[:, i : i + size, j : j + size]
        if augment:
            if bool(rand((), generator) < 0.5):
                p = p.flip(-1)
            p = torch.rot90(p, int(randint(0, 4, (1,), generator)), dims=(-2, -1))
        out.append(p)
    return torch.stack(out)


def motion_blur_kernel(size: int = 64, intensity: float = 0.5, generator: torch.Generator | None = None, steps: int = 2000) -> torch.Tensor:
    """Random camera-shake kernel ``(size, size)`` float32, sum 1 (see module doc)."""
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    rnd = lambda *s: randn(s, g, dtype=torch.float64).numpy()  # noqa: E731
    uni = lambda: float(rand((), g, dtype=torch.float64))  # noqa: E731
    max_len = 0.75 * size * max(0.05, min(1.0, intensity))
    anxiety = 0.005 * uni()
    centripetal = 0.7 * uni()
    gaussian = 10.0 * uni()
    jerk_prob = 0.1 * uni()
    v = np.array([math.cos(2 * math.pi * uni()), math.sin(2 * math.pi * uni())]) * max_len / steps
    x = np.zeros((steps, 2))
    for t in range(steps - 1):
        if uni() < jerk_prob * anxiety:
            nv = 2 * v * np.array([math.cos(math.pi * (2 * uni() - 1)), math.sin(math.pi * (2 * uni() - 1))])
        else:
            nv = np.zeros(2)
        dv = nv + anxiety * (gaussian * rnd(2) - centripetal * x[t]) * max_len / steps
        v = v + dv
        v = v / max(np.linalg.norm(v), 1e-12) * max_len / steps
        x[t + 1] = x[t] + v
    x = x - x.mean(0) + (size - 1) / 2
    k = np.zeros((size, size))
    for px, py in x:
        i0, j0 = math.floor(py), math.floor(px)
        fy, fx = py - i0, px - j0
        for di, dj, w in ((0, 0, (1 - fy) * (1 - fx)), (1, 0, fy * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 1, fy * fx)):
            ii, jj = i0 + di, j0 + dj
            if 0 <= ii < size and 0 <= jj < size:
                k[ii, jj] += w
    # centre of mass to the centre pixel (integer shift keeps the kernel sharp)
    tot = k.sum()
    cy, cx = (k.sum(1) @ np.arange(size)) / tot, (k.sum(0) @ np.arange(size)) / tot
    k = np.roll(k, (int(round(size // 2 - cy)), int(round(size // 2 - cx))), axis=(0, 1))
    return torch.from_numpy(k / k.sum()).float()
