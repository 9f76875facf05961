"""Diff-Unfolding on natural-image deblurring, at kernels of the training family and at unseen kernels →
benchmarks/results/unfolding.md (+ unfolding.json, unfolding.png).

Usage:
    .venv/bin/python benchmarks/unfolding.py                  # the shipped weights (bundles/natural_unfolding_deblur, natural_blind_deblur)
    .venv/bin/python benchmarks/unfolding.py --limit 1        # smoke run
    .venv/bin/python benchmarks/unfolding.py --mri --cohort-dir D [--n-test 8]   # multi-coil MRI → results/unfolding_mri.md

Data: the scikit-image test photographs (camera, moon, coins, cell: never read in training), central square
area-resampled to 128², in [−1, 1]; circular blur + Gaussian noise σ = 0.02 on the [0, 1] scale (0.04 signed), one
noise draw per image and kernel, shared by all methods. Kernels:
* **training family, new draws** — camera shake on a 32² support (intensities 0.3 and 0.6, seeds 130 011/130 012; the
  training bank used seeds 110 000+), an anisotropic Gaussian σ = (2.0, 1.2) px;
* **unseen** — a longer camera shake on a 64² support (intensity 0.5, trajectory ≈ 24 px; the training trajectories
  are at most 0.75·32·0.8 ≈ 19 px), a defocus disk of radius 4 px, a straight 15 px motion line at 30°: families
  the network never saw.

Methods (the true kernel is given to all — non-blind):
* **Diff-Unfolding** (``bundles/natural_unfolding_deblur``: K = 3 unrolled steps, shared ``tiny`` prior block, FFT data
  step) with 10 DDIM steps (η = 0) and with 1 step from t = T (then x_t carries no information and the network is an
  end-to-end unrolled regressor: the "unrolled network without diffusion" reading of the same weights);
* **DiffPIR** and **DPS** in pixel space with the unconditional image prior of ``bundles/natural_blind_deblur``
  (``small`` UNet, trained on the same patches) at 10 NFE, and DiffPIR at 100 NFE (λ, ζ: benchmarks/reld.py's choices
  for deblurring at 20 and 100 steps, reld_tune.json; DPS ζ = 1, η = 1, x̂₀ clipped to [−1, 1], untuned — DPS is
  made for hundreds of steps);
* **PnP-DM** (same prior; 10 Gibbs iterations, ρ 0.5 → 0.08: at these low coupling levels each prior step is a
  single network call, so 10 NFE);
* **Wiener** (noise-to-signal ratio σ²/var(y), as benchmarks/natural.py) and **TV** (ADMM, 100 iterations, λ as chosen for deblurring by
  benchmarks/reld.py's tuning on a training photograph, reld_tune.json).
PSNR / SSIM on [0, 1]; seconds per 128² image on this CPU (same process, same threads); parameters.
LPIPS: not computed — the common packages fetch their weights at run time (no network here).

``--mri`` (→ unfolding_mri.md/json/png): held-out MNI152-based test slices of ``training.mri_cohort`` (seeds 60 000+,
axial blocks disjoint from training; 128², 8 birdcage coils, complex noise σ = 0.01 on the acquired samples), the
fully sampled k-space re-undersampled by each acquisition below with its own noise draw. Coil maps: the slice's
ESPIRiT maps from its 20-line R = 4 calibration (the cohort's), for *every* acquisition — a separate calibration, as a
reference scan gives, so the unseen-operator column measures the reconstruction, not ESPIRiT failing on 10 ACS lines
(benchmarks/mri.py's R = 8 rows); intensities keep that calibration's data-only normalisation, so σ_y ≈ 0.01 for all.
Acquisitions:
* **seen** (the training sampler's families): random lines R = 4 (20 ACS) and R = 6 (12 ACS); ``equispaced_mask``
  R = 4 (20 ACS) and R = 6 (12 ACS) with a random offset — the library's equispaced mask adds the ACS block without
  widening the spacing, so these sample 1/2.7 and 1/4.1 of the lines (the table prints the true acceleration);
* **unseen**: equispaced R = 8 with fastMRI's spacing rule (``equispaced_mask(..., match_acceleration=True)``: the
  spacing widened so that lines + 10 ACS = W/8 — sparser than anything in training), and a 2D variable-density Poisson-disc mask, R = 8, 16 × 16 calibration
  (a 2D pattern; training saw only 1D line masks).
Methods: Diff-Unfolding (``bundles/mri_multicoil_unfolding``, the bundle's settings) at 10 NFE and as the 1-step
regressor; DiffPIR, DPS and PnP-DM at 10 NFE with the unconditional clean-image prior of benchmarks/mri.py
(``benchmarks/weights/mri_clean_prior``, ``small`` UNet, the same clean slices; x̂₀ clipped to [−2, 2] for DiffPIR
and DPS; settings chosen on validation slices at R = 4 random, ``--n-val``, grids in ``MRI_GRIDS``); zero-filled, SENSE-CG and TV (iterations / λ from
benchmarks/results/mri.chosen.json, chosen on validation by benchmarks/mri.py). PSNR / SSIM of the magnitude
(peak = max of the reference).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from monai_diffrecon.data.natural import motion_blur_kernel
from monai_diffrecon.diffusion import make_scheduler
from monai_diffrecon.networks import diffusion_unet, load_verified, unfolded_denoiser
from monai_diffrecon.physics import Blur, ChannelsToComplex, MultiCoilMRI, equispaced_mask, gaussian_kernel, poisson_disc_mask, random_lines_mask
from monai_diffrecon.samplers import DPS, DiffPIR, PnPDM
from monai_diffrecon.samplers.unfolding import DiffUnfolding

from natural import metrics, test_images, wiener  # noqa: E402 (sibling script modules)
from reld import load_pixel_prior, tv_admm  # noqa: E402

ROOT = Path(__file__).resolve().parent
BUNDLES = ROOT.parent / "bundles"
SIGMA = 0.02


def disk(radius: float, size: int = 32) -> torch.Tensor:
    c = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    k = ((c[:, None] ** 2 + c[None, :] ** 2) <= radius**2).double()
    return k / k.sum()


def line(length: int, angle_deg: float, size: int = 32) -> torch.Tensor:
    k = torch.zeros(size, size, dtype=torch.float64)
    a = math.radians(angle_deg)
    for s in np.linspace(-(length - 1) / 2, (length - 1) / 2, 4 * length):
        k[int(round((size - 1) / 2 - s * math.sin(a))), int(round((size - 1) / 2 + s * math.cos(a)))] = 1.0
    return k / k.sum()


def kernels() -> dict[str, tuple[torch.Tensor, bool]]:
    """name → (kernel, seen family)."""
    return {"shake-0.3 (32²)": (motion_blur_kernel(32, 0.3, torch.Generator().manual_seed(130_011)).double(), True),
            "shake-0.6 (32²)": (motion_blur_kernel(32, 0.6, torch.Generator().manual_seed(130_012)).double(), True),
            "gauss-2.0x1.2": (gaussian_kernel((2.0, 1.2), 32, dtype=torch.float64), True),
            "shake-0.5 (64², longer)": (motion_blur_kernel(64, 0.5, torch.Generator().manual_seed(130_002)).double(), False),
            "disk r=4": (disk(4.0), False),
            "line 15 px @30°": (line(15, 30.0), False)}


def load_unfolding():
    b = BUNDLES / "natural_unfolding_deblur"
    meta = json.loads((b / "configs" / "metadata.json").read_text())
    cfg = json.loads((b / "configs" / "inference.json").read_text())
    net = unfolded_denoiser(make_scheduler().alphas_cumprod, 1, 2, cfg["num_unroll"], size=cfg["network_def"]["size"], sigma_y=cfg["sigma_y"])
    return load_verified(net, b / "models" / "model.pt", meta["model_sha256"])


def tuned() -> dict:
    """benchmarks/reld.py's choices for deblurring on its tuning photograph (a training image, never a test image)."""
    f = ROOT / "results" / "reld_tune.json"
    d = json.loads(f.read_text())["deblur"] if f.is_file() else {}
    get = lambda m, default: d[m]["best"] if m in d else default  # noqa: E731
    return {"TV": get("TV", {"lam": 0.01}), "DiffPIR-20": get("DiffPIR-20", {"lam": 1.0, "zeta": 0.7}),
            "DiffPIR-100": get("DiffPIR-100", {"lam": 1.0, "zeta": 0.7})}


