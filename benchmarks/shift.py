"""Distribution shift between diffusion priors from corrupted measurements only, and score alignment (arXiv 2505.11482)
→ benchmarks/results/shift.md (+ shift.json, shift.png).

Usage:
    .venv/bin/python benchmarks/shift.py --work /tmp/shift            # trains the five priors once (resumable), then
                                                                      # estimates, aligns, reconstructs and reports
    .venv/bin/python benchmarks/shift.py --work /tmp/shift --iters 20 --n-eval 8 --out /tmp/s.md   # smoke run

Five data families, one-channel 32² images in [−1, 1], each with its own ε-prior (``diffusion_unet(2, 1, "tiny")``,
DSM, batch 32, ``--iters`` iterations, EMA with warm-up):

* ``brain``   — MNI152-based MR magnitude slices (``mni_mr_slices("train")``: random T1/T2/PD-like contrast, torchio
  augmentation), the in-distribution family p;
* ``brain_b`` — the same generator on other axial blocks of the template (``"val"``): the same contrast model and
  scalp ring but different anatomy levels (``shift.png`` shows how different the 32² slices of the two block sets
  look) — *not* a near-zero control;
* ``phantom`` — the project's synthetic head phantom (``mr_phantom``): another anatomy model;
* ``photos``  — scikit-image photographs (astronaut, coffee, chelsea, rocket, hubble, IHC, retina, clock), 96² patches
  area-downsampled to 32²;
* ``textures`` — scikit-image textures (brick, grass, gravel), likewise.

(a) **Measurement-domain estimate vs clean-image estimate.** For pairs (p‖q) = (brain‖brain_b), (brain‖phantom),
(brain‖photos), (brain‖textures), (photos‖textures) the KL is estimated from ``--n-eval`` held-out clean samples of p
(image domain, the reference) and from the same samples corrupted by random pixel masks keeping 80 %, 50 % and 30 %
of the pixels (measurement domain, Theorem 1 with ``W = E[P]^{-1/2}``, see ``monai_diffrecon.metrics.shift``).
Spearman rank correlation between the two over the pairs, per corruption level and pooled.

(b) **Alignment.** The ``phantom`` prior (out of distribution for brains) is fine-tuned with
``monai_diffrecon.training.align.align_prior`` on 64 and on 128 corrupted brain images only (50 % pixel masks, no
clean image); KL(brain‖·) before/after, and downstream inpainting of held-out brain images (30 % of the pixels,
σ_y = 0.01, DDNM+ with 50 steps; slices from the MNI test blocks) with the OOD, aligned and in-distribution priors:
PSNR.
"""

from __future__ import annotations

import argparse
import math
import copy
import datetime
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from monai_diffrecon.data.mri_sim import mni_mr_slices, mr_phantom
from monai_diffrecon.data.natural import load_skimage, random_patches
from monai_diffrecon.diffusion import DiffusionPrior, make_scheduler
from monai_diffrecon.metrics.shift import default_sigmas, denoiser_from_prior, kl_from_denoisers
from monai_diffrecon.networks import diffusion_unet
from monai_diffrecon.physics import Mask
from monai_diffrecon.samplers import DDNM
from monai_diffrecon.training.align import AlignConfig, align_prior
from monai_diffrecon.training.dsm import DenoisingScoreTrainer, DSMConfig, TensorSampler

ROOT = Path(__file__).resolve().parent
SIZE = 32
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina", "clock")
TEXTURES = ("brick", "grass", "gravel")
PAIRS = [("brain", "brain_b"), ("brain", "phantom"), ("brain", "photos"), ("brain", "textures"), ("photos", "textures")]
KEEP = (0.8, 0.5, 0.3)
#: σ grids: the paper code's (40 linear points from 0.002, step 0.8) and 40 log-spaced points from 0.05 — the KL
#: between the σ = 0.05-smoothed distributions. With ε-networks, D = x − σ ε̂, an ε error δ at low σ adds ‖δ‖²/σ to the
#: integrand whatever the distributions: the first grid point (weight 0.4 in the trapezoid) can dominate.
GRIDS = {"paper grid (0.002 → 31.5, linear)": default_sigmas(), "σ ≥ 0.05 (log-spaced to 31.5)": torch.logspace(math.log10(0.05), math.log10(31.5), 40, dtype=torch.float64)}


