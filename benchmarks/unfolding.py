"""Diff-Unfolding on natural-image deblurring, at kernels of the training family and at unseen kernels →
benchmarks/results/unfolding.md (+ unfolding.json, unfolding.png).

Usage:
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/unfolding.py --threads 1   # the shipped weights (bundles/natural_unfolding_deblur, natural_blind_deblur)
    .venv/bin/python benchmarks/unfolding.py --limit 1 --n-val 1              # smoke run (still the full grids)
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/unfolding.py --mri --threads 1 --cohort-dir D --n-test 12 --n-val 4   # multi-coil MRI → results/unfolding_mri.md

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
  step) with 10 DDIM steps and with 1 step from t = T (then x_t carries no information and the network is an
  end-to-end unrolled regressor: the "unrolled network without diffusion" reading of the same weights);
* **DiffPIR** and **DPS** in pixel space with the unconditional image prior of ``bundles/natural_blind_deblur``
  (``small`` UNet, trained on the same patches) at 10 NFE, and DiffPIR at 100 NFE (x̂₀ clipped to [−1, 1]; DPS is
  given σ_y, which bounds each step by the likelihood's reverse-SDE step);
* **PnP-DM** (same prior; 10 Gibbs iterations, 5 burn-in, ρ decay 0.8: at these low coupling levels each prior step is
  a single network call, so 10 NFE);
* **Wiener** (noise-to-signal ratio ``nsr_scale``·σ²/var(y)) and **TV** (ADMM, 100 iterations).

Tuning (issue 21): every method's knobs (:data:`GRIDS`: Diff-Unfolding's DDIM η; DiffPIR's λ, ζ; DPS's ζ, η; PnP-DM's
ρ₀, ρ_min; TV's λ; Wiener's NSR scale) are chosen by :func:`~monai_diffrecon.evaluation.grid_search` with the same
budget (:data:`BUDGET` settings at most) on ``--n-val`` *validation* cases (:func:`validation_cases`: random crops of
the training photographs, new draws of the seen kernel family, seeds from :mod:`monai_diffrecon.evaluation.splits`);
never on a test photograph or a test kernel. Statistics: mean [95 % bootstrap CI] per method on seen and unseen
kernels, the per-image generalisation loss (mean over unseen − mean over seen kernels, paired by image) and paired
differences Diff-Unfolding − each baseline; a baseline whose paired gain over the blurred input has a CI low bound
≤ 0 is reported as failed (never counted as beaten); the targets (same names as before) are computed from the rows
and stored under ``"targets"`` in unfolding.json (``benchmarks/targets.py`` re-computes them).
PSNR / SSIM on [0, 1]; seconds per 128² image on this CPU (same process, same threads); parameters.
Perceptual: LPIPS is not computed (the common packages fetch their weights at run time, no network here); NIQE
(:func:`monai_diffrecon.metrics.niqe.niqe`, no reference, lower is better) with 32-px patches at 128² instead, for
ranking the rows only.

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
Methods: Diff-Unfolding (``bundles/mri_multicoil_unfolding``, the bundle's weights and number of steps) at 10 NFE and
as the 1-step regressor; DiffPIR, DPS and PnP-DM at 10 NFE with the unconditional clean-image prior of benchmarks/mri.py
(``benchmarks/weights/mri_clean_prior``, ``small`` UNet, the same clean slices; x̂₀ clipped to [−2, 2] for DiffPIR
and DPS; DPS is given σ_y as in the natural mode — the previous run's DPS without it, ζ = 1, scored 7.6 dB); zero-filled (SENSE combination), SENSE-CG (no regularisation) and TV (ADMM, 30 iterations).
Tuning (issue 21): every method's knobs (:data:`MRI_GRIDS`: Diff-Unfolding's DDIM η; DiffPIR's λ, ζ; DPS's ζ; PnP-DM's
ρ₀, ρ_min; SENSE-CG's iterations; TV's λ) are chosen by :func:`~monai_diffrecon.evaluation.grid_search` with the same
budget (:data:`BUDGET` settings) on ``--n-val`` *validation* slices of ``training.mri_cohort`` (split "val", seeds
50 000+, MNI axial blocks disjoint from training and test) at the training sampler's random R = 4 mask (draw seed
52 000); never on a test slice. ``--acquisitions`` restricts the test to some of the six acquisitions (default all).
Statistics as in the natural mode: mean [95 % bootstrap CI] per method on seen and unseen masks, the per-slice loss
(mean over seen − mean over unseen acquisitions, paired by slice), paired differences Diff-Unfolding − each baseline,
the broken-baseline guard against the zero-filled input, and the targets (same names as before) stored under
``"targets"`` in unfolding_mri.json; the chosen settings and every trial also in unfolding_mri.chosen.json. PSNR /
SSIM of the magnitude over the whole slice (peak = max of the reference).
"""

from __future__ import annotations

import argparse
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


BUDGET = 6  # settings per method's grid search, the same for every method (a method with fewer knobs uses fewer)
N_VAL = 3  # validation cases per setting
UNF, REG = "Diff-Unfolding (10 NFE)", "unrolled regressor (same weights, 1 NFE)"
#: every method's knobs, searched on the natural validation split (training photographs, seen-family kernels)
GRIDS = {UNF: {"eta": [0.0, 0.5, 1.0]},
         REG: {},
         "DiffPIR (10 NFE)": {"lam": [1.0, 3.0, 10.0], "zeta": [0.3, 1.0]},
         "DPS (10 NFE)": {"zeta": [0.3, 1.0, 3.0], "eta": [0.0, 1.0]},
         "DiffPIR (100 NFE)": {"lam": [1.0, 3.0, 10.0], "zeta": [0.3, 1.0]},
         "PnP-DM (10 Gibbs iterations)": {"rho0": [0.3, 0.5], "rho_min": [0.02, 0.04, 0.08]},
         "TV (ADMM)": {"lam": [0.002, 0.005, 0.01, 0.02, 0.05, 0.1]},
         "Wiener": {"nsr_scale": [0.1, 0.3, 1.0, 3.0, 10.0, 30.0]}}
