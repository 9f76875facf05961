"""Samplers on a small trained prior: quality and wall time vs NFE, ours vs deepinv → benchmarks/results/samplers.md.

Usage:
    make bench-samplers    # = .venv-bench/bin/python benchmarks/samplers.py (deepinv lives in .venv-bench)
    .venv/bin/python benchmarks/samplers.py --no-deepinv   # ours only

Prior: ``benchmarks/weights/bench_prior_mr32`` (tiny MONAI DiffusionModelUNet, 0.28 M parameters, trained by
``benchmarks/train_bench_prior.py`` on MR-like phantom magnitudes, 32², [−1, 1]). Test images: 8 phantoms with
seeds 0–7 (training used seeds ≥ 1000). Tasks, defined on [0, 1] images (deepinv's convention):

* MRI 4×: 8 birdcage coils, random phase-encode lines with 4 ACS lines, complex Gaussian noise σ = 0.01;
  operator ``ComplexToReal @ MultiCoilMRI @ RealToComplex`` (real in / real out).
* Gaussian deblurring: circular 7×7 Gaussian kernel (σ = 1 px), noise σ = 0.02.

Our samplers work in the prior's [−1, 1] space: ``y' = 2y − A·1`` and ``σ' = 2σ`` give the equivalent linear
problem. Both DiffPIRs follow the reference code: x̂₀ clamped to the data range before the data step, quadratic
timestep skip. deepinv's DPS and DiffPIR get the same network through a ``Denoiser`` wrapper
``D(x, σ) = (prior.denoise(2x − 1, 2σ) + 1)/2`` (its [0, 1] denoiser interface). Same operator, same network, same
process, batch of 8 images per call; PSNR/SSIM on [0, 1] (scikit-image); time is wall time per image.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import math
import time
from pathlib import Path

import numpy as np
import torch

from monai_diffrecon.data.mri_sim import mr_phantom
from monai_diffrecon.diffusion import DiffusionPrior, make_scheduler
from monai_diffrecon.networks import diffusion_unet
from monai_diffrecon.physics import Blur, ComplexToReal, MultiCoilMRI, RealToComplex, birdcage_maps, gaussian_kernel, random_lines_mask
from monai_diffrecon.samplers import DDNM, DPS, DiffPIR, PnPDM, ScorePnP

ROOT = Path(__file__).resolve().parent
WEIGHTS = ROOT / "weights" / "bench_prior_mr32"
OUT = ROOT / "results" / "samplers.md"
SIZE = 32


def load_prior() -> DiffusionPrior:
    data = (WEIGHTS / "model.pt").read_bytes()
    expected = (WEIGHTS / "model.sha256").read_text().split()[0]
    if hashlib.sha256(data).hexdigest() != expected:
        raise SystemExit(f"{WEIGHTS / 'model.pt'}: sha256 mismatch")
    net = diffusion_unet(2, 1, size="tiny")
    net.load_state_dict(torch.load(WEIGHTS / "model.pt", map_location="cpu", weights_only=True))
    net.eval().requires_grad_(False)
    return DiffusionPrior(net, make_scheduler())


def test_images(n: int = 8) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.stack([mr_phantom(SIZE, g).abs() for _ in range(n)]).float()[:, None]
    return x / x.amax(dim=(1, 2, 3), keepdim=True)  # [0, 1]


def tasks(x01: torch.Tensor):
    g = torch.Generator().manual_seed(7)
    maps = birdcage_maps(8, (SIZE, SIZE))
    mask = random_lines_mask(SIZE, 4, 4, generator=g)
    mri = ComplexToReal() @ MultiCoilMRI(maps, mask) @ RealToComplex()
    blur = Blur(gaussian_kernel(1.0, size=7))
    out = {}
    for name, op, sigma in (("MRI 4x (8 coils)", mri, 0.01), ("Gaussian deblur (σ=1 px)", blur, 0.02)):
        out[name] = (op, measure(op, x01, sigma, g), sigma)
    return out


def measure(op, x: torch.Tensor, sigma: float, g: torch.Generator) -> torch.Tensor:
    """``A x + n``; for MRI the noise only on sampled k-space locations (unsampled ones are exact zeros)."""
    y = op(x)
    n = sigma * torch.randn(y.shape, generator=g)
    if len(getattr(op, "ops", ())) > 1 and hasattr(op.ops[1], "mask"):
        n = n * op.ops[1].mask.expand(1, 1, SIZE, SIZE)[..., None]
    return y + n


def metrics(x01: torch.Tensor, ref: torch.Tensor) -> tuple[float, float]:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    p, s = [], []
    for a, b in zip(x01.clamp(0, 1).numpy(), ref.numpy()):
        p.append(peak_signal_noise_ratio(b[0], a[0], data_range=1.0))
        s.append(structural_similarity(b[0], a[0], data_range=1.0))
    return float(np.mean(p)), float(np.mean(s))


def ours(prior, name: str, nfe: int, dps_zeta: float = 1.0, diffpir_lam: float = 7.0):
    """Our sampler for a target NFE budget (PnP-DM: iterations × prior steps ≈ NFE)."""
    return {
        "DPS": lambda s: DPS(prior, nfe, zeta=dps_zeta),
        "DDNM": lambda s: DDNM(prior, nfe, eta=0.85, scale=1.0, sigma_y=s),
        "DiffPIR": lambda s: DiffPIR(prior, nfe, lam=diffpir_lam, zeta=0.3, sigma_y=s, clip=(-1.0, 1.0), spacing="quad"),
        "PnP-DM": lambda s: PnPDM(prior, sigma_y=s, num_iters=max(4, nfe // 10), burn_in=max(2, nfe // 20), rho0=5.0, rho_decay=0.8, rho_min=max(s, 0.05), prior_steps=40, prior_spacing="uniform"),
        "ScorePnP-ADMM": lambda s: ScorePnP(prior, "admm", num_iters=nfe, sigma_start=0.5, sigma_end=0.02, lam=1.0, sigma_y=s),
        "ScorePnP-DPIR": lambda s: ScorePnP(prior, "hqs", num_iters=nfe, sigma_start=0.5, sigma_end=0.02, lam=0.27, sigma_y=s),
    }[name]


class DeepinvDenoiser(torch.nn.Module):
    """Our prior's VE denoiser in deepinv's [0, 1] ``Denoiser(x, sigma)`` interface."""

    def __init__(self, prior):
        super().__init__()
        self.prior = prior

    def forward(self, x, sigma, *args, **kwargs):
        s = torch.as_tensor(sigma, dtype=torch.float64).flatten()
        s = float(s[0]) if s.numel() else float(sigma)
        return (self.prior.denoise(2 * x.float() - 1, 2 * s) + 1) / 2


DPS_WEIGHTS = {"ours": [0.3, 1.0, 3.0], "deepinv": [("annealed", 1.0), ("norm", 10.0), ("norm", 100.0), ("norm", 1000.0)]}
DIFFPIR_LAMBDAS = [1.75, 3.5, 7.0, 14.0, 28.0]


def tune_weights(prior, op, sigma, have_deepinv: bool, nfe: int = 100, diffpir_nfe: int = 20) -> dict:
    """Choose, for each implementation separately, DPS's guidance weight and DiffPIR's λ on 2 validation phantoms
    (seed 99, not test images). deepinv's residual-norm DPS guidance needs a weight of order ‖r‖/σ_y² (its docs),
    and the two DiffPIRs scale ρ_t = λσ_y²/σ_t² differently (deepinv's prox uses γ = 1/(2ρ) on [0, 1] images, ours
    γ = 1/ρ in the prior's [−1, 1] space), so one shared λ would favour one of them."""
    g = torch.Generator().manual_seed(99)
    xv = torch.stack([mr_phantom(SIZE, g).abs() for _ in range(2)]).float()[:, None]
    xv = xv / xv.amax(dim=(1, 2, 3), keepdim=True)
    yv = measure(op, xv, sigma, g)
    yv_pm = 2 * yv - op(torch.ones_like(xv))

    def score(smp):
        return metrics((smp(yv_pm, op, generator=torch.Generator().manual_seed(5), progress=False).mean + 1) / 2, xv)[0]

    def best_of(scores):
        return max(scores, key=scores.get)

    best = {"ours": {"dps": best_of({w: score(DPS(prior, nfe, zeta=w)) for w in DPS_WEIGHTS["ours"]}),
                     "diffpir": best_of({lam: score(DiffPIR(prior, diffpir_nfe, lam=lam, zeta=0.3, sigma_y=2 * sigma, clip=(-1.0, 1.0), spacing="quad")) for lam in DIFFPIR_LAMBDAS})}}
    if have_deepinv:
        best["deepinv"] = {
            "dps": best_of({w: metrics(run_deepinv("DPS", prior, op, yv, sigma, nfe, seed=5, dps=w), xv)[0] for w in DPS_WEIGHTS["deepinv"]}),
            "diffpir": best_of({lam: metrics(run_deepinv("DiffPIR", prior, op, yv, sigma, diffpir_nfe, seed=5, lam=lam), xv)[0]
                                for lam in DIFFPIR_LAMBDAS}),
        }
    return best


def run_deepinv(method: str, prior, op, y, sigma, nfe: int, seed: int, dps=("norm", 1.0), lam: float = 7.0):
    import deepinv as dinv

    physics = dinv.physics.LinearPhysics(A=lambda v: op(v.float()), A_adjoint=lambda v: op.adjoint(v.float()),
                                         noise_model=dinv.physics.GaussianNoise(sigma))
    den = DeepinvDenoiser(prior)
    if method == "DPS":
        model = dinv.sampling.DPS(den, num_steps=nfe, guidance=dps[0], weight=dps[1], rng=torch.Generator().manual_seed(seed))
        return model(y.double(), physics, x_init=tuple(op.adjoint(y).shape)).float()
    torch.manual_seed(seed)
    model = dinv.sampling.DiffPIR(den, dinv.optim.data_fidelity.L2(), sigma=sigma, max_iter=nfe, zeta=0.3, lambda_=lam)
    return model(y, physics).float()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--no-deepinv", action="store_true")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    prior = load_prior()
    x01 = test_images()
    have_deepinv = not a.no_deepinv
    if have_deepinv:
        try:
            import deepinv  # noqa: F401
        except ImportError:
            have_deepinv = False
    grids = {"DPS": (100, 250), "DDNM": (25, 100), "DiffPIR": (20, 50, 100), "PnP-DM": (100, 300), "ScorePnP-ADMM": (20, 50), "ScorePnP-DPIR": (20, 50)}
    lines = [
        "# Samplers on a small trained prior: quality and time vs NFE",
        "",
        f"Generated by `{'.venv-bench' if have_deepinv else '.venv'}/bin/python benchmarks/samplers.py` on {datetime.date.today()} "
        f"(torch {torch.__version__}, {torch.get_num_threads()} CPU threads). Prior: tiny MONAI DiffusionModelUNet (0.28 M params) "
        "trained on 32² MR-like phantoms (`benchmarks/train_bench_prior.py`); 8 held-out phantoms; PSNR/SSIM on [0, 1].",
        "deepinv rows use the *same* network (wrapped as a deepinv Denoiser), operator and data, in the same run.",
        "",
    ]
    examples = {}
    for task, (op, y, sigma) in tasks(x01).items():
        ones = torch.ones_like(x01)
        y_pm, s_pm = 2 * y - op(ones), 2 * sigma
        lines += [f"## {task}", "", "| method | implementation | NFE | PSNR (dB) | SSIM | time / image (s) |", "|---|---|---|---|---|---|"]
        zf = op.adjoint(y)
        from monai_diffrecon.samplers.base import regularised_start

        psnr0, ssim0 = metrics((regularised_start(y_pm, op, s_pm) + 1) / 2, x01)
        lines.append(f"| Tikhonov start (no prior) | — | 0 | {psnr0:.2f} | {ssim0:.3f} | — |")
        pairs = {}
        w = tune_weights(prior, op, sigma, have_deepinv)
        lines.insert(len(lines) - 3, f"Chosen per implementation on 2 validation phantoms: DPS guidance (100 NFE) — ours ζ = {w['ours']['dps']} of "
                     f"{DPS_WEIGHTS['ours']}" + (f", deepinv (guidance, weight) = {w['deepinv']['dps']} of {DPS_WEIGHTS['deepinv']}" if have_deepinv else "")
                     + f"; DiffPIR λ (20 NFE, ζ = 0.3) of {DIFFPIR_LAMBDAS} — ours {w['ours']['diffpir']}"
                     + (f", deepinv {w['deepinv']['diffpir']}" if have_deepinv else "") + ".\n")
        for method, nfes in grids.items():
            for nfe in nfes:
                smp = ours(prior, method, nfe, w["ours"]["dps"], w["ours"]["diffpir"])(s_pm)
                t = time.perf_counter()
                out = smp(y_pm, op, generator=torch.Generator().manual_seed(1), progress=False)
                dt = (time.perf_counter() - t) / x01.shape[0]
                rec = (out.mean + 1) / 2
                ps, ss = metrics(rec, x01)
                lines.append(f"| {method} | ours | {out.nfe} | {ps:.2f} | {ss:.3f} | {dt:.3f} |")
                pairs[(method, nfe, "ours")] = (ps, ss, dt)
                examples[(task, f"{method} (ours, {out.nfe})")] = rec
                if have_deepinv and method in ("DPS", "DiffPIR"):
                    t = time.perf_counter()
                    rec_d = run_deepinv(method, prior, op, y, sigma, nfe, seed=1, dps=w["deepinv"]["dps"], lam=w["deepinv"]["diffpir"])
                    dt_d = (time.perf_counter() - t) / x01.shape[0]
                    ps_d, ss_d = metrics(rec_d, x01)
                    lines.append(f"| {method} | deepinv {__import__('deepinv').__version__} | {nfe} | {ps_d:.2f} | {ss_d:.3f} | {dt_d:.3f} |")
                    pairs[(method, nfe, "deepinv")] = (ps_d, ss_d, dt_d)
                    examples[(task, f"{method} (deepinv, {nfe})")] = rec_d
        if have_deepinv:
            lines += ["", "Ours vs deepinv at equal NFE (ΔPSNR > 0: ours more accurate; time ratio < 1: ours faster):", "",
                      "| method | NFE | ΔPSNR (dB) | ΔSSIM | time ratio ours/deepinv |", "|---|---|---|---|---|"]
            for (m, nfe, impl), (ps, ss, dt) in pairs.items():
                if impl == "ours" and (m, nfe, "deepinv") in pairs:
                    pd, sd, td = pairs[(m, nfe, "deepinv")]
                    lines.append(f"| {m} | {nfe} | {ps - pd:+.2f} | {ss - sd:+.3f} | {dt / td:.2f} |")
        lines.append("")
        examples[(task, "truth")] = x01
        examples[(task, "adjoint / zero-filled")] = zf / zf.amax(dim=(1, 2, 3), keepdim=True)
    figure(examples, ROOT / "results" / "samplers.png")
    lines += ["Example reconstructions: `benchmarks/results/samplers.png`.", ""]
    OUT.write_text("\n".join(lines))
    print("\n".join(lines))


def figure(examples: dict, path: Path) -> None:
    from monai_diffrecon.data.preview import save_panels

    panels = [(f"{task.split(' ')[0]}: {name}", img[0, 0].clamp(0, 1).numpy(), "gray") for (task, name), img in examples.items()]
    save_panels(panels, path, ncols=6, title="Samplers on a small trained prior (first test image)")


if __name__ == "__main__":
    main()
