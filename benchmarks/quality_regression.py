"""Quality regression guard for every shipped bundle (issue 21, item 4) → results/quality_regression.json (+ .md).

Usage:
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/quality_regression.py      # all checks (≈ 6 min on 2 cores)
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/quality_regression.py --only natural_reld   # re-measure some bundles

For each bundle a small fixed held-out set — the first cases of the registry's *test* split, written by
``diffrecon simulate`` (:func:`monai_diffrecon.simulate.simulate` with its default, the test seeds) — is run through
:func:`~monai_diffrecon.bundles.run_bundle`, the user's path (``OUT/<case>/…`` and ``OUT/summary.json``; the numbers
are read back from ``summary.json``) with the shipped weights, the bundle's own settings, seed 0 and only the
reductions listed in :data:`CHECKS` (SPECT: its own settings at the 5 % dose of its evaluate config) so
that each bundle takes at most about half a minute on 2 CPU cores (Blind-PnPDM keeps its 100 Gibbs iterations on
2 cases: with 30 the moon image ends 1.3 dB below its blurred input, a level too low to guard).

Recorded per check: the workflow's own trivial input (plain OSEM — the sampler's warm start —, zero-filled SENSE,
blurred / noisy / bicubic input, cloudy input) and one classical baseline on the same cases, its one or two
hyper-parameters chosen by :func:`~monai_diffrecon.evaluation.grid_search` on *validation* cases (budget
:data:`BUDGET` settings for every baseline; validation seeds and images from :mod:`monai_diffrecon.evaluation.splits`):

* SPECT: OSEM (the same 4 iterations × 8 subsets) + 3D Gaussian post-filter, σ (voxels);
* MRI: TV (ADMM, closed-form prox) λ, or SENSE-CG iterations — both tuned, the one stronger on validation is kept;
* Diff-Unfolding deblurring and RELD (per task): isotropic TV by ADMM with the true operator, λ;
* Blind-PnPDM: Richardson–Lucy with the Gaussian kernel estimated from the blurred image's spectrum, iterations
  (validation prefers the fewest: with its kernel estimate RL only loses to the blurred input, as in natural.md);
* DB-CR: a SAR-regression fill — cloud pixels (blue reflectance above a threshold) replaced, band by band, by a
  quadratic least-squares fit on the SAR (VV, VH; Gaussian-smoothed, 1 px) over the clear pixels; the threshold
  (the smoothing width made no difference on validation: within 0.1 dB over 0.5–2 px).

The margins ``ours − trivial`` and ``ours − baseline`` measured now, and a tolerance — 0.5 dB, or more where the
spread of ours between 1 and 2 torch threads (the run-to-run difference across CPUs) asks for it: ``max(0.5,
3 × spread)`` rounded up to 0.1 dB — are what ``tests/test_quality_regression.py`` asserts: re-running the check,
``ours − trivial ≥ margin − tol`` and ``ours − baseline ≥ margin − tol`` (a negative margin guards today's level).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "results" / "quality_regression.json"
BUDGET = 6  # settings per baseline's grid search (every baseline gets the same)
N_VAL = 4  # validation cases per baseline
TOL_MIN, TOL_SPREAD = 0.5, 3.0  # dB; tolerance = max(TOL_MIN, TOL_SPREAD × |ours(1 thread) − ours(2 threads)|)
TRIVIAL_DRIFT = 0.1  # dB: the trivial input re-measured by the test must match the record (same inputs)


def _check(bundle: str, kind: str, n: int, trivial: str, trivial_name: str, baseline: str,
           overrides: dict | None = None, check: str | None = None, ours: str = "ours_psnr",
           metric: str = "PSNR (dB)") -> dict:
    """One check: ``bundle`` on its held-out input (``diffrecon simulate KIND -n N``: the first ``n`` test cases) with
    ``overrides`` (everything else is the bundle's default); ``ours``/``trivial``: keys of the case metrics in
    ``summary.json``; ``baseline``: a key of :data:`BASELINES`."""
    return {"check": check or bundle, "bundle": bundle, "simulate": {"kind": kind, "n": n},
            "overrides": overrides or {}, "ours_key": ours, "trivial_key": trivial, "metric": metric,
            "trivial_name": trivial_name, "baseline_key": baseline}


CHECKS: list[dict] = [
    _check("spect_cardiac_diffusion", "spect", 2, "osem_psnr_heart", "OSEM (4 it. x 8 subsets)", "spect_filter",
           {"dose_fraction": 0.05}, ours="ours_psnr_heart", metric="heart PSNR (dB)"),
    *(_check(b, "mri", 3, "zero_filled_psnr", "zero-filled", "mri")
      for b in ("mri_multicoil_msm", "mri_multicoil_selfdb", "mri_multicoil_unfolding")),
    _check("natural_blind_deblur", "natural", 2, "blurred_psnr", "blurred", "blind_rl"),
    _check("natural_unfolding_deblur", "natural", 3, "blurred_psnr", "blurred", "natural_tv"),
    *(_check("natural_reld", "natural", 2, "blurred_psnr", name, base, {"task": task}, check=f"natural_reld/{task}")
      for task, name, base in (("deblur", "blurred", "natural_tv"), ("denoise", "noisy", "natural_tv"),
                               ("sr", "bicubic x4", "natural_tv_sr"))),
    _check("satellite_cloud_removal", "satellite", 3, "cloudy_psnr", "cloudy", "sar_fill"),
]


# --- ours: the bundle as a user runs it ---------------------------------------------------------------------------

def run_check(check: dict, work: str | Path) -> dict:
    """Simulate the check's held-out cases into ``work/input`` and run its bundle on them (``work/output*``);
    returns ``{"rows": [{"case", "ours", "trivial"}], "seconds": bundle wall time, "simulate_seconds"}``.

    SPECT studies run one bundle call each: ``spect_datalist`` takes one study per call (a folder holding several
    simulated studies is refused with "found 2 NM files")."""
    from monai_diffrecon.bundles import run_bundle
    from monai_diffrecon.simulate import simulate

    work = Path(work)
    t0 = time.perf_counter()
    sim = check["simulate"]
    simulate(sim["kind"], work / "input", n=sim["n"], progress=False)
    t1 = time.perf_counter()
    inputs = sorted(p for p in (work / "input").iterdir() if p.is_dir()) if sim["kind"] == "spect" else [work / "input"]
    rows = []
    for j, inp in enumerate(inputs):
        out = work / f"output_{j}"
        run_bundle(check["bundle"], input_dir=str(inp), output_dir=str(out), progress=False, seed=0,
                   **check["overrides"])
        for case in json.loads((out / "summary.json").read_text())["cases"]:
            if case["status"] != "ok":
                raise RuntimeError(f"{check['check']}: case {case['case']} failed: {case}")
            m = case["metrics"]
            rows.append({"case": case["case"], "ours": float(m[check["ours_key"]]),
                         "trivial": float(m[check["trivial_key"]])})
    return {"rows": rows, "seconds": round(time.perf_counter() - t1, 1), "simulate_seconds": round(t1 - t0, 1)}


# --- the cases as the classical baselines see them (read through the bundle's own loading code) ---------------------

def bundle_parser(bundle: str, **overrides):
    """The bundle's ``inference.json`` parsed with ``overrides`` (nothing is run)."""
    from monai.bundle import ConfigParser

    from monai_diffrecon.bundles import bundle_path

    root = bundle_path(bundle)
    p = ConfigParser()
    p.read_meta(str(root / "configs" / "metadata.json"))
    p.read_config(str(root / "configs" / "inference.json"))
    p["bundle_root"] = str(root)
    for k, v in overrides.items():
        p[k.replace(".", "#")] = v
    return p


def spect_cases(folder: Path, check: dict) -> list[dict]:
    """Per study: the OSEM the bundle's sampler starts from (same counts: the workflow's view/dose selection) and the
    reference the workflow scores against."""
    from monai_diffrecon.recon.em import osem
    from monai_diffrecon.workflows.spect import spect_datalist

    studies = sorted(p for p in folder.iterdir() if p.is_dir())
    p = bundle_parser(check["bundle"], input_dir=str(studies[0]), **check["overrides"])
    load, ev = p.get_parsed_content("preprocessing"), p.get_parsed_content("evaluator")
    out = []
    for s in studies:
        item = load(spect_datalist(s)[0])
        scatter = item.get("scatter")
        counts, P, scatter = ev.select(item["projections"].as_tensor()[None], item["projector"],
                                       None if scatter is None else scatter.as_tensor()[None] if hasattr(scatter, "as_tensor") else scatter[None])
        sm = ev.sampler  # its warm start: OSEM with the scatter estimate as the additive term, as in the bundle
        osem_x = osem(P, counts, sm.init_iterations, max(1, min(sm.init_subsets, P.num_views)), additive=scatter)
        out.append({"case": s.name, "osem": osem_x, "truth": ev.reference(item)})
    return out


def mri_cases(folder: Path, check: dict) -> list[dict]:
    """Per k-space file: each slice's measurement in the networks' normalisation, its operator, the scale and the
    reference (the workflow's ``prepare`` and ``acs_scale``)."""
    from monai_diffrecon.modalities.mri import acs_scale
    from monai_diffrecon.physics import MultiCoilMRI

    p = bundle_parser(check["bundle"], input_dir=str(folder), **check["overrides"])
    ds, ev = p.get_parsed_content("dataset"), p.get_parsed_content("evaluator")
    out = []
    for i in range(len(ds)):
        item = ds[i]
        k, mask, maps, path = ev.prepare(item)
        slices = []
        for s in range(k.shape[0]):
            y = k[s:s + 1] * mask
            c = acs_scale(y, maps[s:s + 1], mask)
            slices.append({"y": y / c, "op": MultiCoilMRI(maps[s:s + 1], mask), "scale": c})
        out.append({"case": Path(path).stem, "slices": slices, "ref": item["kspace"].meta["reconstruction"]})
    return out


def natural_cases(folder: Path, check: dict) -> list[dict]:
    """Per case folder: the task's measurement in [0, 1], its operator (deblurring: the case's kernel), the truth."""
    from monai_diffrecon.physics import Blur, Downsample, Identity
    from monai_diffrecon.workflows.natural import MEASUREMENTS, natural_datalist, read_png

    task = check["overrides"].get("task", "deblur")
    out = []
    for item in natural_datalist(folder, task):
        case = Path(item["case"])
        if task == "deblur":
            k = torch.from_numpy(np.load(case / "kernel.npy").astype(np.float32))
            op = Blur(k / k.sum())
        else:
            factor = bundle_parser(check["bundle"]).get_parsed_content("sr_factor")
            op = Identity() if task == "denoise" else Downsample(factor)
        y, truth = read_png(case / MEASUREMENTS[task]), read_png(case / "truth.png")
        out.append({"case": case.name, "y": y, "op": op, "truth": truth})
    return out


def satellite_cases(folder: Path, check: dict) -> list[dict]:
    from monai_diffrecon.modalities.satellite import sen12ms_normalize
    from monai_diffrecon.workflows.satellite import read_raster, satellite_datalist

    out = []
    for item in satellite_datalist(folder):
        case = Path(item["case"])
        cloudy, sar = sen12ms_normalize(read_raster(case, "cloudy", 4), read_raster(case, "sar", 2))
        ref, _ = sen12ms_normalize(read_raster(case, "clear", 4), read_raster(case, "sar", 2))
        out.append({"case": case.name, "cloudy": cloudy, "sar": sar, "ref": ref})
    return out


CASES = {"spect": spect_cases, "mri": mri_cases, "natural": natural_cases, "satellite": satellite_cases}


# --- validation inputs (the registry's validation split, in the same formats) ------------------------------------

def write_validation(kind: str, folder: Path, n: int) -> Path:
    """``n`` validation cases of ``kind`` written to ``folder`` like ``diffrecon simulate`` writes test cases."""
    from monai_diffrecon.evaluation.splits import seed_base

    if kind in ("spect", "satellite"):  # the simulators draw everything from the seed
        from monai_diffrecon.simulate import simulate

        simulate(kind, folder, n=n, seed=seed_base(kind, "val"), progress=False)
    elif kind == "mri":  # validation axial blocks and seeds (as simulated_kspace_files writes the test ones)
        from monai_diffrecon.data.mri_sim import mni_mr_slices, write_mri_dataset

        seed = seed_base("mri", "val")
        imgs = mni_mr_slices("val", n, size=128, seed=seed)
        folder.mkdir(parents=True)
        # split="test" only selects the file layout with the reference image (reconstruction_rss) for scoring
        named = [(f"mni_{i:03d}", imgs[i]) for i in range(n)]
        for f in write_mri_dataset(folder, named, "test", acceleration=4.0, seed=seed):
            f.rename(f.with_name(f.name.replace("test_", "val_", 1)))
    else:
        _natural_validation(folder, n, seed_base("natural_kernels", "val"))
    return folder


def _natural_validation(folder: Path, n: int, seed: int, size: int = 128, sigma: float = 0.02,
                        denoise_sigma: float = 0.05) -> None:
    """Training photographs (the registry's natural validation split: other draws from the training images, never a
    test image), central square at ``size``², with the measurement model and noise levels of ``diffrecon simulate
    natural`` (camera-shake kernel of intensity 0.5 on 64², σ 0.02; noisy σ 0.05; 4× downsampling, σ 0.02)."""
    from monai_diffrecon.data.natural import SKIMAGE_TRAIN, load_skimage, motion_blur_kernel
    from monai_diffrecon.physics import Blur, Downsample
    from monai_diffrecon.workflows.natural import write_png

    for i in range(n):
        name = SKIMAGE_TRAIN[i]
        g = torch.Generator().manual_seed(seed + i)
        x = load_skimage(name)[None]
        side = min(x.shape[-2:])
        top, left = (x.shape[-2] - side) // 2, (x.shape[-1] - side) // 2
        x = x[..., top:top + side, left:left + side]
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="area").clamp(0, 1)
        k = motion_blur_kernel(64, 0.5, g)
        d = folder / f"val_{i:03d}_{name}"
        d.mkdir(parents=True)
        low = Downsample(4)(x)
        for file, img in (("blurred.png", Blur(k)(x) + sigma * torch.randn(x.shape, generator=g)),
                          ("noisy.png", x + denoise_sigma * torch.randn(x.shape, generator=g)),
                          ("lowres.png", low + sigma * torch.randn(low.shape, generator=g)), ("truth.png", x)):
            write_png(d / file, img[0, 0].numpy())
        np.save(d / "kernel.npy", k.numpy())