#: the previous run (2026-11-28: DiffPIR/TV from reld_tune.json's one training photograph, DPS ζ = 1, η = 1 untuned,
#: PnP-DM ρ 0.5 → 0.08, Wiener NSR σ²/var(y)), PSNR on seen / unseen kernels, same 24 test cases
BEFORE = {"blurred": (26.10, 24.53), UNF: (31.11, 30.34), REG: (31.54, 30.57), "DiffPIR (10 NFE)": (27.20, 25.38),
          "DPS (10 NFE)": (16.87, 17.88), "DiffPIR (100 NFE)": (31.64, 30.76), "PnP-DM (10 Gibbs iterations)": (31.02, 30.28),
          "TV (ADMM)": (31.01, 30.05), "Wiener": (26.76, 25.30)}
NIQE_PATCH = 32  # NIQE patch side at 128² (the published 96 needs ≥ 193²): rankings only, not comparable with published NIQE


def _niqe(x01: torch.Tensor) -> float | None:
    """NIQE of a [0, 1] image, ``None`` where it is undefined (e.g. a flat image)."""
    from monai_diffrecon.metrics.niqe import niqe

    try:
        v = niqe(x01.clamp(0, 1), NIQE_PATCH)
    except (ValueError, np.linalg.LinAlgError):
        return None
    return v if math.isfinite(v) else None


def make_method(name: str, p: dict, unf, prior):
    """``name`` with settings ``p`` as ``run(y, A) → (x̂ signed (1, 1, H, W), NFE)`` (seed 0)."""
    sy = 2 * SIGMA
    if name == "TV (ADMM)":
        return lambda y, A: (tv_admm(A, y, p["lam"]), 0)
    if name == "Wiener":  # noise-to-signal ratio nsr_scale · σ²/var(y) (benchmarks/natural.py: nsr_scale = 1)
        return lambda y, A: (wiener(y[0, 0].double(), A.kernel[0, 0].double(), p["nsr_scale"] * sy**2 / float(y.var()))[None, None].float(), 0)
    s = {UNF: lambda: DiffUnfolding(unf, num_steps=10, **p),
         REG: lambda: DiffUnfolding(unf, num_steps=1, **p),
         "DiffPIR (10 NFE)": lambda: DiffPIR(prior, 10, sigma_y=sy, clip=(-1.0, 1.0), **p),
         "DPS (10 NFE)": lambda: DPS(prior, 10, sigma_y=sy, clip=(-1.0, 1.0), **p),
         "DiffPIR (100 NFE)": lambda: DiffPIR(prior, 100, sigma_y=sy, clip=(-1.0, 1.0), **p),
         "PnP-DM (10 Gibbs iterations)": lambda: PnPDM(prior, sigma_y=sy, num_iters=10, burn_in=5, rho_decay=0.8, prior_steps=10,
                                                       prior_spacing="uniform", **p)}[name]()

    def run(y, A):
        with torch.enable_grad() if name.startswith("DPS") else torch.no_grad():
            out = s(y, A, generator=torch.Generator().manual_seed(0), progress=False)
        return out.mean.detach(), out.nfe
    return run


def validation_cases(n: int) -> list[dict]:
    """The natural validation split (tuning only): the training photographs of score_pnp.py's
    :func:`validation_images` (random square crops, ``seeds("natural_patches", "val", n)``), blurred by new draws
    of the *seen* kernel family (32² camera shake 0.3, a Gaussian with random σ's, 32² camera shake 0.6, in turn;
    ``seeds("natural_kernels", "val", n)``), noise σ = 0.02 from the patch seed."""
    from score_pnp import validation_images  # noqa: E402 (sibling script module)

    from monai_diffrecon.evaluation import seeds

    out = []
    for i, ((name, img, g), ks) in enumerate(zip(validation_images(n), seeds("natural_kernels", "val", n))):
        gk = torch.Generator().manual_seed(ks)
        kind = ("shake-0.3", "gauss", "shake-0.6")[i % 3]
        if kind == "gauss":
            sig = (1.5 + 1.0 * float(torch.rand((), generator=gk)), 1.0 + 0.6 * float(torch.rand((), generator=gk)))
            kname, k = f"gauss-{sig[0]:.2f}x{sig[1]:.2f}", gaussian_kernel(sig, 32, dtype=torch.float64)
        else:
            kname, k = f"{kind} (32²)#{ks}", motion_blur_kernel(32, float(kind[-3:]), gk).double()
        x, A = (2 * img - 1)[None, None].float(), Blur(k[None, None].float())
        out.append({"image": name, "kernel": kname, "truth": img, "A": A, "y": A(x) + 2 * SIGMA * torch.randn(x.shape, generator=g)})
    return out


