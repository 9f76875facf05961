"""Training and evaluation data for the multi-coil MRI bundles, from the MNI152 anatomy (``data.mri_sim``).

All k-space is divided by :func:`~monai_diffrecon.modalities.mri.acs_scale` (the peak of the ACS-only image: a
data-only normalisation the inference workflow applies too).

* ``split="train"`` — what MSM and SelfDB may see: per slice, one acquisition with its own random Cartesian mask
  (R = 4, 20 ACS lines), 8 birdcage coils and complex Gaussian noise σ = 0.01 on the acquired samples, plus the
  ESPIRiT coil maps estimated from its own ACS lines. Saved keys: ``kspace`` (zero outside the mask), ``mask``,
  ``maps`` — no image, no fully sampled k-space.
* ``split="clean"`` — the *oracle* cohort for the clean-image prior that DPS/DDNM use in the benchmark (the
  self-supervised methods compete with it): the same slices as complex images, coil-combined with the same
  ESPIRiT maps (so phase conventions match), in ``images``.
* ``split="val"`` / ``"test"`` — held-out slices (disjoint axial blocks, :func:`~monai_diffrecon.data.mri_sim.mni_split_slices`)
  with the fully sampled k-space kept for scoring only.

Seeds: train 40 000+, val 50 000+, test 60 000+.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tqdm.auto import tqdm

from monai_diffrecon.data.mri_sim import mni_mr_slices, simulate_multicoil
from monai_diffrecon.modalities.mri import acs_scale
from monai_diffrecon.physics import estimate_coil_maps
from monai_diffrecon.physics.functional.sense import sense_combine
from monai_diffrecon.training.cohort_io import save_cohort
from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.evaluation.splits import SPLITS, seed_base

__all__ = ["MRI_SEEDS", "build_mri_cohort", "cached_mri_cohort", "mri_acquisition"]

MRI_SEEDS = {**{s: seed_base("mri", s) for s in SPLITS}, "clean": seed_base("mri", "train")}  # the split registry


def mri_acquisition(image: torch.Tensor, seed: int, acceleration: float = 4.0, center_lines: int = 20, coils: int = 8,
                    noise_sigma: float = 0.01, calib_size: int = 20) -> dict:
    """Simulate one acquisition of a complex ``(H, W)`` image; returns k-space, mask, ESPIRiT maps and the fully
    sampled k-space (the latter for evaluation only)."""
    smp = simulate_multicoil(image[None], coils, acceleration, center_lines, "random", noise_sigma, torch.Generator().manual_seed(seed))
    maps = estimate_coil_maps(smp.kspace, calib_size=min(calib_size, center_lines)).to(torch.complex64)
    s = acs_scale(smp.kspace, maps, smp.mask)  # data-only normalisation, applied identically at inference
    return {"kspace": smp.kspace[0] / s, "mask": smp.mask[0], "maps": maps[0], "kspace_full": smp.kspace_full[0] / s,
            "truth": smp.image[0, 0] / s, "scale": s}


def build_mri_cohort(out_path: str | Path, n_slices: int, split: str = "train", size: int = 128, acceleration: float = 4.0,
                     progress: bool = True) -> Path:
    """Simulate ``n_slices`` acquisitions of ``split`` and save them (see module doc for the keys per split)."""
    if split not in MRI_SEEDS:
        raise InvalidValueError(f"split: one of {sorted(MRI_SEEDS)}, got {split!r}")
    base = MRI_SEEDS[split]
    images = mni_mr_slices("train" if split in ("train", "clean") else split, n_slices, size=size, seed=base)
    keys = {"train": ("kspace", "mask", "maps"), "clean": ("images",), "val": ("kspace", "mask", "maps", "kspace_full", "truth", "scale"),
            "test": ("kspace", "mask", "maps", "kspace_full", "truth", "scale")}[split]
    out = {k: [] for k in keys}
    for i in tqdm(range(n_slices), desc=f"MRI cohort {split}", disable=not progress):
        acq = mri_acquisition(images[i], base + i, acceleration)
        if split == "clean":
            out["images"].append(sense_combine(acq["kspace_full"][None], acq["maps"][None])[0])
            continue
        for k in keys:
            out[k].append(torch.tensor(acq[k], device="cpu") if k == "scale" else acq[k])
    data = {k: torch.stack(v) for k, v in out.items()}
    data["meta"] = {"split": split, "n": n_slices, "size": size, "acceleration": acceleration, "seed": base}
    return save_cohort(data, out_path)


def cached_mri_cohort(path: str | Path, n_slices: int, split: str = "train", size: int = 128, acceleration: float = 4.0,
                      progress: bool = True) -> dict:
    """Load the cohort at ``path`` if it matches the request, else build it first."""
    p = Path(path)
    if p.exists():
        data = torch.load(p, map_location="cpu", weights_only=True)
        if data.get("meta") == {"split": split, "n": n_slices, "size": size, "acceleration": acceleration, "seed": MRI_SEEDS[split]}:
            return data
    build_mri_cohort(p, n_slices, split, size, acceleration, progress)
    return torch.load(p, map_location="cpu", weights_only=True)
