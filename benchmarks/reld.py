"""RELD (latent-denoiser HQS) vs pixel-space DiffPIR vs TV on denoising, deblurring and 4× super-resolution of
held-out photographs → benchmarks/results/reld.md (+ reld.json, reld.png).

Usage:
    .venv/bin/python benchmarks/reld.py                 # the shipped weights of bundles/natural_reld and natural_blind_deblur
    .venv/bin/python benchmarks/reld.py --tune          # the grid search on the tuning image (prints, writes reld_tune.json)

Data: the scikit-image test photographs (camera, moon, coins, cell: never read in training by any prior), central
square area-resampled to 128², grey levels in [0, 1], mapped to the priors' [−1, 1]. Tasks (noise σ on the [0, 1]
scale): ``denoise`` σ = 0.05; ``deblur`` camera-shake kernel (intensity 0.3, seed 130 001, 64² support, never in the
kernel cohort) σ = 0.02; ``sr`` 4× :class:`~monai_diffrecon.physics.Downsample` (Gaussian anti-alias σ = 2 px,
decimation) σ = 0.02. Every method gets the same measurement (same noise draw per image and task).

Methods:
* **RELD** (``bundles/natural_reld``: AutoencoderKL 4× down to 4 × 32² latents at 128², small latent
  ``DiffusionModelUNet``) with the bundle's per-task settings;
* **DiffPIR** in pixel space with the image prior of ``bundles/natural_blind_deblur`` (small ``DiffusionModelUNet``,
  trained on the same patches of the same photographs), x̂₀ clipped to [−1, 1], at 20 and 100 steps;
* **TV**: isotropic TV by ADMM (100 iterations, closed-form data step, :func:`~monai_diffrecon.regularizers.tv_prox`);
* the input (bicubic-upsampled for SR).
Hyper-parameters of RELD, DiffPIR and TV were chosen by ``--tune`` on one *training* photograph (astronaut, central
square at 128²), never on the test images; the grids and the winners are in reld_tune.json.

Wall time: seconds per image on this machine, all methods in the same process with the same thread count, one after
the other (the ratio matters, not the absolute number). NFE = network evaluations (RELD: latent denoiser calls; each
RELD iteration also runs the decoder forward and backward).
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import time
from pathlib import Path

import numpy as np
import torch

from monai_diffrecon.diffusion import DiffusionPrior, make_scheduler
from monai_diffrecon.networks import diffusion_unet, load_verified
from monai_diffrecon.physics import Blur, Downsample, Identity
from monai_diffrecon.regularizers import tv_prox
from monai_diffrecon.samplers import DiffPIR
from monai_diffrecon.samplers.reld import RELD

from natural import central_square, metrics, test_images, test_kernels  # noqa: E402 (sibling script module)

ROOT = Path(__file__).resolve().parent
BUNDLES = ROOT.parent / "bundles"
SIGMAS = {"denoise": 0.05, "deblur": 0.02, "sr": 0.02}
TUNE_IMAGE = "astronaut"


def operator(task: str):
    if task == "denoise":
        return Identity()
    if task == "deblur":
        return Blur(test_kernels()["shake-0.3"][None, None])
    return Downsample(4)


def tuning_image() -> torch.Tensor:
    return central_square(TUNE_IMAGE)


def measure(x: torch.Tensor, task: str, seed: int) -> torch.Tensor:
    """Signed-range measurement ``A(2x − 1) + 2σ n`` (float32, (1, 1, …))."""
    A = operator(task)
    ax = A((2 * x - 1)[None, None].float())
    return ax + 2 * SIGMAS[task] * torch.randn(ax.shape, generator=torch.Generator().manual_seed(seed))


def load_reld() -> tuple[DiffusionPrior, dict]:
    """The bundle's latent prior and its per-task RELD settings, through the bundle's own inference config."""
    from monai.bundle import ConfigParser

    b = BUNDLES / "natural_reld"
    p = ConfigParser()
    p.read_meta(b / "configs" / "metadata.json")
    p.read_config(b / "configs" / "inference.json")
    p["bundle_root"] = str(b)
    prior = p.get_parsed_content("prior")
    return prior, p.get_parsed_content("reld_settings")


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


def make_method(name: str, params: dict, task: str, priors: dict):
    """A callable ``y → (x̂ signed (1, 1, H, W), nfe)``."""
    A, sy = operator(task), 2 * SIGMAS[task]
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


def score(xs: torch.Tensor, truth: torch.Tensor) -> dict:
    return metrics(((xs[0, 0].double() + 1) / 2), truth)


GRIDS = {
    "TV": {"lam": [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1]},
    "DiffPIR-20": {"steps": [20], "lam": [0.1, 0.3, 1.0, 3.0, 7.0], "zeta": [0.3, 0.7, 1.0]},
    "DiffPIR-100": {"steps": [100], "lam": [0.1, 0.3, 1.0, 3.0, 7.0], "zeta": [0.3, 0.7, 1.0]},
    "RELD": {"iters": [30], "beta": [1.0, 3.0, 10.0], "lam": [0.03, 0.1, 0.3, 1.0], "step": [0.3, 1.0, 3.0], "sigma": [0.05, 0.2],
             "output": ["decoded", "image"]},
}


def tune(priors: dict, tasks: list[str], methods: list[str], out: Path) -> dict:
    truth = tuning_image()
    best: dict = json.loads(out.read_text()) if out.is_file() else {}
    for task in tasks:
        y = measure(truth, task, 999)
        for m in methods:
            keys = list(GRIDS[m])
            done = {json.dumps({k: r[k] for k in keys}): r for r in best.get(task, {}).get(m, {}).get("grid", []) if all(k in r for k in keys)}
            results = []
            for vals in itertools.product(*(GRIDS[m][k] for k in keys)):
                params = dict(zip(keys, vals))
                if json.dumps(params) in done:  # measured in an earlier (interrupted or smaller-grid) run: same image, same noise
                    results.append(done[json.dumps(params)])
                    continue
                xs, _ = make_method(m, params, task, priors)(y)
                r = score(xs, truth)
                results.append({**params, **r})
                print(task, m, params, f"{r['psnr']:.2f}", flush=True)
            win = max(results, key=lambda r: r["psnr"])
            best.setdefault(task, {})[m] = {"best": {k: win[k] for k in keys}, "psnr": win["psnr"], "grid": results}
            out.write_text(json.dumps(best, indent=1))
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tune", action="store_true")
    ap.add_argument("--tasks", nargs="+", default=list(SIGMAS))
    ap.add_argument("--methods", nargs="+", default=list(GRIDS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None, help="smoke run: only the first N test images")
    ap.add_argument("--out", default=str(ROOT / "results" / "reld.md"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    latent, settings = load_reld() if "RELD" in a.methods or not a.tune else (None, {})
    priors = {"latent": latent, "pixel": load_pixel_prior()}
    out = Path(a.out)
    tune_file = out.with_name("reld_tune.json")
    if a.tune:
        tune(priors, a.tasks, a.methods, tune_file)
        return
    chosen = json.loads(tune_file.read_text())
    images = dict(list(test_images().items())[: a.limit])
    rows, example = [], {}
    t_start = time.perf_counter()
    for task in a.tasks:
        for i, (name, truth) in enumerate(images.items()):
            y = measure(truth.float(), task, 7000 + i)
            recon = {"input": baseline(y, task)}
            rows.append({"task": task, "image": name, "method": "input", **score(recon["input"], truth), "seconds": 0.0, "nfe": 0})
            for m in a.methods:
                params = settings[task] if m == "RELD" else chosen[task][m]["best"]
                run = make_method(m, params, task, priors)
                t0 = time.perf_counter()
                xs, nfe = run(y)
                dt = time.perf_counter() - t0
                recon[m] = xs
                rows.append({"task": task, "image": name, "method": m, **score(xs, truth), "seconds": dt, "nfe": nfe})
                print(f"{task} {name} {m}: {rows[-1]['psnr']:.2f} dB {dt:.1f} s", flush=True)
            if i == 0:
                example[task] = {"truth": truth, **{k: ((v[0, 0].double() + 1) / 2).clamp(0, 1) for k, v in recon.items()}}
    with torch.no_grad():  # the ceiling of RELD's decoded output: how well the first stage reproduces the clean image
        ae = [score(latent.decode(latent.encode((2 * t - 1)[None, None].float())), t)["psnr"] for t in images.values()]
    report(rows, a, time.perf_counter() - t_start, settings, chosen, out, float(np.mean(ae)))
    figure(example, out.with_suffix(".png"))


def report(rows: list[dict], a, seconds: float, settings: dict, chosen: dict, out: Path, ae_psnr: float) -> None:
    out.with_suffix(".json").write_text(json.dumps({"rows": rows, "settings": settings, "threads": a.threads, "autoencoder_psnr": ae_psnr}, indent=1))
    methods = ["input"] + a.methods
    lines = [f"# RELD vs pixel-space DiffPIR vs TV (natural images, 128², held-out photographs)", "",
             f"Generated {datetime.date.today()} by `python benchmarks/reld.py` ({a.threads} threads, {seconds / 60:.1f} min in all); "
             f"{len({r['image'] for r in rows})} test images × {len(a.tasks)} tasks. Settings: see the script's docstring; "
             "mean over images (± standard deviation of the per-image PSNR).", "",
             f"Autoencoder alone, Dec(E(x)) of the clean test images: {ae_psnr:.2f} dB (the ceiling of RELD's decoded output).", ""]
    for task in a.tasks:
        lines += [f"## {task} (σ = {SIGMAS[task]})", "", "| method | PSNR (dB) | SSIM | NFE | s / image | time vs RELD |", "|---|---|---|---|---|---|"]
        t_reld = np.mean([r["seconds"] for r in rows if r["task"] == task and r["method"] == "RELD"]) if "RELD" in a.methods else float("nan")
        for m in methods:
            rs = [r for r in rows if r["task"] == task and r["method"] == m]
            if not rs:
                continue
            ps = np.array([r["psnr"] for r in rs])
            t = np.mean([r["seconds"] for r in rs])
            ratio = "—" if m == "input" else f"{t / t_reld:.2f}×"
            lines.append(f"| {m} | {ps.mean():.2f} ± {ps.std():.2f} | {np.mean([r['ssim'] for r in rs]):.3f} | "
                         f"{int(np.mean([r['nfe'] for r in rs]))} | {t:.2f} | {ratio} |")
        lines += ["", "Chosen on the tuning image: " + "; ".join(
            f"{m} {chosen[task][m]['best']}" for m in a.methods if m != "RELD" and m in chosen.get(task, {})) +
            f"; RELD (bundle) {settings[task]}.", ""]
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def figure(example: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(example)
    cols = list(next(iter(example.values())))
    fig, ax = plt.subplots(len(tasks), len(cols), figsize=(2.2 * len(cols), 2.3 * len(tasks)), squeeze=False)
    for i, t in enumerate(tasks):
        truth = example[t]["truth"]
        for j, c in enumerate(cols):
            img = example[t][c]
            ax[i, j].imshow(img.numpy(), cmap="gray", vmin=0, vmax=1)
            title = c if c == "truth" else f"{c}\n{metrics(img, truth)['psnr']:.2f} dB"
            ax[i, j].set_title(f"{t}: {title}" if j == 0 else title, fontsize=8)
            ax[i, j].axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
