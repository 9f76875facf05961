"""Natural-image and blur-kernel cohorts for the natural-image bundles (Blind-PnPDM, RELD, score-based PnP,
Diff-Unfolding deblurring).

* :func:`cached_patch_cohort` — grey-level patches ``(N, 1, s, s)`` in [0, 1] from the scikit-image training
  photographs (:data:`~monai_diffrecon.data.natural.SKIMAGE_TRAIN`; the test photographs are never read), random
  crops with flips and 90° rotations; ``scale="signed"`` maps them to [−1, 1] (the diffusion priors' range).
* :func:`cached_kernel_cohort` — blur kernels ``(N, 1, k, k)``: camera-shake kernels
  (:func:`~monai_diffrecon.data.natural.motion_blur_kernel`, intensity drawn in [0.2, 0.8]) and a fraction of
  isotropic/anisotropic Gaussians, each normalised to sum 1, stored in the kernel prior's domain
  ``k̃ = 2k/max(k) − 1`` with the per-kernel maxima (to map back: ``k = (k̃ + 1)·max/2``, renormalised).

Both are written atomically and reused when their ``meta`` matches (seeds: patches 100 000+, kernels 110 000+;
validation sets use +500 000).
"""

from __future__ import annotations

from pathlib import Path

import torch
from tqdm.auto import tqdm

from monai_diffrecon.data.natural import SKIMAGE_TRAIN, load_skimage, motion_blur_kernel, random_patches
from monai_diffrecon.physics.blur import gaussian_kernel
from monai_diffrecon.physics.functional.devices import rand
from monai_diffrecon.training.cohort_io import cached
from monai_diffrecon.evaluation.splits import seed_base

__all__ = ["cached_patch_cohort", "cached_kernel_cohort", "unit_kernels", "NATURAL_SEEDS"]

# the split registry (evaluation.splits): validation draws sit val_offset above the training ones
NATURAL_SEEDS = {"patches": seed_base("natural_patches", "train"), "kernels": seed_base("natural_kernels", "train"),
                 "val_offset": seed_base("natural_patches", "val") - seed_base("natural_patches", "train")}


def cached_patch_cohort(path: str | Path, n_patches: int, size: int = 64, split: str = "train", scale: str = "signed") -> dict:
    """``{"images": (N, 1, size, size) float32, "meta"}`` (see module doc)."""
    seed = NATURAL_SEEDS["patches"] + (NATURAL_SEEDS["val_offset"] if split == "val" else 0)
    meta = {"kind": "patches", "n": n_patches, "size": size, "split": split, "scale": scale, "seed": seed}

    def build():
        imgs = [load_skimage(name) for name in SKIMAGE_TRAIN]
        x = random_patches(imgs, size, n_patches, torch.Generator().manual_seed(seed))
        return {"images": (2 * x - 1 if scale == "signed" else x).float()}

    return cached(path, meta, build)


def cached_kernel_cohort(path: str | Path, n_kernels: int, size: int = 64, split: str = "train", gaussian_fraction: float = 0.2,
                         progress: bool = True) -> dict:
    """``{"kernels": (N, 1, size, size) in the prior domain, "maxima": (N,), "meta"}`` (see module doc)."""
    seed = NATURAL_SEEDS["kernels"] + (NATURAL_SEEDS["val_offset"] if split == "val" else 0)
    meta = {"kind": "kernels", "n": n_kernels, "size": size, "split": split, "gaussian_fraction": gaussian_fraction, "seed": seed}

    def build():
        g = torch.Generator().manual_seed(seed)
        ks = []
        for _ in tqdm(range(n_kernels), desc="kernels", disable=not progress):
            if float(rand((), g)) < gaussian_fraction:
                s = (0.5 + 3.5 * rand(2, g)).tolist()
                k = gaussian_kernel(tuple(s), size=(size, size))
            else:
                k = motion_blur_kernel(size, 0.2 + 0.6 * float(rand((), g)), g)
            ks.append(k / k.sum())
        k = torch.stack(ks)[:, None].float()
        mx = k.amax(dim=(-2, -1))
        return {"kernels": 2 * k / mx[..., None, None] - 1, "maxima": mx.reshape(-1)}

    return cached(path, meta, build)


def unit_kernels(cohort: dict) -> torch.Tensor:
    """The kernels of a :func:`cached_kernel_cohort` back in the image domain: ``(N, k, k)``, non-negative, each
    summing to 1 (a kernel bank for :class:`~monai_diffrecon.training.BlurOperatorSampler`)."""
    k = ((cohort["kernels"][:, 0].double() + 1) * cohort["maxima"].double()[:, None, None] / 2).clamp_min(0)
    return (k / k.sum(dim=(-2, -1), keepdim=True)).float()