def main_natural(a) -> None:
    from monai_diffrecon.evaluation import Results, Target, grid_search, run_info, target_spec
    from monai_diffrecon.evaluation.targets import check_target

    started = time.perf_counter()
    unf, prior = load_unfolding(), load_pixel_prior()
    score01 = lambda xs, truth: metrics(((xs[0, 0].double() + 1) / 2), truth)  # noqa: E731

    # ---- tuning on validation only, the same budget for every method
    val = validation_cases(a.n_val)
    val_blurred = float(np.mean([score01(c["y"], c["truth"])["psnr"] for c in val]))
    print(f"validation: {[(c['image'], c['kernel']) for c in val]}; blurred {val_blurred:.2f} dB", flush=True)
    tuning = {}
    for m, grid in GRIDS.items():
        def score(p, m=m):
            run = make_method(m, p, unf, prior)
            v = float(np.mean([score01(run(c["y"], c["A"])[0], c["truth"])["psnr"] for c in val]))
            print(f"  tune {m} {p}: {v:.2f} dB", flush=True)
            return v
        tuning[m] = grid_search(score, grid, BUDGET)

    # ---- test split with the chosen settings
    runs = {m: make_method(m, t.params, unf, prior) for m, t in tuning.items()}
    images = dict(list(test_images().items())[: a.limit])
    rows, example = [], {}
    for j, (kname, (k, seen)) in enumerate(kernels().items()):
        A = Blur(k[None, None].float())
        for i, (name, truth) in enumerate(images.items()):
            x = (2 * truth - 1)[None, None].float()
            y = A(x) + 2 * SIGMA * torch.randn(x.shape, generator=torch.Generator().manual_seed(9000 + 10 * j + i))
            rec = {"blurred": y}
            rows.append({"kernel": kname, "seen": seen, "image": name, "method": "blurred", **score01(y, truth),
                         "niqe": _niqe((y[0, 0] + 1) / 2), "nfe": 0, "seconds": 0.0})
            for m, run in runs.items():
                t0 = time.perf_counter()
                xs, nfe = run(y, A)
                dt = time.perf_counter() - t0
                rec[m] = xs
                rows.append({"kernel": kname, "seen": seen, "image": name, "method": m, **score01(xs, truth),
                             "niqe": _niqe((xs[0, 0].double() + 1) / 2), "nfe": nfe, "seconds": dt})
                print(f"{kname} {name} {m}: {rows[-1]['psnr']:.2f} dB {dt:.1f} s", flush=True)
            if i == 0:
                example[kname] = {"truth": truth, "kernel": k, **{m: ((v[0, 0].double() + 1) / 2).clamp(0, 1) for m, v in rec.items()}}

    # per image: the mean over its seen kernels and over its unseen kernels, for every method (the generalisation loss, paired by image)
    acc: dict = {}
    for r in rows:
        acc.setdefault((r["image"], r["method"], r["seen"]), []).append(r["psnr"])
    by_image = [{"image": im, "method": f"{m} | {'seen' if sn else 'unseen'} kernels", "psnr": float(np.mean(v))} for (im, m, sn), v in acc.items()]
    res, res_img = Results(rows, ("image", "kernel")), Results(by_image, ("image",))
    n_img, ks = len(images), list(kernels())
    protocol = (f"non-blind deblurring, σ = {SIGMA} on [0, 1]; PSNR/SSIM on [0, 1] over the whole 128² image against the clean photograph; "
                f"{n_img} held-out photographs × {len(ks)} kernels (3 seen-family draws, 3 unseen families); every method tuned on "
                f"{a.n_val} validation cases (training photographs, seen-family kernels), {BUDGET} settings at most")
    targets = [Target("Diff-Unfolding (10 NFE) beats PnP-DM (10 NFE) on seen kernels", UNF, "PnP-DM (10 Gibbs iterations)", "psnr", 0.0,
                      "unfolding.md", {"seen": True}, trivial="blurred"),
               Target("Diff-Unfolding (10 NFE) beats DiffPIR (10 NFE) on seen kernels", UNF, "DiffPIR (10 NFE)", "psnr", 0.0, "unfolding.md",
                      {"seen": True}, trivial="blurred")]
    t_loss = Target("Diff-Unfolding loses ≤ 0.5 dB on unseen kernels", f"{UNF} | unseen kernels", f"{UNF} | seen kernels", "psnr", -0.5,
                    "unfolding.md")
    loss_protocol = f"per image: the mean over its 3 unseen kernels minus the mean over its 3 seen kernels ({n_img} images)"
    specs = [target_spec(t, ("image", "kernel"), protocol) for t in targets] + [target_spec(t_loss, ("image",), loss_protocol, rows_key="rows_by_image")]
    entries = [{**check_target(res, t), "protocol": protocol} for t in targets] + [{**check_target(res_img, t_loss), "protocol": loss_protocol}]
    params = {"Diff-Unfolding": sum(p.numel() for p in unf.parameters()), "pixel prior": sum(p.numel() for p in prior.network.parameters())}
    info = run_info(started)
    out = Path(a.out)
    out.with_suffix(".json").write_text(json.dumps(
        {"run": info, "protocol": protocol, "sigma": SIGMA, "budget": BUDGET, "grids": GRIDS, "niqe_patch": NIQE_PATCH,
         "validation": {"cases": [[c["image"], c["kernel"]] for c in val], "blurred_psnr": val_blurred},
         "tuning": {m: t.as_dict() for m, t in tuning.items()}, "params": params, "before": BEFORE, "rows": rows,
         "rows_by_image": by_image, "targets": specs}, indent=1) + "\n")
    report_natural(res, res_img, tuning, val, val_blurred, entries, info, protocol, params, ks, out)
    figure(example, out.with_suffix(".png"))