# --- the classical baselines: (grid, per-case score(params, case)) ------------------------------------------------

def _sibling(name: str):
    """A sibling benchmark script (the baselines the other benchmarks already compute live there)."""
    sys.path.insert(0, str(ROOT))
    return __import__(name)


def _psnr01(x: torch.Tensor, truth: torch.Tensor) -> float:
    """The natural workflow's PSNR: MONAI's ``PSNRMetric`` on [0, 1] images."""
    from monai.metrics import PSNRMetric

    return float(PSNRMetric(max_val=1.0)(x.reshape(truth.shape).float().clamp(0, 1), truth))


def spect_filter(p: dict, c: dict) -> float:
    from monai_diffrecon.metrics.spect import volume_metrics

    return volume_metrics(_sibling("spect").gaussian_filter3d(c["osem"], p["sigma"])[0, 0], c["truth"])["psnr_heart"]


def mri_tv(p: dict, c: dict) -> float:
    from monai_diffrecon.physics import ChannelsToComplex
    from monai_diffrecon.physics.functional.sense import channels_to_complex
    from monai_diffrecon.workflows.mri import magnitude_metrics

    tv_admm = _sibling("mri").tv_admm
    x = [channels_to_complex(tv_admm(s["op"] @ ChannelsToComplex(), s["y"], p["lam"]))[0, 0] * s["scale"]
         for s in c["slices"]]
    return magnitude_metrics(torch.stack(x), c["ref"])["psnr"]