def family(name: str, n: int, seed: int, held_out: bool = False) -> torch.Tensor:
    """``n`` images ``(n, 1, 32, 32)`` in [−1, 1] of a family; ``seed`` separates training and evaluation draws;
    ``held_out`` draws brain slices from the MNI test blocks (for the downstream reconstruction)."""
    g = torch.Generator().manual_seed(seed)
    if name in ("brain", "brain_b"):
        with warnings.catch_warnings():  # torchio: its elastic grid is coarse relative to 32² (folding possible; harmless here)
            warnings.simplefilter("ignore", RuntimeWarning)
            split = "test" if held_out else ("train" if name == "brain" else "val")
            x = mni_mr_slices(split, n, size=SIZE, seed=seed).abs()[:, None]
    elif name == "phantom":
        x = torch.stack([mr_phantom(SIZE, g).abs() for _ in range(n)])[:, None]
        x = x / x.amax(dim=(-2, -1), keepdim=True)
    elif name in ("photos", "textures"):
        imgs = [load_skimage(k) for k in (PHOTOS if name == "photos" else TEXTURES)]
        x = torch.nn.functional.avg_pool2d(random_patches(imgs, 3 * SIZE, n, g), 3)
    else:
        raise ValueError(name)
    return (2 * x.float().clamp(0, 1) - 1).contiguous()


def train_prior(name: str, work: Path, iters: int, n_train: int) -> DiffusionPrior:
    out = work / f"prior_{name}"
    data_path = work / f"train_{name}_{n_train}.pt"
    if not data_path.is_file():
        torch.save(family(name, n_train, 1000 + 17 * len(name)), data_path)
    torch.manual_seed(0)
    net = diffusion_unet(2, 1, size="tiny")
    trainer = DenoisingScoreTrainer(net, make_scheduler(), TensorSampler(torch.load(data_path, weights_only=True), augment=True), out,
                                    DSMConfig(max_iterations=iters, batch_size=32, lr=2e-4, checkpoint_every=250), progress=False)
    trainer.run(max_iterations=iters)
    net.load_state_dict(torch.load(out / "model.pt", map_location="cpu", weights_only=True))
    return DiffusionPrior(net.eval().requires_grad_(False), make_scheduler())


def pixel_masks(shape, keep: float, seed: int) -> torch.Tensor:
    return (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < keep).float()


def estimates(priors: dict, n_eval: int) -> list[dict]:
    rows = []
    for grid, sig in GRIDS.items():
        for p, q in PAIRS:
            x = family(p, n_eval, 90_000 + 7 * len(p))
            Dp, Dq = denoiser_from_prior(priors[p]), denoiser_from_prior(priors[q])
            row = {"grid": grid, "p": p, "q": q, "clean": kl_from_denoisers(Dp, Dq, x, sig, generator=torch.Generator().manual_seed(1)).kl}
            for keep in KEEP:
                m = pixel_masks(x.shape, keep, 91_000 + int(100 * keep))
                row[f"keep{keep}"] = kl_from_denoisers(Dp, Dq, m * x, sig, masks=m, generator=torch.Generator().manual_seed(1)).kl
            rows.append(row)
            print(f"{grid}: KL({p}‖{q}): " + ", ".join(f"{k} {v:.1f}" for k, v in row.items() if k not in ("p", "q", "grid")), flush=True)
    return rows


def spearman(a, b) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def inpaint_psnr(prior, x: torch.Tensor, keep: float = 0.3, sigma_y: float = 0.01) -> float:
    m = pixel_masks(x.shape, keep, 95_000)
    A = Mask(m)
    y = A(x + sigma_y * torch.randn(x.shape, generator=torch.Generator().manual_seed(96_000)))
    xh = DDNM(prior, 50, sigma_y=sigma_y)(y, A, generator=torch.Generator().manual_seed(0), progress=False).mean.clamp(-1, 1)
    mse = ((xh - x) ** 2).mean(dim=(1, 2, 3))
    return float((10 * torch.log10(4.0 / mse)).mean())  # peak-to-peak 2 on [−1, 1]


