"""Diff-Unfolding on natural-image deblurring, at kernels of the training family and at unseen kernels →
benchmarks/results/unfolding.md (+ unfolding.json, unfolding.png).

Usage:
    .venv/bin/python benchmarks/unfolding.py                  # the shipped weights (bundles/natural_unfolding_deblur, natural_blind_deblur)
    .venv/bin/python benchmarks/unfolding.py --limit 1        # smoke run

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
from monai_diffrecon.networks import load_verified, unfolded_denoiser
from monai_diffrecon.physics import Blur, gaussian_kernel
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
        "PnP-DM (10 Gibbs iterations)": PnPDM(prior, sigma_y=sy, num_iters=10, burn_in=5, rho0=0.5, rho_decay=0.8, rho_min=2 * sy, prior_steps=10),
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--out", default=str(ROOT / "results" / "unfolding.md"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
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


def report(rows, a, seconds, params, out: Path) -> None:
    out.with_suffix(".json").write_text(json.dumps({"rows": rows, "params": params, "threads": a.threads}, indent=1))
    ms = list(dict.fromkeys(r["method"] for r in rows))
    ks = list(dict.fromkeys(r["kernel"] for r in rows))

    def mean(f, key="psnr"):
        v = [r[key] for r in rows if f(r)]
        return float(np.mean(v)) if v else float("nan")

    lines = ["# Diff-Unfolding: natural-image deblurring at seen and unseen kernels", "",
             f"Generated {datetime.date.today()} by `python benchmarks/unfolding.py` ({a.threads} threads, {seconds / 60:.1f} min); "
             f"{len({r['image'] for r in rows})} held-out photographs (128²) × {len(ks)} kernels, σ = {SIGMA}. Parameters: "
             f"Diff-Unfolding {params['Diff-Unfolding'] / 1e6:.2f} M, pixel prior {params['pixel prior'] / 1e6:.2f} M. "
             "LPIPS not computed (the packages fetch weights at run time). Setup in the script's docstring.", "",
             "| method | NFE | PSNR seen kernels | PSNR unseen kernels | loss on unseen | SSIM (all) | s / image |", "|---|---|---|---|---|---|---|"]
    for m in ms:
        s, u = mean(lambda r: r["method"] == m and r["seen"]), mean(lambda r: r["method"] == m and not r["seen"])
        lines.append(f"| {m} | {int(mean(lambda r: r['method'] == m, 'nfe'))} | {s:.2f} | {u:.2f} | {s - u:+.2f} | "
                     f"{mean(lambda r: r['method'] == m, 'ssim'):.3f} | {mean(lambda r: r['method'] == m, 'seconds'):.2f} |")
    lines += ["", "Per kernel (PSNR, dB, mean over images):", "", "| method | " + " | ".join(ks) + " |", "|---|" + "---|" * len(ks)]
    for m in ms:
        lines.append(f"| {m} | " + " | ".join(f"{mean(lambda r: r['method'] == m and r['kernel'] == k):.2f}" for k in ks) + " |")
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