def mri_cg(p: dict, c: dict) -> float:
    from monai_diffrecon.recon.cg import cg_sense
    from monai_diffrecon.workflows.mri import magnitude_metrics

    x = [cg_sense(s["op"], s["y"], 0.0, p["iterations"])[0, 0] * s["scale"] for s in c["slices"]]
    return magnitude_metrics(torch.stack(x), c["ref"])["psnr"]


def natural_tv(p: dict, c: dict) -> float:
    """Isotropic TV by ADMM (benchmarks/reld.py, 100 iterations) in the priors' signed range, with the true operator."""
    x = _sibling("reld").tv_admm(c["op"], 2 * c["y"] - 1, p["lam"])
    return _psnr01((x + 1) / 2, c["truth"])


def blind_rl(p: dict, c: dict, sigma_y: float = 0.02) -> float:
    """Richardson–Lucy with the Gaussian kernel σ̂ fitted to the blurred image's spectrum (benchmarks/natural.py)."""
    from monai_diffrecon.physics import gaussian_kernel

    nat = _sibling("natural")
    y = c["y"][0, 0].double()
    k = gaussian_kernel(nat.estimate_gaussian_sigma(y, sigma_y), 64, dtype=torch.float64)
    return _psnr01(nat.richardson_lucy(y, k, p["iterations"]), c["truth"])