def methods(unf, prior) -> dict:
    sy, c = 2 * SIGMA, tuned()
    smp = {
        "Diff-Unfolding (10 NFE)": DiffUnfolding(unf, num_steps=10),
        "unrolled regressor (same weights, 1 NFE)": DiffUnfolding(unf, num_steps=1),
        "DiffPIR (10 NFE)": DiffPIR(prior, 10, lam=c["DiffPIR-20"]["lam"], zeta=c["DiffPIR-20"]["zeta"], sigma_y=sy, clip=(-1.0, 1.0)),
        "DPS (10 NFE)": DPS(prior, 10, zeta=1.0, clip=(-1.0, 1.0)),
        "DiffPIR (100 NFE)": DiffPIR(prior, 100, lam=c["DiffPIR-100"]["lam"], zeta=c["DiffPIR-100"]["zeta"], sigma_y=sy, clip=(-1.0, 1.0)),
        "PnP-DM (10 Gibbs iterations)": PnPDM(prior, sigma_y=sy, num_iters=10, burn_in=5, rho0=0.5, rho_decay=0.8, rho_min=2 * sy, prior_steps=10,
                                               prior_spacing="uniform"),
    }

    def wrap(s):
        def run(y, A):
            out = s(y, A, generator=torch.Generator().manual_seed(0), progress=False)
            return out.mean, out.nfe
        return run

    out = {k: wrap(v) for k, v in smp.items()}
    out["TV (ADMM)"] = lambda y, A: (tv_admm(A, y, c["TV"]["lam"]), 0)
    # noise-to-signal ratio σ²/var(y), as benchmarks/natural.py
    out["Wiener"] = lambda y, A: (wiener(y[0, 0].double(), A.kernel[0, 0].double(), sy**2 / float(y.var()))[None, None].float(), 0)
    return out