def alignment(priors: dict, n_eval: int, seed_sizes=(64, 128)) -> dict:
    x_eval = family("brain", n_eval, 90_000 + 7 * len("brain"))  # KL: samples of p
    x_test = family("brain", n_eval, 97_000, held_out=True)  # reconstruction: held-out axial blocks
    m_eval = pixel_masks(x_eval.shape, 0.5, 91_050)
    Dp = denoiser_from_prior(priors["brain"])

    sig = GRIDS["σ ≥ 0.05 (log-spaced to 31.5)"]

    def kls(prior):
        Dq = denoiser_from_prior(prior)
        return (kl_from_denoisers(Dp, Dq, x_eval, sig, generator=torch.Generator().manual_seed(1)).kl,
                kl_from_denoisers(Dp, Dq, m_eval * x_eval, sig, masks=m_eval, generator=torch.Generator().manual_seed(1)).kl)

    out = {}
    for label, prior in (("OOD (phantom prior)", priors["phantom"]), ("in-distribution (brain prior)", priors["brain"])):
        out[label] = dict(zip(("kl_clean", "kl_meas"), kls(prior)), psnr=inpaint_psnr(prior, x_test))
        print(label, out[label], flush=True)
    for n in seed_sizes:
        y_clean = family("brain", n, 80_000 + n)  # the corrupted measurements are all alignment sees
        m = pixel_masks(y_clean.shape, 0.5, 81_000 + n)
        net = copy.deepcopy(priors["phantom"].network).requires_grad_(True).train()
        t = time.perf_counter()
        info = align_prior(net, make_scheduler(), m * y_clean, m, AlignConfig(batch_size=8, max_epochs=200, patience=5))
        aligned = DiffusionPrior(net.eval().requires_grad_(False), make_scheduler())
        label = f"aligned with {n} corrupted brain images"
        out[label] = dict(zip(("kl_clean", "kl_meas"), kls(aligned)), psnr=inpaint_psnr(aligned, x_test), epochs=info["epochs"],
                          seconds=time.perf_counter() - t)
        print(label, out[label], flush=True)
    return out