def sar_fill(p: dict, c: dict) -> float:
    from monai_diffrecon.metrics.satellite import cloud_removal_metrics

    pred = sar_regression_fill(c["cloudy"], c["sar"], p["threshold"])
    return cloud_removal_metrics(pred[None], c["ref"][None])["psnr"]


def sar_regression_fill(cloudy: torch.Tensor, sar: torch.Tensor, threshold: float, smooth: float = 1.0) -> torch.Tensor:
    """A classical cloud fill: pixels whose blue reflectance (band 0) exceeds ``threshold`` are cloud; every band there
    is replaced by a quadratic least-squares fit on the SAR (VV, VH, Gaussian-smoothed by ``smooth`` px against the
    speckle) over the clear pixels. ``cloudy (4, H, W)``, ``sar (2, H, W)``, both normalised to [0, 1]."""
    from monai_diffrecon.physics import Blur, gaussian_kernel

    s = Blur(gaussian_kernel(smooth, 2 * math.ceil(3 * smooth) + 1))(sar[:, None].double())[:, 0]
    vv, vh = s[0].flatten(), s[1].flatten()
    feats = torch.stack([torch.ones_like(vv), vv, vh, vv * vv, vh * vh, vv * vh], 1)
    cloud = (cloudy[0] > threshold).flatten()
    if int((~cloud).sum()) < feats.shape[1] * 10 or not bool(cloud.any()):
        return cloudy.clone()
    bands = cloudy.reshape(4, -1).double().T
    coef = torch.linalg.lstsq(feats[~cloud], bands[~cloud]).solution
    out = bands.clone()
    out[cloud] = feats[cloud] @ coef
    return out.T.reshape(cloudy.shape).clamp(0, 1).float()


