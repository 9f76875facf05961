"""Training cohort for the 2.5D SPECT prior (DiffSPECT-3D, arXiv 2412.16573), simulated from the cardiac phantom.

Per phantom (:func:`acquire_phantom`): random anatomy and perfusion defect
(:func:`~monai_diffrecon.data.cardiac_phantom`, the ``family``'s ranges), a 60-view 360° acquisition with attenuation,
the LEHR collimator response and — with ``scatter`` — Compton scatter in the photopeak plus the scatter windows a real
NM TOMO file carries, at a full-dose level of ``full_counts``; the scatter estimate (TEW/DEW from the noisy window
counts) is the additive term of every reconstruction, as at inference. Then, per training example, one acquisition mode
(:func:`low_count_acquisition`):

* low dose (50 %): dose fraction log-uniform in [1 %, 50 %], all views (binomial thinning of the photopeak and the
  scatter windows ≡ Poisson at that dose; the scatter is re-estimated from the thinned windows);
* few view (35 %): full dose, 1–9 views evenly spread (random start);
* full (15 %): full dose, all views (enhancement mode).

The condition is built exactly as :class:`~monai_diffrecon.samplers.SPECT25D` builds it at inference (OSEM of the
acquired data with the scatter estimate → :func:`~monai_diffrecon.modalities.spect.spect_scale` →
:func:`~monai_diffrecon.modalities.spect.spect_condition`), so training and sampling see the same inputs.

The target (``target``):

* ``"reference"`` (default, the paper's): the **full-dose, full-view reconstruction** of the same acquisition
  (:func:`~monai_diffrecon.modalities.spect.full_dose_reference`: the clinical standard a reader is trained on), scaled
  to the example's dose — the network maps low-dose / few-view data to what the full-dose study would have shown, and
  does not learn to deconvolve the phantom family's shapes;
* ``"phantom"`` (the earlier, "deconvolving" option, kept for comparison): the noise-free activity.

Both are mapped with the condition's scale (``x ↦ 2x/s − 1``). Seeds: the split registry
(:mod:`monai_diffrecon.evaluation.splits`; training phantoms from 10 000, validation from 20 000, test from 30 000).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from tqdm.auto import tqdm

from monai_diffrecon.data.spect_phantom import cardiac_phantom
from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.evaluation.splits import SPLITS, STRIDE, seed_base
from monai_diffrecon.modalities.spect import full_dose_reference, spect_condition, spect_scale
from monai_diffrecon.physics import LEHR, SPECTProjector
from monai_diffrecon.physics.functional.devices import binomial, rand, randint
from monai_diffrecon.physics.scatter import estimate_from_windows, simulate_scatter_acquisition
from monai_diffrecon.recon.em import osem
from monai_diffrecon.training.cohort_io import save_cohort

__all__ = ["SEED_BASE", "CONDITION", "acquire_phantom", "low_count_acquisition", "simulate_volume", "build_cohort",
           "load_cohort", "cached_cohort"]

SEED_BASE = {s: seed_base("spect", s) for s in SPLITS}  # the split registry (monai_diffrecon.evaluation.splits)
#: the condition of the v2 bundle: ±3 slices, z-context at σ = 3 and 10 slices, μ and CT (11 channels)
CONDITION = {"neighbours": 3, "z_context": (3.0, 10.0), "ct_channel": True}
TARGETS = ("reference", "phantom")


def acquire_phantom(seed: int, size: int = 64, voxel_mm: float = 6.0, views: int = 60, full_counts: float = 4e6,
                    scatter: str = "tew", family: str = "train", phantom: dict | None = None) -> dict:
    """Phantom and full-dose acquisition of seed ``seed`` (module doc): ``{"phantom", "projector", "counts",
    "windows", "additive", "scatter", "activity", "mu", "myocardium", "defect", "counts_per_unit", "generator"}`` —
    ``generator`` continues the seed's stream for the acquisition modes drawn from it. ``phantom``: acquire this
    phantom (a dict like :func:`~monai_diffrecon.data.cardiac_phantom`'s on the ``size``³ grid, e.g. an out-of-family
    one) instead of drawing one."""
    g = torch.Generator().manual_seed(seed)
    has_defect = bool(rand((), g) < 0.6)
    ph = phantom if phantom is not None else cardiac_phantom((size,) * 3, voxel_mm, has_defect, torch.Generator().manual_seed(seed + 1),
                                                             family=family)
    angles = torch.arange(views, dtype=torch.float64, device="cpu") * (360.0 / views)
    radii = 250.0 - 20.0 * torch.sin(torch.deg2rad(angles)).abs()
    P = SPECTProjector(angles, voxel_mm, ph["mu"], LEHR, radii_mm=radii)
    act = ph["activity"][None, None]
    s = simulate_scatter_acquisition(P, act, ph["mu"], voxel_mm, None, g, windows=scatter, photopeak_total=full_counts)
    c = s["counts_scale"]
    return {"phantom": ph, "projector": P, "activity": act[0, 0] * c, "mu": ph["mu"], "myocardium": ph["myocardium"],
            "defect": ph["defect"], "counts_per_unit": c, "generator": g, "counts": s["counts"], "windows": s["windows"],
            "window_ranges": s.get("window_ranges", {}), "additive": s["estimate"], "scatter": s["scatter"],
            "scatter_method": s["method"]}


def _thin(t: torch.Tensor, f: float, g: torch.Generator) -> torch.Tensor:
    c = t.to(torch.float64)
    return binomial(c, torch.full_like(c, f), g).to(t.dtype)


def low_count_acquisition(acq: dict, mode: str | None = None, dose: float | None = None, kept_views: int | None = None,
                          generator: torch.Generator | None = None) -> dict:
    """One acquisition mode drawn from the full-dose acquisition ``acq`` (module doc): ``{"mode", "dose", "views",
    "counts", "projector", "additive"}`` — the thinned / view-subset counts, their projector and scatter estimate."""
    g = acq["generator"] if generator is None else generator
    P, views = acq["projector"], acq["projector"].num_views
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
    if not 0 < f <= 1:
        raise InvalidValueError(f"dose: must be in (0, 1], got {f}")
    Pm = P if len(idx) == views else P.select_views(idx)
    y = acq["counts"][:, :, idx]
    windows = {k: w[:, :, idx] for k, w in acq["windows"].items()}
    if f < 1:
        y = _thin(y, f, g)
        windows = {k: _thin(w, f, g) for k, w in windows.items()}
    additive = None
    if acq["additive"] is not None:
        if f < 1:
            additive, _ = estimate_from_windows(windows, list(acq["window_ranges"].values()), method=acq["scatter_method"])
        else:
            additive = acq["additive"][:, :, idx]
    return {"mode": mode, "dose": f, "views": len(idx), "counts": y, "projector": Pm, "additive": additive}


def simulate_volume(seed: int, size: int = 64, voxel_mm: float = 6.0, views: int = 60, full_counts: float = 4e6,
                    neighbours: int | None = None, mode: str | None = None, dose: float | None = None,
                    kept_views: int | None = None, init_iterations: int = 4, init_subsets: int = 8, target: str = "reference",
                    scatter: str = "tew", family: str = "train", z_context=None, ct_channel: bool | None = None,
                    acquisition: dict | None = None, reference: torch.Tensor | None = None) -> dict:
    """One simulated training example (module doc); deterministic in ``seed``. ``neighbours``, ``z_context`` and
    ``ct_channel`` default to :data:`CONDITION`. ``acquisition``/``reference``: reuse a phantom's full-dose acquisition
    (:func:`acquire_phantom`) and its full-dose reconstruction for several examples (the cohort does)."""
    if target not in TARGETS:
        raise InvalidValueError(f"target: one of {TARGETS}, got {target!r}")
    nb = CONDITION["neighbours"] if neighbours is None else neighbours
    zc = CONDITION["z_context"] if z_context is None else tuple(z_context)
    ctc = CONDITION["ct_channel"] if ct_channel is None else ct_channel
    acq = acquisition if acquisition is not None else acquire_phantom(seed, size, voxel_mm, views, full_counts, scatter, family)
    low = low_count_acquisition(acq, mode, dose, kept_views)
    f, Pm, y = low["dose"], low["projector"], low["counts"]
    x_init = osem(Pm, y, init_iterations, max(1, min(init_subsets, len(Pm.angles_deg))), additive=low["additive"])
    scale = spect_scale(x_init)
    cond = spect_condition(x_init, acq["mu"], scale, nb, zc, None, ctc)
    if target == "reference":
        if reference is None:
            reference = full_dose_reference(acq["projector"], acq["counts"], acq["additive"])
        goal = reference * f
    else:
        goal = acq["activity"][None, None] * f
    tgt = (2 * goal / scale - 1)[0].permute(3, 0, 1, 2).float()  # (Z, 1, X, Y)
    return {"cond": cond.half(), "target": tgt.half(), "mode": low["mode"], "dose": f, "views": low["views"], "scale": float(scale),
            "activity": acq["activity"] * f, "reference": None if reference is None else reference[0, 0] * f,
            "myocardium": acq["myocardium"], "defect": acq["defect"], "mu": acq["mu"], "counts": y, "additive": low["additive"],
            "x_init": x_init, "projector": Pm}


def build_cohort(out_path: str | Path, n_volumes: int, split: str = "train", progress: bool = True, examples_per_phantom: int = 3,
                 target: str = "reference", **kwargs) -> Path:
    """Simulate ``n_volumes`` examples (``examples_per_phantom`` acquisition modes of each phantom share its full-dose
    acquisition and reference) and save their slices ``{"cond": (N, C, X, Y), "target": (N, 1, X, Y), "meta": [...]}``
    (float16) to ``out_path``."""
    if examples_per_phantom < 1:
        raise InvalidValueError(f"examples_per_phantom: must be ≥ 1, got {examples_per_phantom}")
    acq_keys = ("size", "voxel_mm", "views", "full_counts", "scatter", "family")
    conds, targets, meta = [], [], []
    acq, ref = None, None
    for i in tqdm(range(n_volumes), desc=f"cohort {split}", disable=not progress):
        k = i // examples_per_phantom
        seed = SEED_BASE[split] + STRIDE["spect"] * k
        if i % examples_per_phantom == 0:
            acq = acquire_phantom(seed, **{a: kwargs[a] for a in acq_keys if a in kwargs})
            ref = full_dose_reference(acq["projector"], acq["counts"], acq["additive"]) if target == "reference" else None
        v = simulate_volume(seed, target=target, acquisition=acq, reference=ref, **{a: b for a, b in kwargs.items() if a not in acq_keys})
        conds.append(v["cond"])
        targets.append(v["target"])
        meta.append({"seed": seed, "example": i % examples_per_phantom, "mode": v["mode"], "dose": v["dose"], "views": v["views"],
                     "scale": v["scale"], "target": target})
    settings = {k: (list(v) if isinstance(v, tuple) else v) for k, v in sorted({**kwargs, "target": target,
                                                                                   "examples_per_phantom": examples_per_phantom}.items())}
    return save_cohort({"cond": torch.cat(conds), "target": torch.cat(targets), "meta": meta, "settings": settings}, out_path)


def load_cohort(path: str | Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def cached_cohort(path: str | Path, n_volumes: int, split: str = "train", progress: bool = True, **kwargs) -> dict:
    """Load the cohort at ``path`` if it holds ``n_volumes`` examples of ``split`` built with the same settings, else
    simulate and save it first."""
    p = Path(path)
    if p.exists():
        data = load_cohort(p)
        seeds = [m["seed"] for m in data["meta"]]
        kw = {"target": "reference", "examples_per_phantom": 3, **kwargs}
        settings = {k: (list(v) if isinstance(v, tuple) else v) for k, v in sorted(kw.items())}
        if len(seeds) == n_volumes and seeds and seeds[0] == SEED_BASE[split] and data.get("settings") == settings:
            return data
    build_cohort(p, n_volumes, split, progress, **kwargs)
    return load_cohort(p)