def _command_line(info: dict) -> str:
    """The report's first line: command, commit, threads, wall time, date (both reports)."""
    return (f"Command: `OMP_NUM_THREADS=1 {info['command'].replace('python', '.venv/bin/python', 1)}` — commit {info['commit']}"
            f"{'' if info['tree_clean'] else ' (+ uncommitted changes)'}, {info['threads']} thread(s), {info['wall_seconds'] / 60:.1f} min wall "
            f"(tuning included), {info['date']}. Setup in the script's docstring.")


def _guard_status(res, m: str, trivial: str, failed: list) -> str:
    """The "vs <trivial>" cell of method ``m`` (the broken-baseline guard); appends a failed method to ``failed``."""
    from monai_diffrecon.evaluation import baseline_guard

    if m == trivial:
        return "—"
    if baseline_guard(res, m, trivial, "psnr")["baseline_ok"]:
        return "ok"
    failed.append(m)
    return f"**failed** (not above {trivial})"


def _paired_rows(res, ours: str, ms: list) -> list[str]:
    """Rows ``| baseline | seen [CI] | unseen [CI] |`` of the paired PSNR differences ``ours − baseline``."""
    rows = []
    for m in ms:
        if m != ours:
            s, u = res.compare(ours, m, "psnr", seen=True), res.compare(ours, m, "psnr", seen=False)
            rows.append(f"| {m} | {s.mean:+.2f} [{s.low:+.2f}, {s.high:+.2f}] | {u.mean:+.2f} [{u.low:+.2f}, {u.high:+.2f}] |")
    return rows


def _tuning_rows(tuning: dict, grids: dict) -> list[str]:
    """Rows ``| method | grid | chosen | validation PSNR | edge |`` of the tuning table."""
    return [f"| {m} | {json.dumps(grids[m]) if grids[m] else '— (no knobs)'} | {json.dumps(t.params) if t.params else '—'} | {t.score:.2f} | "
            f"{', '.join(t.on_edge) or '—'} |" for m, t in tuning.items()]