#: baseline key → (display name, grid, the per-case scorer); MRI: both grids, the stronger on validation is kept
BASELINES = {
    "spect_filter": [("OSEM + Gaussian filter", {"sigma": [0.0, 0.5, 1.0, 1.5, 2.0, 3.0]}, spect_filter)],
    "mri": [("TV (ADMM)", {"lam": [0.001, 0.002, 0.003, 0.005, 0.01, 0.03]}, mri_tv),
            ("SENSE-CG", {"iterations": [5, 10, 15, 20, 30, 40]}, mri_cg)],
    "natural_tv": [("TV (ADMM, true operator)", {"lam": [0.002, 0.005, 0.01, 0.02, 0.05, 0.1]}, natural_tv)],
    "natural_tv_sr": [("TV (ADMM, true operator)", {"lam": [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01]}, natural_tv)],
    "blind_rl": [("Richardson-Lucy, estimated Gaussian kernel", {"iterations": [1, 3, 5, 10, 20, 30]}, blind_rl)],
    "sar_fill": [("SAR-regression fill", {"threshold": [0.1, 0.13, 0.16, 0.2, 0.25, 0.3]}, sar_fill)],
}


def tune_and_score(check: dict, val: list[dict], test: list[dict]) -> dict:
    """Grid-search each candidate baseline of ``check`` on ``val``; the best on validation is scored on ``test``."""
    from monai_diffrecon.evaluation import grid_search

    cands = []
    for name, grid, fn in BASELINES[check["baseline_key"]]:
        tuned = grid_search(lambda prm, fn=fn: float(np.mean([fn(prm, c) for c in val])), grid, BUDGET)
        record = {"name": name, "params": tuned.params,
                  "validation": {"cases": [c["case"] for c in val], **tuned.as_dict()}}
        cands.append((record, fn))
    best, fn = max(cands, key=lambda c: c[0]["validation"]["score"])
    if len(cands) > 1:
        best["not_chosen"] = [c for c, _ in cands if c is not best]
    best["per_case"] = {c["case"]: float(fn(best["params"], c)) for c in test}
    return best


