"""Training cohort for the 2.5D SPECT prior (DiffSPECT-3D style), simulated from the cardiac phantom.

Each volume: random anatomy and perfusion defect (:func:`~monai_diffrecon.data.cardiac_phantom`), a 60-view
360° acquisition with attenuation and the LEHR collimator response at a full-dose level of ``full_counts``, then
one acquisition mode drawn per volume:

* low dose (50 %): dose fraction log-uniform in [1 %, 50 %], all views (binomial thinning ≡ Poisson at that dose);
* few view (35 %): full dose, 1–9 views evenly spread (random start);
* full (15 %): full dose, all views (enhancement mode).

The condition is built exactly as :class:`~monai_diffrecon.samplers.SPECT25D` builds it at inference (OSEM of the
acquired data → :func:`~monai_diffrecon.modalities.spect.spect_scale` →
:func:`~monai_diffrecon.modalities.spect.spect_condition`), so training and sampling see the same inputs. The
target is the noise-free activity in the acquisition's units (counts per voxel for this dose), mapped with the
same scale. Seeds: training phantoms from 10 000, validation from 20 000, evaluation (benchmarks) from 30 000.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from tqdm.auto import tqdm

from monai_diffrecon.data.spect_phantom import cardiac_phantom
from monai_diffrecon.modalities.spect import spect_condition, spect_scale
from monai_diffrecon.physics import LEHR, SPECTProjector
from monai_diffrecon.physics.functional.devices import poisson, rand, randint
from monai_diffrecon.recon.em import osem
from monai_diffrecon.training.cohort_io import save_cohort
from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.evaluation.splits import SPLITS, STRIDE, seed_base

__all__ = ["SEED_BASE", "simulate_volume", "build_cohort", "load_cohort", "cached_cohort"]

SEED_BASE = {s: seed_base("spect", s) for s in SPLITS}  # the split registry (monai_diffrecon.evaluation.splits)


def simulate_volume(seed: int, size: int = 64, voxel_mm: float = 6.0, views: int = 60, full_counts: float = 4e6,
                    neighbours: int = 1, mode: str | None = None, dose: float | None = None, kept_views: int | None = None,
                    init_iterations: int = 4, init_subsets: int = 8) -> dict:
    """One simulated acquisition with its condition and target (see module doc); deterministic in ``seed``."""
    g = torch.Generator().manual_seed(seed)
    has_defect = bool(rand((), g) < 0.6)
    ph = cardiac_phantom((size,) * 3, voxel_mm, has_defect, torch.Generator().manual_seed(seed + 1))
    angles = torch.arange(views, dtype=torch.float64, device="cpu") * (360.0 / views)
    radii = 250.0 - 20.0 * torch.sin(torch.deg2rad(angles)).abs()
    P = SPECTProjector(angles, voxel_mm, ph["mu"], LEHR, radii_mm=radii)
    act = ph["activity"][None, None]
    expected = P(act)
    c = full_counts / float(expected.sum())
    if mode is None:
        r = float(rand((), g))
        mode = "lowdose" if r < 0.5 else ("fewview" if r < 0.85 else "full")
    if mode == "lowdose":
        f = dose if dose is not None else math.exp(math.log(0.01) + float(rand((), g)) * (math.log(0.5) - math.log(0.01)))
        idx = torch.arange(views, device="cpu")
    elif mode == "fewview":
        f = 1.0 if dose is None else dose
        n = kept_views if kept_views is not None else int(randint(1, 10, (1,), g))
        off = float(rand((), g)) * views / n
        idx = torch.unique(torch.floor(off + torch.arange(n, device="cpu") * views / n).long() % views)
    elif mode == "full":
        f, idx = 1.0, torch.arange(views, device="cpu")
    else:
        raise InvalidValueError(f"mode: lowdose, fewview or full, got {mode!r}")
    Pm = P if len(idx) == views else P.select_views(idx)
    y = poisson(expected[:, :, idx] * (c * f), g)
    x_init = osem(Pm, y, init_iterations, max(1, min(init_subsets, len(idx))))
    scale = spect_scale(x_init)
    cond = spect_condition(x_init, ph["mu"], scale, neighbours)
    target = (2 * act * (c * f) / scale - 1)[0].permute(3, 0, 1, 2).float()  # (Z, 1, X, Y)
    return {"cond": cond.half(), "target": target.half(), "mode": mode, "dose": f, "views": len(idx), "scale": float(scale),
            "activity": act[0, 0] * (c * f), "myocardium": ph["myocardium"], "defect": ph["defect"], "mu": ph["mu"], "counts": y, "x_init": x_init,
            "projector": Pm}


def build_cohort(out_path: str | Path, n_volumes: int, split: str = "train", progress: bool = True, **kwargs) -> Path:
    """Simulate ``n_volumes`` volumes and save their slices ``{"cond": (N, C, X, Y), "target": (N, 1, X, Y), "meta": [...]}``
    (float16) to ``out_path``."""
    conds, targets, meta = [], [], []
    for i in tqdm(range(n_volumes), desc=f"cohort {split}", disable=not progress):
        v = simulate_volume(SEED_BASE[split] + STRIDE["spect"] * i, **kwargs)
        conds.append(v["cond"])
        targets.append(v["target"])
        meta.append({"seed": SEED_BASE[split] + STRIDE["spect"] * i, "mode": v["mode"], "dose": v["dose"], "views": v["views"], "scale": v["scale"]})
    return save_cohort({"cond": torch.cat(conds), "target": torch.cat(targets), "meta": meta}, out_path)


def load_cohort(path: str | Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def cached_cohort(path: str | Path, n_volumes: int, split: str = "train", progress: bool = True, **kwargs) -> dict:
    """Load the cohort at ``path`` if it holds ``n_volumes`` volumes of ``split``, else simulate and save it first."""
    p = Path(path)
    if p.exists():
        data = load_cohort(p)
        seeds = [m["seed"] for m in data["meta"]]
        if len(seeds) == n_volumes and seeds and seeds[0] == SEED_BASE[split]:
            return data
    build_cohort(p, n_volumes, split, progress, **kwargs)
    return load_cohort(p)