def report_natural(res, res_img, tuning, val, val_blurred, entries, info, protocol, params, ks, out: Path) -> None:
    from monai_diffrecon.evaluation import targets_section

    ms = res.methods()
    lines = ["# Diff-Unfolding: natural-image deblurring at seen and unseen kernels", "",
             _command_line(info), "",
             f"**Protocol.** {protocol}. Parameters: Diff-Unfolding {params['Diff-Unfolding'] / 1e6:.2f} M, pixel prior "
             f"{params['pixel prior'] / 1e6:.2f} M. The paper (Diff-Unfolding) reports LPIPS/FID on FFHQ/ImageNet 256²; LPIPS needs "
             f"weights fetched at run time (no network here), so the perceptual column is NIQE (monai_diffrecon.metrics.niqe, no reference, "
             f"lower is better) with {NIQE_PATCH}-px patches at 128² — comparable between the rows of this table only.", "",
             "## Test results (mean [95 % bootstrap CI] over cases)", "",
             "| method | NFE | PSNR seen kernels | PSNR unseen kernels | loss on unseen (per image) | SSIM (all) | NIQE (all) | s / image | before: seen / unseen | vs blurred |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    failed = []
    for m in ms:
        s, u = res.estimate(m, "psnr", seen=True), res.estimate(m, "psnr", seen=False)
        loss = res_img.compare(f"{m} | seen kernels", f"{m} | unseen kernels", "psnr")
        rs = [r for r in res.rows if r["method"] == m]
        status = _guard_status(res, m, "blurred", failed)
        b = BEFORE.get(m)
        lines.append(f"| {m} | {int(np.mean([r['nfe'] for r in rs]))} | {s} | {u} | {loss.mean:+.2f} [{loss.low:+.2f}, {loss.high:+.2f}] | "
                     f"{res.estimate(m, 'ssim').mean:.3f} | {np.mean([r['niqe'] for r in rs if r['niqe'] is not None] or [np.nan]):.2f} | {np.mean([r['seconds'] for r in rs]):.2f} | "
                     f"{f'{b[0]:.2f} / {b[1]:.2f}' if b else '—'} | {status} |")
    lines += ["", "\"vs blurred\": the broken-baseline guard over all cases (ok only if the 95 % CI of the paired gain over the blurred "
              "input is above 0); a failed row is never counted as beaten. \"loss on unseen\" compares different kernels (the unseen ones "
              "are also harder: a blur's difficulty depends on its spectrum), so the loss of the *operator-agnostic* baselines (DiffPIR, "
              "PnP-DM, TV, Wiener: no training operator at all) is the reference for how much of Diff-Unfolding's loss is generalisation.", "",
              "Per kernel (PSNR, dB, mean over images):", "", "| method | " + " | ".join(ks) + " |", "|---|" + "---|" * len(ks)]
    for m in ms:
        lines.append(f"| {m} | " + " | ".join(f"{res.estimate(m, 'psnr', kernel=k).mean:.2f}" for k in ks) + " |")
    lines += ["", "## Paired differences (PSNR, dB; positive = Diff-Unfolding (10 NFE) better)", "",
              "| baseline | seen kernels [95 % CI] | unseen kernels [95 % CI] |", "|---|---|---|"]
    lines += _paired_rows(res, UNF, ms)
    lines += ["", f"## Tuning (validation split only: {len(val)} cases, blurred input {val_blurred:.2f} dB; at most {BUDGET} settings per method)", "",
              "Validation cases: " + "; ".join(f"{c['image']} × {c['kernel']}" for c in val) + ".", "",
              "| method | grid | chosen | validation PSNR | on the grid's edge |", "|---|---|---|---|---|"]
    lines += _tuning_rows(tuning, GRIDS)
    lines += ["", "Every trial (setting → mean validation PSNR) is in unfolding.json under `tuning`. "
              + (f"Failed baselines (not above the blurred input after tuning): {', '.join(failed)}." if failed else "No baseline failed the guard."), ""]
    lines += targets_section(entries)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


# ------------------------------------------------------------------------------------------------ multi-coil MRI
MRI_SIGMA = 0.01
MRI_UNF, MRI_PNP, MRI_DIFFPIR, MRI_DPS = "Diff-Unfolding (10 NFE)", "PnP-DM (10 Gibbs iterations)", "DiffPIR (10 NFE)", "DPS (10 NFE)"
#: every method's knobs, searched on the MRI validation split (validation slices, the training sampler's random R = 4
#: mask) with the same budget (:data:`BUDGET`); zero-filled has none
MRI_GRIDS = {MRI_UNF: {"eta": [0.0, 0.5, 1.0]},
             REG: {},
             MRI_DIFFPIR: {"lam": [0.1, 1.0, 10.0], "zeta": [0.7, 1.0]},
             MRI_DPS: {"zeta": [1.0, 3.0, 10.0], "eta": [0.5, 1.0]},
             MRI_PNP: {"rho0": [0.03, 0.1, 0.3], "rho_min": [0.02, 0.04]},
             "SENSE-CG": {"iters": [5, 10, 20, 40]},
             "TV (ADMM)": {"lam": [0.0003, 0.001, 0.003, 0.01, 0.03]}}
#: the previous run (2026-11-29: 4 slices × 6 acquisitions; DiffPIR/DPS/PnP-DM tuned at R = 4 on 4 validation slices
#: with unequal grids, SENSE-CG / TV from mri.chosen.json, Diff-Unfolding at the bundle's η), PSNR per acquisition
MRI_BEFORE = {"zero-filled": [18.81, 17.98, 20.20, 18.81, 17.52, 18.57], "SENSE-CG": [21.05, 19.46, 26.16, 23.32, 18.48, 24.38],
              "TV (ADMM)": [21.48, 19.66, 26.80, 22.87, 18.53, 26.08], MRI_UNF: [22.34, 20.68, 24.23, 22.76, 19.82, 23.49],
              REG: [24.64, 22.94, 27.43, 25.71, 21.99, 25.93], MRI_DIFFPIR: [19.95, 18.41, 23.68, 21.56, 17.91, 22.28],
              MRI_DPS: [7.60, 6.56, 8.70, 7.54, 5.63, 5.84],
              MRI_PNP: [25.20, 23.35, 28.12, 26.56, 22.34, 26.81]}



#: operator swaps beyond the mask (issue 24): coil counts the training operators never had (they used the 8-coil
#: maps of the training cohort), random R = 4 lines — "name": coils
COIL_SWAPS = {"random R=4, 4 coils (unseen coil count)": 4, "random R=4, 16 coils (unseen coil count)": 16}
#: posterior-mean readings of the same weights (not separately tuned: the 10-NFE row's settings): name → (steps, samples)
UNF_MEANS = {"Diff-Unfolding, mean of 2 samples × 5 steps (10 NFE)": (5, 2), "Diff-Unfolding, mean of 4 samples × 10 steps (40 NFE)": (10, 4)}


def mri_acquisitions() -> dict:
    """name → (mask(W, generator) → mask, seen family); the coil-count swaps (:data:`COIL_SWAPS`) use random R = 4 lines
    with the slice re-simulated on that many birdcage coils (:func:`mri_cases`)."""
    return {"random R=4 (20 ACS)": (lambda W, g: random_lines_mask(W, 4, 20, generator=g), True),
            "random R=6 (12 ACS)": (lambda W, g: random_lines_mask(W, 6, 12, generator=g), True),
            "equispaced R=4 (+20 ACS)": (lambda W, g: equispaced_mask(W, 4, 20, offset=int(torch.randint(4, (1,), generator=g))), True),
            "equispaced R=6 (+12 ACS)": (lambda W, g: equispaced_mask(W, 6, 12, offset=int(torch.randint(6, (1,), generator=g))), True),
            "equispaced R=8, fastMRI spacing (10 ACS)": (lambda W, g: equispaced_mask(W, 8, 10, int(torch.randint(8, (1,), generator=g)), match_acceleration=True), False),
            "Poisson-disc 2D R=8 (16x16 calib)": (lambda W, g: poisson_disc_mask((W, W), 8, (16, 16), generator=g), False),
            **{k: (lambda W, g: random_lines_mask(W, 4, 20, generator=g), False) for k in COIL_SWAPS}}


def mri_cases(cohort: dict, make_mask, seed: int, coils: int | None = None) -> list[dict]:
    """Per slice: a new mask and noise draw on the fully sampled k-space; the cohort's maps and normalisation. With
    ``coils``: the slice's image re-simulated on that many birdcage coils, maps by ESPIRiT from the new data's 20 ACS
    lines (the operator swap)."""
    from monai_diffrecon.physics import birdcage_maps, estimate_coil_maps
    from monai_diffrecon.physics.functional.sense import complex_randn

    out = []
    for i in range(cohort["kspace_full"].shape[0]):
        g = torch.Generator().manual_seed(seed + i)
        full, maps = cohort["kspace_full"][i:i + 1], cohort["maps"][i:i + 1]
        if coils is not None:
            true_maps = birdcage_maps(coils, tuple(full.shape[-2:])).to(full.dtype)
            full = MultiCoilMRI(true_maps, torch.ones(1, 1, 1, 1)).expand(cohort["truth"][i][None, None].to(full.dtype))
            W = full.shape[-1]
            acs = torch.zeros(1, 1, 1, W)
            acs[..., W // 2 - 10:W // 2 + 10] = 1
            maps = estimate_coil_maps(full * acs, calib_size=20).to(full.dtype)
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


def mri_method(name: str, p: dict, unf, steps: int, oracle):
    """``name`` with settings ``p`` as ``run(case, generator) → (complex (H, W), NFE)``."""
    from monai_diffrecon.physics.functional.sense import channels_to_complex, sense_combine
    from monai_diffrecon.recon.cg import cg_sense

    from mri import tv_admm as tv_admm_mri  # noqa: E402

    if name == "zero-filled":
        return lambda c, g: (sense_combine(c["y"], c["maps"])[0, 0], 0)
    if name == "SENSE-CG":
        return lambda c, g: (cg_sense(c["op"], c["y"], 0.0, p["iters"])[0, 0], 0)
    if name == "TV (ADMM)":
        # 800 ADMM iterations: converged (results/mri_tv_convergence.md); the default 30 understated TV by several dB
        return lambda c, g: (channels_to_complex(tv_admm_mri(c["op"] @ ChannelsToComplex(), c["y"], p["lam"], 800))[0, 0], 0)
    if name == MRI_UNF:
        return _complex_run(DiffUnfolding(unf, num_steps=steps, **p), wrap=False)
    if name == REG:
        return _complex_run(DiffUnfolding(unf, num_steps=1, **p), wrap=False)
    if name == MRI_DIFFPIR:
        return _complex_run(DiffPIR(oracle, 10, sigma_y=MRI_SIGMA, clip=(-2.0, 2.0), **p))
    if name == MRI_DPS:
        return _complex_run(DPS(oracle, 10, sigma_y=MRI_SIGMA, clip=(-2.0, 2.0), **p))
    if name == MRI_PNP:
        return _complex_run(PnPDM(oracle, sigma_y=MRI_SIGMA, num_iters=10, burn_in=5, rho_decay=0.8, prior_steps=10, prior_spacing="uniform", **p))
    raise KeyError(name)


def _complex_run(sampler, wrap: bool = True, num_samples: int = 1):
    """A sampler as ``(case, generator) → (complex (H, W), NFE)`` (the mean over ``num_samples`` samples); ``wrap``:
    the prior works on (real, imaginary) channels."""
    from monai_diffrecon.physics.functional.sense import channels_to_complex

    def run(a, g):
        out = sampler(a["y"], a["op"] @ ChannelsToComplex() if wrap else a["op"], generator=g, num_samples=num_samples, progress=False)
        return (channels_to_complex(out.mean) if wrap else out.mean)[0, 0], out.nfe
    return run


def main_mri(a) -> None:
    from monai_diffrecon.diffusion import DiffusionPrior
    from monai_diffrecon.evaluation import Results, Target, grid_search, run_info, target_spec
    from monai_diffrecon.evaluation.targets import check_target
    from monai_diffrecon.training.mri_cohort import cached_mri_cohort
    from monai_diffrecon.workflows.mri import magnitude_metrics

    from mri import ORACLE  # noqa: E402

    started = time.perf_counter()
    d = Path(a.cohort_dir)
    test = cached_mri_cohort(d / f"mri_test_{a.n_test}.pt", a.n_test, "test")
    val_cohort = cached_mri_cohort(d / f"mri_val_{a.n_val}.pt", a.n_val, "val")
    unf, steps = load_mri_unfolding()
    oracle_net = load_verified(diffusion_unet(2, 2, size="small"), ORACLE / "model.pt", (ORACLE / "model.sha256").read_text().split()[0])
    oracle = DiffusionPrior(oracle_net.requires_grad_(False), make_scheduler())
    out = Path(a.out if a.out != str(ROOT / "results" / "unfolding.md") else ROOT / "results" / "unfolding_mri.md")

    def psnr(run, c, seed, m=""):  # (complex reconstruction, NFE) with the case's seed; DPS needs gradients
        with torch.enable_grad() if m == MRI_DPS else torch.no_grad():
            x, n = run(c, torch.Generator().manual_seed(seed))
        return x.detach(), n

    # ---- tuning on validation slices only (the training sampler's random R = 4 lines), the same budget for every method
    val = mri_cases(val_cohort, mri_acquisitions()["random R=4 (20 ACS)"][0], 52_000)
    val_zf = float(np.mean([magnitude_metrics(psnr(mri_method("zero-filled", {}, unf, steps, oracle), c, 0)[0][None], c["truth"][None])["psnr"] for c in val]))
    print(f"validation: {len(val)} slices, zero-filled {val_zf:.2f} dB", flush=True)
    tuning = {}
    for m, grid in MRI_GRIDS.items():
        def score(p, m=m):
            run = mri_method(m, p, unf, steps, oracle)
            v = float(np.mean([magnitude_metrics(psnr(run, c, 0, m)[0][None], c["truth"][None])["psnr"] for c in val]))
            print(f"  tune {m} {p}: {v:.2f} dB", flush=True)
            return v
        tuning[m] = grid_search(score, grid, BUDGET)
    (out.with_suffix(".chosen.json")).write_text(json.dumps({"budget": BUDGET, "grids": MRI_GRIDS, "n_val": a.n_val,
                                                             "tuning": {m: t.as_dict() for m, t in tuning.items()}}, indent=1) + "\n")

    # ---- test slices with the chosen settings
    runs = {"zero-filled": mri_method("zero-filled", {}, unf, steps, oracle), **{m: mri_method(m, t.params, unf, steps, oracle) for m, t in tuning.items()}}
    for m, (k, n) in UNF_MEANS.items():  # posterior means: the 10-NFE row's settings, more samples
        runs[m] = _complex_run(DiffUnfolding(unf, num_steps=k, **tuning[MRI_UNF].params), wrap=False, num_samples=n)
    acqs = {k: v for i, (k, v) in enumerate(mri_acquisitions().items()) if a.acquisitions is None or i in a.acquisitions}
    rows, example = [], {}
    for j, (aname, (make_mask, seen)) in enumerate(mri_acquisitions().items()):
        if aname not in acqs:
            continue
        cases = mri_cases(test, make_mask, 62_000 + 1000 * j, COIL_SWAPS.get(aname))[: a.limit]
        for i, c in enumerate(cases):
            r_true = float(c["mask"].numel() / c["mask"].sum())  # 1D line mask (…, 1, W) or 2D mask (…, H, W)
            for m, run in runs.items():
                t0 = time.perf_counter()
                x, n = psnr(run, c, i, m)
                dt = time.perf_counter() - t0
                rows.append({"kernel": aname, "seen": seen, "image": f"test_{i}", "method": m, "R": r_true,
                             **magnitude_metrics(x[None], c["truth"][None]), "nfe": n, "seconds": dt})
                print(f"{aname} {i} {m}: {rows[-1]['psnr']:.2f} dB {dt:.1f} s", flush=True)
                if i == 0:
                    example.setdefault(aname, {"truth": c["truth"].abs(), "mask": c["mask"][0, 0].expand(c["truth"].shape)})[m] = x.abs()

    # per slice: the mean over its seen acquisitions and over its unseen ones, for every method (the loss, paired by slice)
    acc: dict = {}
    for r in rows:
        acc.setdefault((r["image"], r["method"], r["seen"]), []).append(r["psnr"])
    by_image = [{"image": im, "method": f"{m} | {'seen' if sn else 'unseen'} masks", "psnr": float(np.mean(v))} for (im, m, sn), v in acc.items()]
    res, res_img = Results(rows, ("image", "kernel")), Results(by_image, ("image",))
    ks = list(acqs)
    n_seen, n_unseen = sum(acqs[k][1] for k in ks), sum(not acqs[k][1] for k in ks)
    n_img = len({r["image"] for r in rows})
    protocol = (f"multi-coil MRI (8 coils, complex noise σ = {MRI_SIGMA} on the acquired samples); PSNR/SSIM of the magnitude over the whole "
                f"128² slice against the fully sampled reference, peak = max of the reference; {n_img} held-out slices × {len(ks)} "
                f"acquisitions ({n_seen} seen families, {n_unseen} unseen); every method tuned on {len(val)} validation slices at random "
                f"R = 4, {BUDGET} settings at most")
    targets = [Target("MRI Diff-Unfolding (10 NFE) beats PnP-DM (10 NFE) on seen masks", MRI_UNF, MRI_PNP, "psnr", 0.0, "unfolding_mri.md",
                      {"seen": True}, trivial="zero-filled")]
    t_loss = Target("MRI Diff-Unfolding loses ≤ 0.5 dB on unseen masks", f"{MRI_UNF} | unseen masks", f"{MRI_UNF} | seen masks", "psnr", -0.5,
                    "unfolding_mri.md")
    loss_protocol = f"per slice: the mean over its {n_unseen} unseen acquisitions minus the mean over its {n_seen} seen ones ({n_img} slices)"
    specs = [target_spec(t, ("image", "kernel"), protocol) for t in targets] + [target_spec(t_loss, ("image",), loss_protocol, rows_key="rows_by_image")]
    entries = [{**check_target(res, t), "protocol": protocol} for t in targets] + [{**check_target(res_img, t_loss), "protocol": loss_protocol}]
    params = {"Diff-Unfolding": sum(p.numel() for p in unf.parameters()), "pixel prior": sum(p.numel() for p in oracle_net.parameters())}
    info = run_info(started)
    out.with_suffix(".json").write_text(json.dumps(
        {"run": info, "protocol": protocol, "sigma": MRI_SIGMA, "budget": BUDGET, "grids": MRI_GRIDS,
         "validation": {"slices": len(val), "acquisition": "random R=4 (20 ACS)", "seed": 52_000, "zero_filled_psnr": val_zf},
         "tuning": {m: t.as_dict() for m, t in tuning.items()}, "params": params, "before": MRI_BEFORE, "rows": rows,
         "rows_by_image": by_image, "targets": specs}, indent=1) + "\n")
    report_mri(res, res_img, tuning, val_zf, len(val), entries, info, protocol, params, ks, out)
    mri_figure(example, out.with_suffix(".png"), MRI_UNF)


def report_mri(res, res_img, tuning, val_zf, n_val, entries, info, protocol, params, ks, out: Path) -> None:
    from monai_diffrecon.evaluation import targets_section

    ms = res.methods()
    all_acq = list(mri_acquisitions())
    lines = ["# Diff-Unfolding: multi-coil MRI at seen and unseen sampling patterns", "",
             _command_line(info), "",
             f"**Protocol.** {protocol}. Coil maps: each slice's ESPIRiT maps from its R = 4 calibration (a separate reference scan) "
             f"for every acquisition. Parameters: Diff-Unfolding {params['Diff-Unfolding'] / 1e6:.2f} M, clean-image prior (unconditional, "
             f"DiffPIR / PnP-DM) {params['pixel prior'] / 1e6:.2f} M. The paper (Diff-Unfolding) evaluates on fastMRI knee/brain at 320² with "
             "real coil data and reports PSNR/SSIM/LPIPS; here the anatomy is simulated from MNI152 at 128² (no fastMRI download) and "
             "LPIPS is not computed (its weights are fetched at run time, no network here).", "",
             "## Test results (mean [95 % bootstrap CI] over cases)", "",
             "| method | NFE | PSNR seen masks | PSNR unseen masks | loss on unseen (seen − unseen, per slice) | SSIM (all) | s / slice | vs zero-filled |",
             "|---|---|---|---|---|---|---|---|"]
    failed = []
    for m in ms:
        s, u = res.estimate(m, "psnr", seen=True), res.estimate(m, "psnr", seen=False)
        loss = res_img.compare(f"{m} | seen masks", f"{m} | unseen masks", "psnr")
        rs = [r for r in res.rows if r["method"] == m]
        status = _guard_status(res, m, "zero-filled", failed)
        lines.append(f"| {m} | {int(np.mean([r['nfe'] for r in rs]))} | {s} | {u} | {loss.mean:+.2f} [{loss.low:+.2f}, {loss.high:+.2f}] | "
                     f"{res.estimate(m, 'ssim').mean:.3f} | {np.mean([r['seconds'] for r in rs]):.2f} | {status} |")
    heads = [f"{k} (true R {np.mean([r['R'] for r in res.rows if r['kernel'] == k]):.1f}, {'seen' if mri_acquisitions()[k][1] else 'unseen'})" for k in ks]
    lines += ["", "\"vs zero-filled\": the broken-baseline guard over all cases (ok only if the 95 % CI of the paired gain over the zero-filled "
              "SENSE combination is above 0); a failed row is never counted as beaten. \"loss on unseen\" compares different sampling patterns "
              "(R = 8 is also a harder problem than R = 4 or 6), so the loss of the methods with *no training operator* (zero-filled, SENSE-CG, "
              "TV, and the unconditional-prior DiffPIR / PnP-DM) is the reference for how much of Diff-Unfolding's loss is generalisation.", "",
              "Per acquisition (PSNR, dB, mean over slices; before: the 2026-11-29 run on the first 4 of these slices with the same mask and noise draws, baselines untuned):", "",
              "| method | " + " | ".join(heads) + " |", "|---|" + "---|" * len(ks)]
    for m in ms:
        b = MRI_BEFORE.get(m)
        lines.append(f"| {m} | " + " | ".join(f"{res.estimate(m, 'psnr', kernel=k).mean:.2f}" + (f" (before {b[all_acq.index(k)]:.2f})" if b else "")
                                             for k in ks) + " |")
    lines += ["", f"## Paired differences (PSNR, dB; positive = {MRI_UNF} better)", "",
              "| baseline | seen masks [95 % CI] | unseen masks [95 % CI] |", "|---|---|---|"]
    lines += _paired_rows(res, MRI_UNF, ms)
    lines += ["", "A posterior *sample* has twice the expected squared error of the posterior *mean* (E‖x − x₀‖² = 2 tr Cov[x₀ | y] for x "
              "drawn from p(x₀ | y)), i.e. ≈ 3 dB less PSNR where the posterior is wide; the 1-step reading of the same network is its "
              "estimate of E[x₀ | y]. PnP-DM's output is the average of its 5 post-burn-in Gibbs samples; Diff-Unfolding's, DiffPIR's and DPS's "
              "are single samples; the two 'mean of … samples' rows average Diff-Unfolding samples (the 10-NFE row's settings, not tuned "
              "separately; readings of the same weights, not baselines). The coil-count acquisitions re-simulate each slice on 4 or 16 "
              "birdcage coils (training used 8) with ESPIRiT maps from the new data: an operator swap beyond the mask.", "",
              f"## Tuning (validation split only: {n_val} validation slices at random R = 4, zero-filled {val_zf:.2f} dB; at most {BUDGET} settings per method)", "",
              "| method | grid | chosen | validation PSNR | on the grid's edge |", "|---|---|---|---|---|"]
    lines += _tuning_rows(tuning, MRI_GRIDS)
    lines += ["", "Every trial (setting → mean validation PSNR) is in unfolding_mri.json under `tuning`. "
              + (f"Failed baselines (not above zero-filled after tuning): {', '.join(failed)}." if failed else "No baseline failed the guard."), ""]
    lines += targets_section(entries)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


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
    ap.add_argument("--acquisitions", type=lambda v: [int(i) for i in v.split(",")], default=None,
                    help="--mri: indices into mri_acquisitions() to test (default: all six)")
    ap.add_argument("--n-val", type=int, default=None, help=f"validation cases (natural: {N_VAL}; --mri: 4)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.n_val is None:
        a.n_val = 4 if a.mri else N_VAL
    if a.mri:
        if not a.cohort_dir:
            ap.error("--mri needs --cohort-dir")
        main_mri(a)
        return
    main_natural(a)


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