# --- the whole measurement -------------------------------------------------------------------------------------------

def measure(check: dict, tmp: Path, val_cache: dict, log) -> dict:
    from monai_diffrecon.evaluation import paired_difference

    kind = check["simulate"]["kind"]
    ours = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        ours[threads] = run_check(check, tmp / f"{check['check'].replace('/', '_')}_{threads}t")
        avg = np.mean([r["ours"] for r in ours[threads]["rows"]])
        log(f"{check['check']}: ours with {threads} thread(s) {avg:.3f} "
            f"in {ours[threads]['seconds']} s")
    torch.set_num_threads(1)
    if kind not in val_cache:
        val_cache[kind] = write_validation(kind, tmp / f"val_{kind}", N_VAL)
    work = tmp / f"{check['check'].replace('/', '_')}_2t" / "input"
    base = tune_and_score(check, CASES[kind](val_cache[kind], check), CASES[kind](work, check))
    log(f"{check['check']}: baseline {base['name']} {base['params']} (validation {base['validation']['score']:.2f})")
    rows = [{**r, "baseline": base["per_case"][r["case"]]} for r in ours[2]["rows"]]
    if len(rows) != len(base["per_case"]):
        raise RuntimeError(f"{check['check']}: the bundle and the baseline saw different cases")
    mean = {k: float(np.mean([r[k] for r in rows])) for k in ("ours", "trivial", "baseline")}
    spread = abs(float(np.mean([r["ours"] for r in ours[1]["rows"]])) - mean["ours"])
    tol = max(TOL_MIN, math.ceil(TOL_SPREAD * spread * 10) / 10)
    by = lambda k: {r["case"]: r[k] for r in rows}
    return {**check, "cases": [r["case"] for r in rows], "rows": rows, **mean,
            "baseline_name": base.pop("name"), "baseline_params": base.pop("params"), "baseline_tuning": base,
            "margin_trivial": mean["ours"] - mean["trivial"], "margin_baseline": mean["ours"] - mean["baseline"],
            "margin_trivial_ci": paired_difference(by("ours"), by("trivial")).as_dict(),
            "margin_baseline_ci": paired_difference(by("ours"), by("baseline")).as_dict(),
            "baseline_beats_trivial": mean["baseline"] > mean["trivial"],
            "ours_1_thread": float(np.mean([r["ours"] for r in ours[1]["rows"]])), "thread_spread": spread,
            "tolerance": tol, "seconds": ours[2]["seconds"], "seconds_1_thread": ours[1]["seconds"],
            "simulate_seconds": ours[2]["simulate_seconds"]}