# ------------------------------------------------------------------------------------------------ multi-coil MRI
MRI_SIGMA = 0.01
#: 10-NFE settings of the unconditional-prior baselines, chosen on validation slices (R = 4 random lines)
MRI_GRIDS = {"DiffPIR": [{"lam": lam, "zeta": z} for lam in (1.0, 10.0) for z in (0.3, 0.7, 1.0)],
             "DPS": [{"zeta": z} for z in (0.3, 1.0, 3.0)],
             "PnP-DM": [{"rho0": r0, "rho_min": rm} for r0 in (0.3, 1.0) for rm in (0.02, 0.05)]}


def mri_acquisitions() -> dict:
    """name → (mask(W, generator) → mask, seen family)."""
    return {"random R=4 (20 ACS)": (lambda W, g: random_lines_mask(W, 4, 20, generator=g), True),
            "random R=6 (12 ACS)": (lambda W, g: random_lines_mask(W, 6, 12, generator=g), True),
            "equispaced R=4 (+20 ACS)": (lambda W, g: equispaced_mask(W, 4, 20, offset=int(torch.randint(4, (1,), generator=g))), True),
            "equispaced R=6 (+12 ACS)": (lambda W, g: equispaced_mask(W, 6, 12, offset=int(torch.randint(6, (1,), generator=g))), True),
            "equispaced R=8, fastMRI spacing (10 ACS)": (lambda W, g: equispaced_mask(W, 8, 10, int(torch.randint(8, (1,), generator=g)), match_acceleration=True), False),
            "Poisson-disc 2D R=8 (16x16 calib)": (lambda W, g: poisson_disc_mask((W, W), 8, (16, 16), generator=g), False)}


def mri_cases(cohort: dict, make_mask, seed: int) -> list[dict]:
    """Per slice: a new mask and noise draw on the fully sampled k-space; the cohort's maps and normalisation."""
    from monai_diffrecon.physics.functional.sense import complex_randn

    out = []
    for i in range(cohort["kspace_full"].shape[0]):
        g = torch.Generator().manual_seed(seed + i)
        full, maps = cohort["kspace_full"][i:i + 1], cohort["maps"][i:i + 1]
        mask = make_mask(full.shape[-1], g)
        y = mask * (full + MRI_SIGMA / float(cohort["scale"][i]) * complex_randn(full.shape, g))  # σ in the original units
        out.append({"y": y, "maps": maps, "mask": mask, "op": MultiCoilMRI(maps, mask), "truth": cohort["truth"][i]})
    return out


