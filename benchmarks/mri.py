"""Multi-coil MRI at R = 4, 6, 8 on held-out slices → benchmarks/results/mri.md (+ mri.png, mri.json).

Usage:
    .venv/bin/python benchmarks/mri.py --cohort-dir /tmp/mri_cohort [--n-test 16] [--n-val 4]
    # validation choices first (cached in mri.chosen.json), then two 1-thread processes, then the report:
    .venv/bin/python benchmarks/mri.py --cohort-dir D --tune-only
    for k in 0 1; do .venv/bin/python benchmarks/mri.py --cohort-dir D --threads 1 --shard $k/2 & done; wait
    .venv/bin/python benchmarks/mri.py --cohort-dir D --merge 2
    # the same methods and validation choices on the real MR slices that ship in wheels → results/mri_real.md:
    .venv/bin/python benchmarks/mri.py --cohort-dir D --real

Data (``monai_diffrecon.training.mri_cohort``): MNI152-based slices at 128², 8 birdcage coils, random Cartesian lines
with 20 ACS lines, complex noise σ = 0.01, ESPIRiT maps from the ACS block, data-only intensity normalisation.
Test slices come from axial blocks disjoint from training (seeds 60 000+), validation slices (for the classical
methods' parameters and DPS's step) from their own blocks (50 000+). R = 6 and 8 re-undersample the same fully
sampled k-space with new masks (12 and 10 ACS lines; 20 ACS lines alone are R = 6.4 at 128 columns); every model was
trained at R = 4 only.

Methods: zero-filled; SENSE-CG (iterations chosen on validation); TV (ADMM with the closed-form TV prox on the
real/imaginary channels, λ chosen on validation); DPS and DDNM with the *oracle* prior trained on clean images
(``benchmarks/weights/mri_clean_prior``); MSM (``bundles/mri_multicoil_msm``); SelfDB (``bundles/mri_multicoil_selfdb``)
with 1 and several bridge steps. PSNR / SSIM of the magnitude (peak = max of the reference), NFE, wall time per
slice on this CPU (2 threads).

``--real``: the held-out *real* MR slices (:func:`monai_diffrecon.data.mri_sim.real_mr_slices`: pydicom's
``MR_small.dcm`` and dipy's T1 coronal slice and ten b0 slices, resampled to 128², a smooth synthetic phase) through
the same acquisition simulation (8 birdcage coils, σ = 0.01, seeds 70 000+) — anatomy, contrasts and scanners the
models never saw (the b0 slices are T2-weighted EPI). Methods and settings as for the simulated test set.
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path

import numpy as np
import torch

from monai_diffrecon.data.mri_sim import acs_scale, real_mr_slices
from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.diffusion import DiffusionPrior, make_scheduler
from monai_diffrecon.networks import diffusion_unet, load_verified
from monai_diffrecon.physics import ChannelsToComplex, MultiCoilMRI, estimate_coil_maps, random_lines_mask
from monai_diffrecon.physics.functional.sense import channels_to_complex, complex_randn, sense_combine
from monai_diffrecon.recon.cg import cg_sense
from monai_diffrecon.regularizers import tv_prox
from monai_diffrecon.samplers import DDNM, DPS, MSMSampler, SelfDBSampler
from monai_diffrecon.training.mri_cohort import cached_mri_cohort, mri_acquisition
from monai_diffrecon.workflows.mri import magnitude_metrics

from _shards import sharded_command  # noqa: E402 (sibling script module)

ROOT = Path(__file__).resolve().parent
BUNDLES = ROOT.parent / "bundles"
ORACLE = ROOT / "weights" / "mri_clean_prior"
SIGMA = 0.01
#: ACS lines per acceleration at 128 columns: 20 (the training masks) at R = 4; at R = 6 and 8 twenty ACS lines alone
#: would already be R = 6.4 (fastMRI shrinks the centre fraction with R too: 8 % at R = 4, 4 % at R = 8)
ACS_LINES = {4: 20, 6: 12, 8: 10}


def acquisitions(cohort: dict, R: float, seed: int) -> list[dict]:
    """Per slice: k-space undersampled at R (R = 4 uses the cohort's own acquisition), maps, operator, truth."""
    out = []
    for i in range(cohort["kspace"].shape[0]):
        if R == 4:
            y, mask, maps = cohort["kspace"][i:i + 1], cohort["mask"][i:i + 1], cohort["maps"][i:i + 1]
        else:
            g = torch.Generator().manual_seed(seed + i)
            acs = ACS_LINES[R]
            mask = random_lines_mask(cohort["kspace"].shape[-1], R, acs, generator=g)
            full = cohort["kspace_full"][i:i + 1]
            y = mask * (full + SIGMA / float(cohort["scale"][i]) * complex_randn(full.shape, g))  # σ in the original units
            try:
                maps = estimate_coil_maps(y, calib_size=acs).to(torch.complex64)
            except InvalidValueError as e:  # no usable maps from this ACS block: the slice is reported as a failure
                out.append({"error": str(e)})
                continue
        c = acs_scale(y, maps, mask)
        out.append({"y": y / c, "mask": mask, "maps": maps, "truth": cohort["truth"][i] / c, "op": MultiCoilMRI(maps, mask)})
    return out


def real_cohort(size: int = 128) -> dict:
    """The real MR slices as a test cohort (same keys as ``cached_mri_cohort(..., "test")``, plus ``names``)."""
    slices = real_mr_slices(size)
    acqs = [mri_acquisition(img, 70_000 + i) for i, (_, img) in enumerate(slices)]
    data = {k: torch.stack([torch.as_tensor(a[k]) for a in acqs]) for k in ("kspace", "mask", "maps", "kspace_full", "truth", "scale")}
    data["names"] = [n for n, _ in slices]
    return data


def tv_admm(A2, y, lam: float, iters: int = 30, gamma: float = 1.0) -> torch.Tensor:
    x = A2.adjoint(y)
    z, u = x.clone(), torch.zeros_like(x)
    for _ in range(iters):
        x = A2.prox_l2(z - u, y, gamma, max_iter=10)
        z = tv_prox(x + u, lam * gamma, dims=(2, 3), isotropic=True)
        u = u + x - z
    return z


def load(name: str, channels_in: int = 2):
    meta = json.loads((BUNDLES / name / "configs" / "metadata.json").read_text())
    net = load_verified(diffusion_unet(2, channels_in, size="small"), BUNDLES / name / "models" / "model.pt", meta["model_sha256"])
    return net.requires_grad_(False)


def methods(priors: dict, chosen: dict) -> dict:
    """name → (callable(acq, generator) → complex image (H, W), NFE)."""
    A2 = lambda a: a["op"] @ ChannelsToComplex()  # noqa: E731
    m = {
        "zero-filled": (lambda a, g: sense_combine(a["y"], a["maps"])[0, 0], 0),
        "SENSE-CG": (lambda a, g: cg_sense(a["op"], a["y"], 0.0, chosen["cg_iters"])[0, 0], 0),
        "TV (ADMM, closed-form prox)": (lambda a, g: channels_to_complex(tv_admm(A2(a), a["y"], chosen["tv_lam"]))[0, 0], 0),
    }
    if "oracle" in priors:
        p = priors["oracle"]
        m["DPS (clean-trained prior)"] = (lambda a, g: channels_to_complex(DPS(p, 100, zeta=chosen["dps_zeta"])(a["y"], A2(a), generator=g, progress=False).mean)[0, 0], 100)
        m["DDNM+ (clean-trained prior)"] = (lambda a, g: channels_to_complex(DDNM(p, 100, sigma_y=SIGMA)(a["y"], A2(a), generator=g, progress=False).mean)[0, 0], 100)
    if "msm" in priors:
        smp = msm(priors["msm"], chosen["msm_t_start"])
        m["MSM (self-supervised)"] = (lambda a, g: smp(a["y"], a["op"], generator=g, progress=False).mean[0, 0], smp.num_steps * smp.loops)
    if "selfdb" in priors:
        m["SelfDB (self-supervised), 1 step"] = (
            lambda a, g: SelfDBSampler(priors["selfdb"], 1)(a["y"], a["op"], generator=g, progress=False).mean[0, 0], 1)
        k, sup = chosen["selfdb_steps"], chosen["selfdb_support"]
        m[f"SelfDB (self-supervised), {k} steps, {sup} support"] = (
            lambda a, g: SelfDBSampler(priors["selfdb"], k, support=sup)(a["y"], a["op"], generator=g, progress=False).mean[0, 0], k)
    return m


MSM_STEPS, MSM_LOOPS = 50, 3
MSM_T_STARTS = (None, 300, 150, 75, 40, 20, 10)


def msm(prior, t_start):
    """The bundle's MSM sampler (50 DDIM steps × 3 loops over the full schedule; with a warm start, the same step
    density from ``t_start``: a SENSE-CG start diffused to t_start)."""
    steps = MSM_STEPS if t_start is None else max(2, round(MSM_STEPS * t_start / 1000))
    return MSMSampler(prior, steps, MSM_LOOPS, t_start=t_start)


def tune(val: list[dict], priors: dict, log) -> dict:
    def score(fn, grad: bool = False):
        with torch.enable_grad() if grad else torch.no_grad():
            return float(np.mean([magnitude_metrics(fn(a).detach()[None], a["truth"][None])["psnr"] for a in val]))

    chosen = {}
    chosen["cg_iters"] = max((5, 10, 20, 40), key=lambda k: score(lambda a: cg_sense(a["op"], a["y"], 0.0, k)[0, 0]))
    chosen["tv_lam"] = max((1e-3, 3e-3, 1e-2, 3e-2), key=lambda lam: score(lambda a: channels_to_complex(tv_admm(a["op"] @ ChannelsToComplex(), a["y"], lam))[0, 0]))
    log(f"classical: {chosen}")
    if "oracle" in priors:
        chosen["dps_zeta"] = max((0.3, 1.0, 3.0), key=lambda z: score(lambda a: channels_to_complex(DPS(priors["oracle"], 100, zeta=z)(
            a["y"], a["op"] @ ChannelsToComplex(), generator=torch.Generator().manual_seed(0), progress=False).mean)[0, 0], grad=True))
        log(f"DPS zeta {chosen['dps_zeta']}")
    if "selfdb" in priors:
        grid = [(k, sup) for k in (2, 4, 8, 16) for sup in ("acquired", "full")]
        sc = {f"{k}/{sup}": score(lambda a, k=k, sup=sup: SelfDBSampler(priors["selfdb"], k, support=sup)(
            a["y"], a["op"], generator=torch.Generator().manual_seed(0), progress=False).mean[0, 0]) for k, sup in grid}
        best = max(sc, key=sc.get)
        chosen["selfdb_steps"], chosen["selfdb_support"] = int(best.split("/")[0]), best.split("/")[1]
        chosen["selfdb_val_psnr"] = {k: round(v, 2) for k, v in sc.items()}
        log(f"SelfDB {best} ({chosen['selfdb_val_psnr']})")
    if "msm" in priors:
        scores = {ts: score(lambda a, ts=ts: msm(priors["msm"], ts)(a["y"], a["op"], generator=torch.Generator().manual_seed(0), progress=False).mean[0, 0])
                  for ts in MSM_T_STARTS}
        chosen["msm_t_start"] = max(scores, key=scores.get)
        chosen["msm_val_psnr"] = {str(k): round(v, 2) for k, v in scores.items()}
        log(f"MSM t_start {chosen['msm_t_start']} ({chosen['msm_val_psnr']})")
    return chosen


def load_priors() -> dict:
    priors = {}
    if (ORACLE / "model.pt").is_file():
        net = load_verified(diffusion_unet(2, 2, size="small"), ORACLE / "model.pt", (ORACLE / "model.sha256").read_text().split()[0])
        priors["oracle"] = DiffusionPrior(net.requires_grad_(False), make_scheduler())
    if (BUNDLES / "mri_multicoil_msm" / "models" / "model.pt").is_file():
        priors["msm"] = DiffusionPrior(load("mri_multicoil_msm"), make_scheduler())
    if (BUNDLES / "mri_multicoil_selfdb" / "models" / "model.pt").is_file():
        priors["selfdb"] = load("mri_multicoil_selfdb")
    return priors


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cohort-dir", required=True)
    ap.add_argument("--n-test", type=int, default=16)
    ap.add_argument("--n-val", type=int, default=4)
    ap.add_argument("--out", default=None, help="report path (default results/mri.md, or mri_real.md with --real)")
    ap.add_argument("--real", action="store_true", help="score the real MR slices shipped in wheels instead of the MNI152 test set")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--shard", default=None, help="k/n: run only test slices i with i %% n == k (rows → OUT.shard<k>.json)")
    ap.add_argument("--merge", type=int, default=None, help="n: merge the n shard files into the report")
    ap.add_argument("--limit", type=int, default=None, help="smoke run: only the first N test slices (not for the table)")
    ap.add_argument("--skip", nargs="*", default=[], choices=("oracle", "msm", "selfdb"), help="smoke run: leave these priors out")
    ap.add_argument("--report-only", action="store_true", help="rewrite the report from OUT.json (an unsharded run's rows)")
    ap.add_argument("--tune-only", action="store_true", help="choose the validation settings (→ OUT.chosen.json) and stop")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    a.out = a.out or str(ROOT / "results" / ("mri_real.md" if a.real else "mri.md"))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def log(msg):
        print(f"[{time.perf_counter() - t0:7.0f} s] {msg}", flush=True)

    if a.report_only:
        d = json.loads(out.with_suffix(".json").read_text())
        report(d["rows"], d["chosen"], a, d["seconds"], d["threads"], 0, d.get("failures", []))
        return
    if a.merge:
        parts = [json.loads(out.with_suffix(f".shard{k}.json").read_text()) for k in range(a.merge)]
        rows = [r for p in parts for r in p["rows"]]
        failures = [f for p in parts for f in p.get("failures", [])]
        report(rows, parts[0]["chosen"], a, sum(p["seconds"] for p in parts), parts[0]["threads"], a.merge, failures)
        ex = out.with_suffix(".example.pt")
        if ex.is_file():
            figure(torch.load(ex, weights_only=True), out.with_suffix(".png"), _title(a))
        out.with_suffix(".json").write_text(json.dumps({"chosen": parts[0]["chosen"], "rows": rows, "failures": failures,
                                                        "threads": parts[0]["threads"], "seconds": sum(p["seconds"] for p in parts)}, indent=1))
        return
    test = real_cohort() if a.real else cached_mri_cohort(Path(a.cohort_dir) / f"mri_test_{a.n_test}.pt", a.n_test, "test")
    val = cached_mri_cohort(Path(a.cohort_dir) / f"mri_val_{a.n_val}.pt", a.n_val, "val")
    names = test.get("names", [f"test_{i}" for i in range(test["kspace"].shape[0])])
    n_test = a.limit or test["kspace"].shape[0]
    all_priors = load_priors()
    priors = {k: v for k, v in all_priors.items() if k not in a.skip}
    shas = {k: _sha(k) for k in all_priors}  # the cache key: every shipped prior, so --skip reuses the full choices
    chosen_file = ROOT / "results" / "mri.chosen.json" if a.real else out.with_suffix(".chosen.json")
    key = {"n_val": a.n_val, "weights": shas, "msm_t_starts": [str(t) for t in MSM_T_STARTS], "selfdb_grid": "steps 2/4/8/16 x support"}
    cached = json.loads(chosen_file.read_text()) if chosen_file.is_file() else None
    if cached is not None and cached.get("key") == key:
        chosen = cached["chosen"]
    elif a.real:  # the real slices are scored with the simulated validation set's choices, never tuned on
        raise SystemExit(f"{chosen_file}: no validation choices for these weights; run --tune-only first")
    else:
        chosen = tune(acquisitions(val, 4, 55_000), priors, log)
        if not a.skip:  # a partial (smoke) run never overwrites the full choices
            chosen_file.write_text(json.dumps({"key": key, "chosen": chosen}, indent=1))
    log(f"chosen {chosen}")
    if a.tune_only:
        return
    k, n = (int(v) for v in a.shard.split("/")) if a.shard else (0, 1)
    rows, example, failures = [], {}, []
    for R in (4, 6, 8):
        acqs = acquisitions(test, R, 65_000 + int(R) * 1000)
        for i in range(k, n_test, n):
            if "error" in acqs[i]:
                failures.append({"R": R, "slice": i, "name": names[i], "error": acqs[i]["error"]})
                log(f"R={R} slice {names[i]}: {acqs[i]['error']}")
        for name, (fn, nfe) in methods(priors, chosen).items():
            for i in range(k, n_test, n):
                acq = acqs[i]
                if "error" in acq:
                    continue
                t = time.perf_counter()
                with torch.no_grad() if "DPS" not in name else torch.enable_grad():
                    x = fn(acq, torch.Generator().manual_seed(i))
                m = magnitude_metrics(x.detach()[None], acq["truth"][None])
                rows.append({"R": R, "slice": i, "name": names[i], "method": name, "psnr": m["psnr"], "ssim": m["ssim"], "nfe": nfe,
                             "seconds": time.perf_counter() - t})
                if i == (1 if a.real and n_test > 1 else 0):  # the real set's slice 0 is the 64² MR_small
                    example[f"{R}|{name}"] = (x.detach().abs(), acq["truth"].abs())
            mine = [r for r in rows if r["R"] == R and r["method"] == name]
            log(f"R={R} {name}: {np.mean([r['psnr'] for r in mine]):.2f} dB / {np.mean([r['ssim'] for r in mine]):.3f} "
                f"({np.mean([r['seconds'] for r in mine]):.1f} s)")
        payload = {"chosen": chosen, "rows": rows, "failures": failures, "threads": a.threads, "seconds": time.perf_counter() - t0}
        if a.shard:
            out.with_suffix(f".shard{k}.json").write_text(json.dumps(payload, indent=1))
            if example:
                torch.save(example, out.with_suffix(".example.pt"))
        else:
            out.with_suffix(".json").write_text(json.dumps(payload, indent=1))
    if not a.shard:
        report(rows, chosen, a, time.perf_counter() - t0, a.threads, 0, failures)
        figure(example, out.with_suffix(".png"), _title(a))


def _sha(name: str) -> str:
    if name == "oracle":
        return (ORACLE / "model.sha256").read_text().split()[0]
    return json.loads((BUNDLES / f"mri_multicoil_{name}" / "configs" / "metadata.json").read_text())["model_sha256"]


def _command(a, shards: int) -> str:
    base = f".venv/bin/python benchmarks/mri.py --cohort-dir <dir> --n-test {a.n_test} --n-val {a.n_val}"
    return sharded_command(base + (" --real" if a.real else ""), shards)


def report(rows, chosen, a, seconds, threads: int, shards: int, failures: list | None = None) -> None:
    agg = {}
    for r in rows:
        agg.setdefault((r["R"], r["method"]), []).append(r)
    lines = ["# Multi-coil MRI: self-supervised priors (MSM, SelfDB) vs classical and clean-trained diffusion", "",
             f"Generated by `{_command(a, shards)}` on {datetime.date.today()} (torch {torch.__version__}, {threads} CPU thread(s) per "
             f"process{f', {shards} processes' if shards else ''}; {seconds / 60:.0f} CPU-process minutes). "
             + (f"{len({r['name'] for r in rows})} held-out **real** MR slices from installed wheels (pydicom `MR_small.dcm`; dipy's T1 "
                "coronal slice and ten b0 EPI slices of one subject), resampled to 128², a smooth synthetic phase, the same 8-coil "
                "simulation (σ = 0.01); none was seen in training (the models learned from MNI152-based slices at R = 4 only)"
                if a.real else f"{a.n_test} held-out MNI152-based slices (128², 8 coils, σ = 0.01), all models trained at R = 4 only")
             + ". PSNR/SSIM of the magnitude, mean ± sd over slices; time per slice.", "",
             "| R | method | PSNR (dB) | SSIM | NFE | time (s) |", "|---|---|---|---|---|---|"]
    get = {}
    for (R, name), rs in agg.items():
        ps, ss = np.array([r["psnr"] for r in rs]), np.array([r["ssim"] for r in rs])
        get[(R, name)] = float(ps.mean())
        nfe = rs[0]["nfe"]
        lines.append(f"| {R} | {name} | {ps.mean():.2f} ± {ps.std(ddof=1) if ps.size > 1 else 0:.2f} | {ss.mean():.3f} ± "
                     f"{ss.std(ddof=1) if ss.size > 1 else 0:.3f} | {nfe} | {np.mean([r['seconds'] for r in rs]):.1f} |")
    if failures:
        lines.append(f"| | *means at an R with a failed slice are over the remaining {len({r['name'] for r in rows})} − "
                     f"{len(failures)} slices there* | | | | |")
    for f in failures or []:
        lines.append(f"| {f['R']} | *{f['name']}: no reconstruction* — {f['error'][:200]} | | | | |")
    lines += ["", f"Chosen on {a.n_val} validation slices at R = 4: {chosen}.", ""]
    sources = sorted({r.get("name", "").rsplit("_z", 1)[0] for r in rows})
    if a.real and len(sources) > 1:
        lines += ["### R = 4 per source (PSNR dB)", "", "| method | " + " | ".join(sources) + " |", "|---|" + "---|" * len(sources)]
        for name in dict.fromkeys(r["method"] for r in rows):
            cells = [np.mean([r["psnr"] for r in rows if r["R"] == 4 and r["method"] == name and r["name"].rsplit("_z", 1)[0] == src])
                     for src in sources]
            lines.append(f"| {name} | " + " | ".join(f"{c:.2f}" for c in cells) + " |")
        lines.append("")
    lines += ["## Targets", ""]
    if a.real:
        lines += ["The issue's targets are set for the simulated test set (`mri.md`); on these real slices the same checks are "
                  "reported, not targeted. Most of each real slice is empty background (≈ 75 % of the dipy slices), which "
                  "TV's piecewise-constant model fits and which inflates every PSNR, including zero-filled.", ""]
    for ss in ["MSM (self-supervised)"] + sorted({n for (_, n) in get if n.startswith("SelfDB")}):
        if (4, ss) in get:
            beat = all(get[(4, ss)] > get[(4, b)] for b in ("SENSE-CG", "TV (ADMM, closed-form prox)"))
            lines.append(f"* R = 4: {ss} {get[(4, ss)]:.2f} dB vs SENSE-CG {get[(4, 'SENSE-CG')]:.2f}, "
                         f"TV {get[(4, 'TV (ADMM, closed-form prox)')]:.2f} — {'beats both' if beat else 'DOES NOT beat both'}")
    if (4, "MSM (self-supervised)") in get and (4, "DPS (clean-trained prior)") in get:
        gap = get[(4, "DPS (clean-trained prior)")] - get[(4, "MSM (self-supervised)")]
        lines.append(f"* MSM within 1 dB of clean-trained DPS at R = 4: gap {gap:+.2f} dB — {'met' if gap <= 1 else 'MISSED'} (paper: 0.6 dB)")
        lines += ["", "**Read the DPS/DDNM rows with care.** They start from noise, and the oracle prior (same network and "
                  "training budget as MSM) is poor at high noise levels: its x̂₀ error is 4× the image norm at t = 800 even on "
                  "its own training images (`benchmarks/mri_diagnostics.py --oracle benchmarks/weights/mri_clean_prior/model.pt`), "
                  "so DPS (100 steps) and DDNM+ do not give the upper bound the paper's comparison assumes — MSM is *above* "
                  "DPS here. MSM's margin comes from its validation-chosen warm start (SENSE-CG diffused to t = 20); from noise "
                  f"(t_start = None) it scores {chosen.get('msm_val_psnr', {}).get('None', float('nan'))} dB on the validation "
                  "slices. A fair 'MSM vs clean prior' gap needs an oracle trained to convergence (a longer GPU run).",
                  "* R = 8 (10 ACS lines): SENSE-CG diverges from the poor ESPIRiT maps "
                  f"({np.mean([r['psnr'] for r in rows if r['R'] == 8 and r['method'] == 'SENSE-CG'] or [float('nan')]):.2f} dB) and every method that uses "
                  "those maps suffers; SelfDB 1 step is best. The models were trained at R = 4 with 20 ACS lines only." if any(r["R"] == 8 for r in rows) else ""]
    lines += ["", f"Example ({'dipy T1 coronal slice' if a.real else 'first test slice'}): `{Path(a.out).with_suffix('.png').name}`; per-slice rows in `{Path(a.out).with_suffix('.json').name}`.", ""]
    Path(a.out).write_text("\n".join(lines))
    print("\n".join(lines))


def _title(a) -> str:
    return "Real MR slice: dipy T1 coronal (magnitude)" if a.real else "Held-out slice 0 (magnitude)"


def figure(example: dict, path: Path, title: str = "Held-out slice 0 (magnitude)") -> None:
    from monai_diffrecon.data.preview import save_panels

    panels = []
    names = list(dict.fromkeys(key.split("|", 1)[1] for key in example))
    for R in (4, 8):
        truth = next((t for key, (_, t) in example.items() if key.startswith(f"{R}|")), None)
        if truth is None:
            continue
        vmax = float(truth.max())
        panels.append((f"R={R}: reference", (truth / vmax).clamp(0, 1).numpy(), "gray"))
        for n in names:
            if f"{R}|{n}" in example:
                panels.append((f"R={R}: {n}", (example[f"{R}|{n}"][0] / vmax).clamp(0, 1).numpy(), "gray"))
    save_panels(panels, path, ncols=len(names) + 1, title=title)


if __name__ == "__main__":
    main()