def report(rows, align, a, seconds) -> None:
    lines = ["# Distribution shift from corrupted measurements, and score alignment", "",
             f"Generated by `.venv/bin/python benchmarks/shift.py --work <dir> --iters {a.iters} --n-eval {a.n_eval}` on "
             f"{datetime.date.today()} (torch {torch.__version__}, {a.threads} CPU thread(s); {seconds / 60:.0f} min for the estimates, "
             f"alignment and figure once the five priors are trained — about 15 CPU-minutes each, run once and cached in --work). Five 32² one-channel families, one ε-prior each (MONAI `DiffusionModelUNet`, preset `tiny`, "
             f"{a.iters} DSM iterations, batch 32, {a.n_train} training images); KL in nats on two σ grids (below); "
             f"estimates from the same {a.n_eval} samples of p (not used in training), one noise draw per sample and σ; "
             "measurement masks: independent random pixels. Alignment KLs use the σ ≥ 0.05 grid.", "",
             "## (a) Measurement-domain estimate vs clean-image estimate", ""]
    rho_all = {}
    for grid in GRIDS:
        rs = [r for r in rows if r["grid"] == grid]
        lines += [f"### {grid}", "", "| KL(p‖q) | clean images | 80 % pixels | 50 % pixels | 30 % pixels |", "|---|---|---|---|---|"]
        for r in rs:
            lines.append(f"| {r['p']} ‖ {r['q']} | {r['clean']:.1f} | " + " | ".join(f"{r[f'keep{k}']:.1f}" for k in KEEP) + " |")
        clean = [r["clean"] for r in rs]
        rhos = {k: spearman(clean, [r[f"keep{k}"] for r in rs]) for k in KEEP}
        pooled = spearman(clean * len(KEEP), [r[f"keep{k}"] for k in KEEP for r in rs])
        rho_all[grid] = min(rhos.values())
        lines += ["", "Spearman rank correlation with the clean-image estimate: " + ", ".join(f"{int(100 * k)} % pixels ρ = {v:.2f}" for k, v in rhos.items())
                  + f"; pooled over the {len(rs) * len(KEEP)} (pair, level) points ρ = {pooled:.2f}.", ""]
    lines += ["Target (the measurement-domain estimate tracks the clean-image KL, ≥ 4 pairs × ≥ 3 levels): "
              + "; ".join(f"{g}: {'**met**' if v >= 0.8 else '**MISSED**'} (lowest per-level ρ {v:.2f})" for g, v in rho_all.items())
              + ". With 5 pairs, ρ = 1 is the same order and one swapped neighbour gives 0.9.", "",
              "## (b) Aligning the out-of-distribution prior with corrupted in-distribution measurements", "",
              "| prior | KL(brain‖·) clean, σ ≥ 0.05 | KL(brain‖·) from 50 % pixels, σ ≥ 0.05 | inpainting PSNR (30 % pixels, DDNM+ 50 steps) | epochs | time (s) |",
              "|---|---|---|---|---|---|"]
    for k, v in align.items():
        lines.append(f"| {k} | {v['kl_clean']:.1f} | {v['kl_meas']:.1f} | {v['psnr']:.2f} | {v.get('epochs', '')} | "
                     f"{v['seconds']:.0f} |" if "seconds" in v else f"| {k} | {v['kl_clean']:.1f} | {v['kl_meas']:.1f} | {v['psnr']:.2f} | | |")
    ood, ind = align["OOD (phantom prior)"], align["in-distribution (brain prior)"]
    best = max((v for k, v in align.items() if k.startswith("aligned")), key=lambda v: v["psnr"])
    lines += ["", f"Alignment moves the OOD prior from {ood['psnr']:.2f} dB to {best['psnr']:.2f} dB (in-distribution {ind['psnr']:.2f}); "
              f"the paper's example: 25.67 → 26.16 dB vs 28.57. KL reduced: "
              + ("yes" if all(v["kl_clean"] < ood["kl_clean"] for k, v in align.items() if k.startswith("aligned")) else "NO") + ".", ""]
    g0, g1 = list(GRIDS)
    ratio = float(np.median([a_["clean"] / b_["clean"] for a_, b_ in zip([r for r in rows if r["grid"] == g0], [r for r in rows if r["grid"] == g1])]))
    lines += ["## Reading", "",
              "Both targets are missed with these priors, and the figure `shift.png` shows the main reason: the tiny "
              f"ε-networks ({a.iters} CPU iterations each) are far from converged — most of their unconditional DDIM samples "
              "are noise — so D^p − D^q is dominated by each network's own error rather than by the difference between the "
              "distributions. That error enters the integrand as ‖δε̂‖²/σ at low σ, which is why the paper's grid (first "
              f"point 0.002, weight 0.4) gives estimates {ratio:.0f}× (median over pairs) those of the σ ≥ 0.05 grid; the paper's EDM "
              "networks (skip-parameterised, D → x as σ → 0) do not have this term. The estimator itself is verified on closed-form "
              "Gaussian pairs (`tests/metrics/test_shift.py`, exact to the quadrature). Alignment with the masked loss "
              "(noisy masked images as network input, error on observed pixels) moved the phantom prior *away* from the "
              "brain prior here — it learns the statistics of images with 50 % of their pixels zeroed; the paper aligns "
              "converged EDM priors. A fair rerun needs converged priors (a GPU run) — not done.", ""]
    Path(a.out).write_text("\n".join(lines))
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True, help="cache folder: training images, prior checkpoints (resumable)")
    ap.add_argument("--iters", type=int, default=4000)
    ap.add_argument("--n-train", type=int, default=2048)
    ap.add_argument("--n-eval", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only-train", nargs="*", default=None, help="train these families' priors and stop (parallel runs)")
    ap.add_argument("--out", default=str(ROOT / "results" / "shift.md"))
    ap.add_argument("--report-only", action="store_true", help="rewrite the report from OUT.json")
    a = ap.parse_args()
    if a.report_only:
        d = json.loads(Path(a.out).with_suffix(".json").read_text())
        report(d["rows"], d["alignment"], a, d["seconds"])
        return
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    names = ("brain", "brain_b", "phantom", "photos", "textures")
    if a.only_train is not None:
        for n in a.only_train:
            train_prior(n, work, a.iters, a.n_train)
        return
    priors = {n: train_prior(n, work, a.iters, a.n_train) for n in names}
    print(f"priors ready ({time.perf_counter() - t0:.0f} s)", flush=True)
    rows = estimates(priors, a.n_eval)
    align = alignment(priors, a.n_eval)
    Path(a.out).with_suffix(".json").write_text(json.dumps({"rows": rows, "alignment": align, "seconds": time.perf_counter() - t0}, indent=1))
    report(rows, align, a, time.perf_counter() - t0)
    figure(priors, Path(a.out).with_suffix(".png"))


def figure(priors: dict, path: Path) -> None:
    """One row per family: training examples and unconditional samples of its prior (DDIM 50 steps)."""
    from monai_diffrecon.data.preview import save_panels
    from monai_diffrecon.samplers import Unconditional

    panels = []
    for name, prior in priors.items():
        real = family(name, 3, 7)
        fake = Unconditional(prior, (3, 1, SIZE, SIZE), 50, eta=0.0)(None, None, generator=torch.Generator().manual_seed(0), progress=False).mean
        for i in range(3):
            panels.append((f"{name}: data", ((real[i, 0] + 1) / 2).clamp(0, 1).numpy(), "gray"))
        for i in range(3):
            panels.append((f"{name}: prior sample", ((fake[i, 0] + 1) / 2).clamp(0, 1).numpy(), "gray"))
    save_panels(panels, path, ncols=6, title="Families and their priors' samples")


if __name__ == "__main__":
    main()