def load_mri_unfolding():
    b = BUNDLES / "mri_multicoil_unfolding"
    meta = json.loads((b / "configs" / "metadata.json").read_text())
    cfg = json.loads((b / "configs" / "inference.json").read_text())
    net = unfolded_denoiser(make_scheduler().alphas_cumprod, 2, 2, cfg["num_unroll"], size=cfg["network_def"]["size"],
                            sigma_y=cfg["sigma_y"], cg_iters=cfg["cg_iters"])
    return load_verified(net, b / "models" / "model.pt", meta["model_sha256"]), cfg["num_steps"]


MRI_NAMES = {"DiffPIR": "DiffPIR (10 NFE)", "DPS": "DPS (10 NFE)", "PnP-DM": "PnP-DM (10 Gibbs iterations)"}


def _complex_run(sampler, wrap: bool = True, num_samples: int = 1):
    """A sampler as ``(case, generator) → (complex (H, W), NFE)`` (the mean over ``num_samples`` samples); ``wrap``:
    the prior works on (real, imaginary) channels."""
    from monai_diffrecon.physics.functional.sense import channels_to_complex

    def run(a, g):
        out = sampler(a["y"], a["op"] @ ChannelsToComplex() if wrap else a["op"], generator=g, num_samples=num_samples, progress=False)
        return (channels_to_complex(out.mean) if wrap else out.mean)[0, 0], out.nfe
    return run


def mri_samplers(oracle, chosen: dict) -> dict:
    """The unconditional-prior baselines (10 network calls of the DDIM grid; PnP-DM: 10 Gibbs iterations)."""
    return {MRI_NAMES["DiffPIR"]: _complex_run(DiffPIR(oracle, 10, sigma_y=MRI_SIGMA, clip=(-2.0, 2.0), **chosen["DiffPIR"])),
            MRI_NAMES["DPS"]: _complex_run(DPS(oracle, 10, clip=(-2.0, 2.0), **chosen["DPS"])),
            MRI_NAMES["PnP-DM"]: _complex_run(PnPDM(oracle, sigma_y=MRI_SIGMA, num_iters=10, burn_in=5, rho_decay=0.8, prior_steps=10, prior_spacing="uniform",
                                                                    **chosen["PnP-DM"]))}


def _mri_psnr(fn, cases, grad: bool = False) -> float:
    from monai_diffrecon.workflows.mri import magnitude_metrics

    with torch.enable_grad() if grad else torch.no_grad():
        return float(np.mean([magnitude_metrics(fn(a, torch.Generator().manual_seed(0))[0].detach()[None], a["truth"][None])["psnr"] for a in cases]))


def mri_tune(oracle, val: list[dict]) -> dict:
    base = {"DiffPIR": {"lam": 1.0, "zeta": 0.3}, "DPS": {"zeta": 1.0}, "PnP-DM": {"rho0": 1.0, "rho_min": 0.02}}
    chosen = {}
    for name, grid in MRI_GRIDS.items():
        scores = []
        for c in grid:
            scores.append(_mri_psnr(mri_samplers(oracle, {**base, name: c})[MRI_NAMES[name]], val, grad=name == "DPS"))
            print(f"tune {name} {c}: {scores[-1]:.2f} dB", flush=True)
        chosen[name] = grid[int(np.argmax(scores))]
        chosen[f"{name} validation PSNR"] = {json.dumps(c): round(v, 2) for c, v in zip(grid, scores)}
    return chosen


