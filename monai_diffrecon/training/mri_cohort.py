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

``varied=True`` (the v2 cohorts, arXiv 2505.11853 trains on fastMRI's mix of scanners): per slice a coil count
drawn from 4–16 (k-space and maps zero-padded to 16 coils; a zero map adds nothing to a coil combination), a
birdcage radius from 1.2–2.0 (coil localisation) and a random or equispaced line mask (fastMRI's two 1D patterns),
with ESPIRiT maps from the slice's own ACS as before; and every 4th training slice is real anatomy from the wheels
(:func:`~monai_diffrecon.data.mri_sim.wheel_training_slices`: two subjects' diffusion/BOLD EPI and a T1 head slice,
none held out) instead of an MNI152-based one. The noise stays σ = 0.01: the MSM trainer's η must be the
data's noise level.

Seeds: train 40 000+, val 50 000+, test 60 000+.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tqdm.auto import tqdm

from monai_diffrecon.data.mri_sim import mni_mr_slices, simulate_multicoil, wheel_training_slices
from monai_diffrecon.modalities.mri import acs_scale
from monai_diffrecon.physics import estimate_coil_maps
from monai_diffrecon.physics.functional.sense import sense_combine
from monai_diffrecon.training.cohort_io import save_cohort
from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.evaluation.splits import SPLITS, seed_base

__all__ = ["MRI_SEEDS", "build_mri_cohort", "cached_mri_cohort", "mri_acquisition"]

MRI_SEEDS = {**{s: seed_base("mri", s) for s in SPLITS}, "clean": seed_base("mri", "train")}  # the split registry


MAX_COILS = 16  # varied cohorts pad every slice's coils to this count


def varied_setting(seed: int) -> dict:
    """The acquisition settings of one slice of a varied cohort (module doc), deterministic in ``seed``."""
    g = torch.Generator().manual_seed(seed + 7_000_000)
    coils = int(torch.randint(4, MAX_COILS + 1, (1,), generator=g, device="cpu"))
    radius = 1.2 + 0.8 * float(torch.rand((), generator=g, device="cpu"))
    kind = ("random", "equispaced")[int(torch.randint(0, 2, (1,), generator=g, device="cpu"))]
    return {"coils": coils, "coil_radius": radius, "mask_type": kind}


def mri_acquisition(image: torch.Tensor, seed: int, acceleration: float = 4.0, center_lines: int = 20, coils: int = 8,
                    noise_sigma: float = 0.01, calib_size: int = 20, mask_type: str = "random", coil_radius: float = 1.5,
                    pad_coils: int | None = None) -> dict:
    """Simulate one acquisition of a complex ``(H, W)`` image; returns k-space, mask, ESPIRiT maps and the fully
    sampled k-space (the latter for evaluation only); ``pad_coils`` zero-pads k-space and maps to that many coils."""
    smp = simulate_multicoil(image[None], coils, acceleration, center_lines, mask_type, noise_sigma, torch.Generator().manual_seed(seed),
                             coil_radius=coil_radius)
    maps = estimate_coil_maps(smp.kspace, calib_size=min(calib_size, center_lines)).to(torch.complex64)
    s = acs_scale(smp.kspace, maps, smp.mask)  # data-only normalisation, applied identically at inference
    k, kf, mp = smp.kspace[0] / s, smp.kspace_full[0] / s, maps[0]
    if pad_coils is not None and pad_coils > coils:
        pad = (0, 0, 0, 0, 0, pad_coils - coils)
        k, kf, mp = (torch.nn.functional.pad(v, pad) for v in (k, kf, mp))
    mask = smp.mask.reshape(1, 1, 1, -1)[0] if smp.mask.numel() == smp.mask.shape[-1] else smp.mask[0]
    return {"kspace": k, "mask": mask, "maps": mp, "kspace_full": kf, "truth": smp.image[0, 0] / s, "scale": s}


def build_mri_cohort(out_path: str | Path, n_slices: int, split: str = "train", size: int = 128, acceleration: float = 4.0,
                     progress: bool = True, varied: bool = False) -> Path:
    """Simulate ``n_slices`` acquisitions of ``split`` and save them (see module doc for the keys per split)."""
    if split not in MRI_SEEDS:
        raise InvalidValueError(f"split: one of {sorted(MRI_SEEDS)}, got {split!r}")
    base = MRI_SEEDS[split]
    images = mni_mr_slices("train" if split in ("train", "clean") else split, n_slices, size=size, seed=base)
    if varied and split in ("train", "clean"):
        real = torch.arange(3, n_slices, 4, device="cpu")
        if len(real):
            images[real] = wheel_training_slices(len(real), size, seed=base).to(images.dtype)
    keys = {"train": ("kspace", "mask", "maps"), "clean": ("images",), "val": ("kspace", "mask", "maps", "kspace_full", "truth", "scale"),
            "test": ("kspace", "mask", "maps", "kspace_full", "truth", "scale")}[split]
    out = {k: [] for k in keys}
    for i in tqdm(range(n_slices), desc=f"MRI cohort {split}", disable=not progress):
        kw = {**varied_setting(base + i), "pad_coils": MAX_COILS} if varied else {}
        acq = mri_acquisition(images[i], base + i, acceleration, **kw)
        if split == "clean":
            out["images"].append(sense_combine(acq["kspace_full"][None], acq["maps"][None])[0])
            continue
        for k in keys:
            out[k].append(torch.tensor(acq[k], device="cpu") if k == "scale" else acq[k])
    data = {k: torch.stack(v) for k, v in out.items()}
    data["meta"] = _meta(split, n_slices, size, acceleration, varied)
    return save_cohort(data, out_path)


def _meta(split, n_slices, size, acceleration, varied) -> dict:
    meta = {"split": split, "n": n_slices, "size": size, "acceleration": acceleration, "seed": MRI_SEEDS[split]}
    if not varied:
        return meta  # v1 cohorts keep their cache key
    from collections import Counter

    from monai_diffrecon.data.mr_wheels import wheel_mr_slices

    # the real slices found in this environment's wheels: a cohort built with other sources is rebuilt
    return {**meta, "varied": True, "wheel_slices": dict(sorted(Counter(n for n, _ in wheel_mr_slices()).items()))}


def cached_mri_cohort(path: str | Path, n_slices: int, split: str = "train", size: int = 128, acceleration: float = 4.0,
                      progress: bool = True, varied: bool = False) -> dict:
    """Load the cohort at ``path`` if it matches the request, else build it first."""
    p = Path(path)
    if p.exists():
        data = torch.load(p, map_location="cpu", weights_only=True)
        if data.get("meta") == _meta(split, n_slices, size, acceleration, varied):
            return data
    build_mri_cohort(p, n_slices, split, size, acceleration, progress, varied)
    return torch.load(p, map_location="cpu", weights_only=True)
