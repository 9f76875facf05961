"""Satellite cohorts for DB-CR: simulated cloudy / clear / SAR triplets in the SEN12MS-CR value conventions.

Each scene comes from :func:`~monai_diffrecon.data.satellite_sim.satellite_scene` and goes through
:func:`~monai_diffrecon.modalities.satellite.sen12ms_normalize` (optical DN clipped to [0, 10000] and /10000, VV/VH
clipped to [−25, 0] / [−32.5, 0] dB and mapped to [0, 1]) — the same transforms real SEN12MS-CR triplets get. Splits
use disjoint seed ranges (train 90 000+, validation 190 000+, test 290 000+), so no scene repeats across splits. The file holds ``clear``, ``cloudy`` ``(N, 4, H, W)``, ``sar`` ``(N, 2, H, W)``, ``cloud`` ``(N, 1, H, W)``
(thickness, for cloud-masked metrics) and ``meta``; it is written atomically and reused when ``meta`` matches.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tqdm.auto import tqdm

from monai_diffrecon.data.satellite_sim import satellite_scene
from monai_diffrecon.modalities.satellite import sen12ms_normalize
from monai_diffrecon.training.cohort_io import cached
from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.evaluation.splits import SPLITS, seed_base

__all__ = ["SATELLITE_SEEDS", "cached_satellite_cohort"]

SATELLITE_SEEDS = {s: seed_base("satellite", s) for s in SPLITS}  # the split registry (evaluation.splits)


def _scenes(n_scenes: int, split: str, size: int, progress: bool, cloud_model: str = "v1") -> dict:
    out = {"clear": [], "cloudy": [], "sar": [], "cloud": []}
    for i in tqdm(range(n_scenes), desc=f"satellite cohort {split}", disable=not progress):
        s = satellite_scene(size, torch.Generator().manual_seed(SATELLITE_SEEDS[split] + i), cloud_model=cloud_model)
        clear, sar = sen12ms_normalize(s["clear"], s["sar"])
        cloudy, _ = sen12ms_normalize(s["cloudy"], s["sar"])
        out["clear"].append(clear)
        out["cloudy"].append(cloudy)
        out["sar"].append(sar)
        out["cloud"].append(s["cloud"])
    return {k: torch.stack(v).float() for k, v in out.items()}


def cached_satellite_cohort(path: str | Path, n_scenes: int, split: str = "train", size: int = 128, progress: bool = True,
                            cloud_model: str = "v1") -> dict:
    """Load the cohort at ``path`` if its ``meta`` matches the request, else simulate and save it first;
    ``cloud_model`` as :func:`~monai_diffrecon.data.satellite_sim.satellite_scene`."""
    if split not in SATELLITE_SEEDS:
        raise InvalidValueError(f"split: one of {sorted(SATELLITE_SEEDS)}, got {split!r}")
    meta = {"split": split, "n": n_scenes, "size": size, "seed": SATELLITE_SEEDS[split]}
    if cloud_model != "v1":
        meta["cloud_model"] = cloud_model
    return cached(path, meta, lambda: _scenes(n_scenes, split, size, progress, cloud_model))