def main_mri(a) -> None:
    from monai_diffrecon.diffusion import DiffusionPrior
    from monai_diffrecon.physics.functional.sense import channels_to_complex, sense_combine
    from monai_diffrecon.recon.cg import cg_sense
    from monai_diffrecon.training.mri_cohort import cached_mri_cohort
    from monai_diffrecon.workflows.mri import magnitude_metrics

    from mri import ORACLE, tv_admm as tv_admm_mri  # noqa: E402

    d = Path(a.cohort_dir)
    test = cached_mri_cohort(d / f"mri_test_{a.n_test}.pt", a.n_test, "test")
    val = cached_mri_cohort(d / f"mri_val_{a.n_val}.pt", a.n_val, "val")
    unf, steps = load_mri_unfolding()
    oracle_net = load_verified(diffusion_unet(2, 2, size="small"), ORACLE / "model.pt", (ORACLE / "model.sha256").read_text().split()[0])
    oracle = DiffusionPrior(oracle_net.requires_grad_(False), make_scheduler())
    classical = json.loads((ROOT / "results" / "mri.chosen.json").read_text())["chosen"]
    out = Path(a.out if a.out != str(ROOT / "results" / "unfolding.md") else ROOT / "results" / "unfolding_mri.md")
    tune_file = out.with_suffix(".chosen.json")
    key = {"grids": MRI_GRIDS, "n_val": a.n_val, "oracle": (ORACLE / "model.sha256").read_text().split()[0]}
    cached = json.loads(tune_file.read_text()) if tune_file.is_file() else {}
    if cached.get("key") == key:
        chosen = cached["chosen"]
    else:  # the baselines' settings do not depend on the Diff-Unfolding weights: chosen once, cached
        chosen = mri_tune(oracle, mri_cases(val, mri_acquisitions()["random R=4 (20 ACS)"][0], 52_000))
        tune_file.write_text(json.dumps({"key": key, "chosen": chosen}, indent=1))
    runs = {"zero-filled": lambda c, g: (sense_combine(c["y"], c["maps"])[0, 0], 0),
            "SENSE-CG": lambda c, g: (cg_sense(c["op"], c["y"], 0.0, classical["cg_iters"])[0, 0], 0),
            "TV (ADMM)": lambda c, g: (channels_to_complex(tv_admm_mri(c["op"] @ ChannelsToComplex(), c["y"], classical["tv_lam"]))[0, 0], 0),
            f"Diff-Unfolding ({steps} NFE)": _complex_run(DiffUnfolding(unf, num_steps=steps), wrap=False),
            f"Diff-Unfolding, mean of 2 samples x {steps // 2} steps ({steps} NFE)": _complex_run(DiffUnfolding(unf, num_steps=steps // 2), False, 2),
            "unrolled regressor (same weights, 1 NFE)": _complex_run(DiffUnfolding(unf, num_steps=1), wrap=False),
            **mri_samplers(oracle, chosen)}
    rows, example, t_all = [], {}, time.perf_counter()
    for j, (aname, (make_mask, seen)) in enumerate(mri_acquisitions().items()):
        cases = mri_cases(test, make_mask, 62_000 + 1000 * j)[: a.limit]
        for i, c in enumerate(cases):
            r_true = float(c["mask"].numel() / c["mask"].sum())  # 1D line mask (…, 1, W) or 2D mask (…, H, W)
            for m, run in runs.items():
                t0 = time.perf_counter()
                with torch.enable_grad() if m.startswith("DPS") else torch.no_grad():
                    x, n = run(c, torch.Generator().manual_seed(i))
                x, dt = x.detach(), time.perf_counter() - t0
                rows.append({"kernel": aname, "seen": seen, "image": f"test_{i}", "method": m, "R": r_true,
                             **magnitude_metrics(x[None], c["truth"][None]), "nfe": n, "seconds": dt})
                print(f"{aname} {i} {m}: {rows[-1]['psnr']:.2f} dB {dt:.1f} s", flush=True)
                if i == 0:
                    example.setdefault(aname, {"truth": c["truth"].abs(), "mask": c["mask"][0, 0].expand(c["truth"].shape)})[m] = x.abs()
    params = {"Diff-Unfolding": sum(p.numel() for p in unf.parameters()), "pixel prior": sum(p.numel() for p in oracle_net.parameters())}
    meta = {"what": "acquisitions", "title": "# Diff-Unfolding: multi-coil MRI at seen and unseen sampling patterns",
            "data": f"{a.n_test} held-out MNI152-based slices (128², 8 coils, σ = {MRI_SIGMA}), maps from each slice's R = 4 calibration",
            "command": f"python benchmarks/unfolding.py --mri --cohort-dir <dir> --n-test {a.n_test} --n-val {a.n_val}",
            "prior": "clean-image prior (unconditional)", "chosen": chosen, "classical": {k: classical[k] for k in ("cg_iters", "tv_lam")}}
    report(rows, a, time.perf_counter() - t_all, params, out, meta)
    mri_figure(example, out.with_suffix(".png"), f"Diff-Unfolding ({steps} NFE)")


def mri_figure(example: dict, path: Path, unf_name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from monai_diffrecon.workflows.mri import magnitude_metrics

    rows = list(example)
    cols = ["mask", "zero-filled", "SENSE-CG", "TV (ADMM)", "PnP-DM (10 Gibbs iterations)", unf_name, "unrolled regressor (same weights, 1 NFE)", "truth"]
    fig, ax = plt.subplots(len(rows), len(cols), figsize=(2.0 * len(cols), 2.1 * len(rows)), squeeze=False)
    for i, r in enumerate(rows):
        vmax = float(example[r]["truth"].max())
        for j, c in enumerate(cols):
            img = example[r][c]
            ax[i, j].imshow(img.numpy(), cmap="gray", vmin=0, vmax=1 if c == "mask" else vmax)
            if c == "mask":
                t = r.replace(" (", "\n(")
            elif c == "truth":
                t = "truth"
            else:
                t = f"{c.split(' (')[0]}\n{magnitude_metrics(img[None], example[r]['truth'][None])['psnr']:.2f} dB"
            ax[i, j].set_title(t, fontsize=7)
            ax[i, j].axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--out", default=str(ROOT / "results" / "unfolding.md"))
    ap.add_argument("--mri", action="store_true", help="the multi-coil MRI evaluation (→ results/unfolding_mri.md)")
    ap.add_argument("--cohort-dir", default=None, help="--mri: folder for the cached test/validation cohorts")
    ap.add_argument("--n-test", type=int, default=8)
    ap.add_argument("--n-val", type=int, default=4)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.mri:
        if not a.cohort_dir:
            ap.error("--mri needs --cohort-dir")
        main_mri(a)
        return
    unf, prior = load_unfolding(), load_pixel_prior()
    runs = methods(unf, prior)
    images = dict(list(test_images().items())[: a.limit])
    rows, example = [], {}
    t_all = time.perf_counter()
    for j, (kname, (k, seen)) in enumerate(kernels().items()):
        A = Blur(k[None, None].float())
        for i, (name, truth) in enumerate(images.items()):
            x = (2 * truth - 1)[None, None].float()
            y = A(x) + 2 * SIGMA * torch.randn(x.shape, generator=torch.Generator().manual_seed(9000 + 10 * j + i))
            rec = {"blurred": y}
            rows.append({"kernel": kname, "seen": seen, "image": name, "method": "blurred", **metrics(((y[0, 0] + 1) / 2).double(), truth), "nfe": 0, "seconds": 0.0})
            for m, run in runs.items():
                t0 = time.perf_counter()
                with torch.no_grad() if not m.startswith("DPS") else torch.enable_grad():
                    xs, nfe = run(y, A)
                dt = time.perf_counter() - t0
                rec[m] = xs
                rows.append({"kernel": kname, "seen": seen, "image": name, "method": m, **metrics(((xs[0, 0].double() + 1) / 2), truth),
                             "nfe": nfe, "seconds": dt})
                print(f"{kname} {name} {m}: {rows[-1]['psnr']:.2f} dB {dt:.1f} s", flush=True)
            if i == 0:
                example[kname] = {"truth": truth, "kernel": k, **{m: ((v[0, 0].double() + 1) / 2).clamp(0, 1) for m, v in rec.items()}}
    params = {"Diff-Unfolding": sum(p.numel() for p in unf.parameters()), "pixel prior": sum(p.numel() for p in prior.network.parameters())}
    report(rows, a, time.perf_counter() - t_all, params, Path(a.out))
    figure(example, Path(a.out).with_suffix(".png"))


def report(rows, a, seconds, params, out: Path, meta: dict | None = None) -> None:
    """Seen / unseen summary and the per-operator table; ``meta`` (the MRI run) replaces the deblurring wording."""
    out.with_suffix(".json").write_text(json.dumps({"rows": rows, "params": params, "threads": a.threads, **({"meta": meta} if meta else {})}, indent=1))
    ms = list(dict.fromkeys(r["method"] for r in rows))
    ks = list(dict.fromkeys(r["kernel"] for r in rows))
    what = meta["what"] if meta else "kernels"

    def mean(f, key="psnr"):
        v = [r[key] for r in rows if f(r)]
        return float(np.mean(v)) if v else float("nan")

    if meta:
        head = [meta["title"], "", f"Generated {datetime.date.today()} by `{meta['command']}` ({a.threads} threads, {seconds / 60:.1f} min); "
                f"{meta['data']}. Parameters: Diff-Unfolding {params['Diff-Unfolding'] / 1e6:.2f} M, {meta['prior']} "
                f"{params['pixel prior'] / 1e6:.2f} M. LPIPS not computed (the packages fetch weights at run time). Setup in the script's docstring."]
    else:
        head = ["# Diff-Unfolding: natural-image deblurring at seen and unseen kernels", "",
                f"Generated {datetime.date.today()} by `python benchmarks/unfolding.py` ({a.threads} threads, {seconds / 60:.1f} min); "
                f"{len({r['image'] for r in rows})} held-out photographs (128²) × {len(ks)} kernels, σ = {SIGMA}. Parameters: "
                f"Diff-Unfolding {params['Diff-Unfolding'] / 1e6:.2f} M, pixel prior {params['pixel prior'] / 1e6:.2f} M. "
                "LPIPS not computed (the packages fetch weights at run time). Setup in the script's docstring."]
    lines = head + ["", f"| method | NFE | PSNR seen {what} | PSNR unseen {what} | loss on unseen | SSIM (all) | s / image |", "|---|---|---|---|---|---|---|"]
    for m in ms:
        s, u = mean(lambda r: r["method"] == m and r["seen"]), mean(lambda r: r["method"] == m and not r["seen"])
        lines.append(f"| {m} | {int(mean(lambda r: r['method'] == m, 'nfe'))} | {s:.2f} | {u:.2f} | {s - u:+.2f} | "
                     f"{mean(lambda r: r['method'] == m, 'ssim'):.3f} | {mean(lambda r: r['method'] == m, 'seconds'):.2f} |")
    heads = [k + (f" (true R {mean(lambda r: r['kernel'] == k, 'R'):.1f}{', seen' if mean(lambda r: r['kernel'] == k, 'seen') else ', unseen'})" if meta else "") for k in ks]
    lines += ["", f"Per {what[:-1]} (PSNR, dB, mean over {'slices' if meta else 'images'}):", "", "| method | " + " | ".join(heads) + " |", "|---|" + "---|" * len(ks)]
    for m in ms:
        lines.append(f"| {m} | " + " | ".join(f"{mean(lambda r: r['method'] == m and r['kernel'] == k):.2f}" for k in ks) + " |")
    if meta:
        lines += ["", f"\"loss on unseen\" compares different sampling patterns (R = 8 is also a harder problem than R = 4 or 6), so the "
                  "loss of the methods with *no training operator* (zero-filled, SENSE-CG, TV, and the unconditional-prior DiffPIR/DPS/PnP-DM) "
                  "is the reference for how much of Diff-Unfolding's loss is generalisation.", "",
                  "A posterior *sample* has twice the expected squared error of the posterior *mean* (E‖x − x₀‖² = 2 tr Cov[x₀ | y] for x "
                  "drawn from p(x₀ | y)), i.e. ≈ 3 dB less PSNR where the posterior is wide (undersampled MRI); the 1-step reading of the "
                  "same network is its estimate of the posterior mean E[x₀ | y], and averaging N samples recovers 10 log10(2 / (1 + 1/N)) dB "
                  "of it. PnP-DM's output is the average of its 5 post-burn-in Gibbs samples; DiffPIR's and DPS's are single samples.", "",
                  f"Settings of the unconditional-prior baselines (validation slices, R = 4 random): {json.dumps({k: v for k, v in meta['chosen'].items() if 'PSNR' not in k})}; "
                  f"validation PSNR per setting in {out.with_suffix('.chosen.json').name}. Classical: {json.dumps(meta['classical'])} (benchmarks/results/mri.chosen.json).", ""]
    else:
        lines += ["", "\"loss on unseen\" compares different kernels (the unseen ones are also harder: a blur's difficulty depends on "
                  "its spectrum), so the loss of the *operator-agnostic* baselines (DiffPIR, TV, Wiener: no training operator at "
                  "all) is the reference for how much of Diff-Unfolding's loss is generalisation.", ""]
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def figure(example: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(example)
    cols = ["kernel", "blurred", "Diff-Unfolding (10 NFE)", "DiffPIR (100 NFE)", "TV (ADMM)", "truth"]
    fig, ax = plt.subplots(len(rows), len(cols), figsize=(2.1 * len(cols), 2.2 * len(rows)), squeeze=False)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            img = example[r][c]
            ax[i, j].imshow(img.numpy(), cmap="magma" if c == "kernel" else "gray", **({} if c == "kernel" else {"vmin": 0, "vmax": 1}))
            t = r if c == "kernel" else (c if c == "truth" else f"{c.split(' (')[0]}\n{metrics(img, example[r]['truth'])['psnr']:.2f} dB")
            ax[i, j].set_title(t, fontsize=7)
            ax[i, j].axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