def report(doc: dict) -> list[str]:
    """The Markdown page: the command, the rule, one table row per check, and what the numbers say."""
    info, checks = doc["run"], doc["checks"]
    intro = (f"Generated by `{info['command']}` on {info['date']} (torch {info['torch']}, commit "
             f"{str(info['commit'])[:12]}). Fixed held-out cases (the first test cases of `diffrecon simulate`), each "
             "bundle run through `run_bundle` with its shipped weights and settings except the listed overrides, "
             "seed 0; "
             f"the baseline's hyper-parameters chosen by `grid_search` on {N_VAL} validation cases ({BUDGET} settings "
             f"each). Tolerance = max({TOL_MIN}, {TOL_SPREAD:g} × |ours(1 thread) − ours(2 threads)|), rounded up to "
             "0.1 dB. `tests/test_quality_regression.py` re-runs each bundle and asserts ours − trivial ≥ margin − tol "
             "and ours − baseline ≥ margin − tol. Seconds: the bundle calls with 2 threads (simulation not included).")
    head = ("| check | overrides | cases | metric | ours | trivial | baseline (validation choice) | ours − trivial "
            "| ours − baseline | 1 vs 2 threads | tol | s |")
    lines = ["# Quality regression guard: shipped weights vs the trivial input and a tuned classical baseline", "",
             intro, "", head, "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in checks:
        ov = ", ".join(f"{k}={v}" for k, v in e["overrides"].items()) or "—"
        params = ", ".join(f"{k}={v}" for k, v in e["baseline_params"].items())
        cells = [e["check"], ov, len(e["cases"]), e["metric"], f"{e['ours']:.2f}",
                 f"{e['trivial']:.2f} ({e['trivial_name']})", f"{e['baseline']:.2f} ({e['baseline_name']}: {params})",
                 f"{e['margin_trivial']:+.2f}", f"{e['margin_baseline']:+.2f}", f"{e['thread_spread']:.3f}",
                 f"{e['tolerance']:.1f}", f"{e['seconds']:.1f}"]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    weak = [e["check"] for e in checks if e["margin_baseline"] < 0]
    below = [e["check"] for e in checks if e["margin_trivial"] < 0]
    broken = [f"{e['check']} ({e['baseline_name']} {e['baseline']:.2f} vs {e['trivial_name']} {e['trivial']:.2f})"
              for e in checks if not e["baseline_beats_trivial"]]
    edge = [f"{e['check']}: {e['baseline_tuning']['validation']['on_edge']}" for e in checks
            if e["baseline_tuning"]["validation"]["on_edge"]]
    total = sum(e["seconds"] for e in checks)
    lines += ["", f"- Below the trivial input today: {', '.join(below) or 'none'}.",
              f"- Below the classical baseline today (the test guards today's level): {', '.join(weak) or 'none'}.",
              f"- Baseline not above the trivial input on these cases: {', '.join(broken) or 'none'}.",
              f"- Validation choice on the edge of its grid: {'; '.join(edge) or 'none'}.",
              (f"- Total bundle time with 2 threads: {total:.0f} s. Per-case numbers, the margins' bootstrap "
               "intervals and every validation trial: `quality_regression.json`."), ""]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*", default=None, help="bundles or checks to re-measure (merged into the results)")
    ap.add_argument("--out", default=str(OUT))
    a = ap.parse_args()
    t0 = time.perf_counter()
    out = Path(a.out)

    def log(msg):
        print(f"[{time.perf_counter() - t0:6.0f} s] {msg}", flush=True)

    todo = [c for c in CHECKS if a.only is None or c["check"] in a.only or c["bundle"] in a.only]
    if not todo:
        ap.error(f"--only: none of {a.only} is a check or bundle ({', '.join(c['check'] for c in CHECKS)})")
    old = {e["check"]: e for e in json.loads(out.read_text())["checks"]} if out.is_file() and a.only else {}
    val_cache: dict = {}
    with tempfile.TemporaryDirectory(prefix="quality_regression_") as tmp:
        new = {c["check"]: measure(c, Path(tmp), val_cache, log) for c in todo}
    from monai_diffrecon.evaluation import run_info

    checks = [new.get(c["check"], old.get(c["check"])) for c in CHECKS]
    doc = {"run": run_info(t0), "date": datetime.date.today().isoformat(), "budget": BUDGET, "n_val": N_VAL,
           "tolerance_rule": {"min_db": TOL_MIN, "spread_factor": TOL_SPREAD}, "trivial_drift_db": TRIVIAL_DRIFT,
           "checks": [c for c in checks if c is not None]}
    out.write_text(json.dumps(doc, indent=1) + "\n")
    out.with_suffix(".md").write_text("\n".join(report(doc)))
    print("\n".join(report(doc)))


if __name__ == "__main__":
    main()
