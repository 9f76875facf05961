"""Samplers on a small trained prior: quality and wall time vs NFE, ours vs deepinv, on the evaluation harness →
benchmarks/results/samplers.md (+ samplers.json, samplers.png).

Usage:
    make bench-samplers    # = OMP_NUM_THREADS=1 .venv-bench/bin/python benchmarks/samplers.py --threads 1 (deepinv lives in .venv-bench)
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/samplers.py --threads 1 --no-deepinv   # ours only
    .venv-bench/bin/python benchmarks/samplers.py --n-test 2 --n-val 1 --repeats 1 --out /tmp/s.md   # smoke run

Prior: ``benchmarks/weights/bench_prior_mr32`` (tiny MONAI DiffusionModelUNet, 0.28 M parameters, trained by
``benchmarks/train_bench_prior.py`` on 2000 MR-like phantom magnitudes drawn from one generator seeded 1000, 32²,
[−1, 1]). Data splits (:data:`SPLIT`, the registry's form: a half-open range of seeds per split, one generator per
phantom): test phantoms = seeds 0, 1, …, n−1 (default 12), validation phantoms = seeds 500, 501, … (default 2); the
training stream is seed 1000 — three disjoint sets. Tasks, defined on [0, 1] images (deepinv's convention), one
fixed operator per task and one noise draw per phantom (generator seeded ``task offset + phantom seed``), shared by
every method:

* MRI 4×: 8 birdcage coils, random phase-encode lines with 4 ACS lines (mask seed 7), complex Gaussian noise
  σ = 0.01 on the sampled k-space locations; operator ``ComplexToReal @ MultiCoilMRI @ RealToComplex``.
* Gaussian deblurring: circular 7×7 Gaussian kernel (σ = 1 px), noise σ = 0.02.

Our samplers work in the prior's [−1, 1] space: ``y' = 2y − A·1`` and ``σ' = 2σ`` give the equivalent linear
problem. Both DiffPIRs follow the reference code: x̂₀ clamped to the data range before the data step, ζ = 0.3; ours
with the quadratic timestep skip. Our DPS clamps x̂₀ to [−1, 1] (the reference code's ``clip_denoised``; deepinv's
DPS clips too); whether it is given σ_y (the library's step bound, made for calibrated posterior spread: on the
validation phantoms at 100 NFE it cost 2–3.5 dB of PSNR at ζ = 3) is a tuned knob. deepinv's DPS and DiffPIR get the same network
through a ``Denoiser`` wrapper ``D(x, σ) = (prior.denoise(2x − 1, 2σ) + 1)/2`` (its [0, 1] denoiser interface).
Same operator, same network, same process, a batch of all test phantoms per call.

Tuning (issue 21): every tuned row — ours: DPS ζ, DDNM η and scale, DiffPIR λ, PnP-DM ρ_min, ScorePnP-ADMM/DPIR λ;
deepinv: DPS (guidance, weight), DiffPIR λ — is tuned *at its own NFE* by
:func:`~monai_diffrecon.evaluation.grid_search` with one budget (:data:`BUDGET` settings) on the validation
phantoms only (:data:`GRIDS`, the grid, every trial, the choice and edge flags go to samplers.json). Statistics:
per-case rows (task, phantom seed, method, implementation, NFE, PSNR, SSIM, seconds per image), mean [95 %
bootstrap CI] per row, paired differences ours − deepinv at equal NFE with CIs, and the broken-baseline guard against
the trivial input (the Tikhonov start ``argmin ‖Ax − y‖² + σ'²‖x‖²`` that our iterative samplers start from): a
deepinv row whose paired gain over it has a CI low bound ≤ 0 is reported as failed, never counted as beaten. Targets
(per task, DPS and DiffPIR at each shared NFE: "ours vs deepinv 0.5.0 at equal NFE: ΔPSNR > 0") are stored under
``"targets"`` in samplers.json (``benchmarks/targets.py`` re-computes them). PSNR/SSIM on [0, 1] over the whole 32²
image against the phantom (scikit-image, data range 1).

Timing: each ours/deepinv pair (DPS, DiffPIR at equal NFE) runs ``--repeats`` times interleaved (ours, deepinv,
ours, deepinv, …) on the whole test batch; the time is the median, the ratio ours/deepinv is taken per pair. The
outputs of the first repeat are scored (the runs are seeded, so repeats reproduce them). The load average
(other processes sharing the cores) is recorded in the run info.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from monai_diffrecon.data.mri_sim import mr_phantom
from monai_diffrecon.diffusion import DiffusionPrior, make_scheduler
from monai_diffrecon.networks import diffusion_unet
from monai_diffrecon.physics import (
    Blur,
    ComplexToReal,
    MultiCoilMRI,
    RealToComplex,
    birdcage_maps,
    gaussian_kernel,
    random_lines_mask,
)
from monai_diffrecon.samplers import DDNM, DPS, DiffPIR, PnPDM, ScorePnP
from monai_diffrecon.samplers.base import regularised_start

ROOT = Path(__file__).resolve().parent
WEIGHTS = ROOT / "weights" / "bench_prior_mr32"
OUT = ROOT / "results" / "samplers.md"
SIZE = 32
#: phantom seeds per split (one generator per phantom; training: the one stream seeded 1000 of train_bench_prior.py)
SPLIT = {"train": range(1000, 1001), "val": range(500, 1000), "test": range(500)}
#: the tasks: name → (operator key, noise σ on [0, 1], noise-generator offset added to the phantom seed)
TASKS = {"MRI 4x (8 coils)": ("mri", 0.01, 10_000), "Gaussian deblur (σ=1 px)": ("blur", 0.02, 20_000)}
TRIVIAL = "Tikhonov start (no prior)"
BUDGET = 6
#: the rows: (sampler, implementation, NFE — for PnP-DM the Gibbs iterations)
ROWS = [("DPS", 100), ("DPS", 250), ("DDNM", 25), ("DDNM", 100), ("DiffPIR", 20), ("DiffPIR", 50), ("DiffPIR", 100),
        ("PnP-DM", 20), ("PnP-DM", 40), ("ScorePnP-ADMM", 20), ("ScorePnP-ADMM", 50), ("ScorePnP-DPIR", 20), ("ScorePnP-DPIR", 50)]
SHARED = ("DPS", "DiffPIR")  # the samplers deepinv has
#: every tuned knob's grid, ≤ BUDGET settings each (deepinv's DPS "norm" weight absorbs ‖r‖/σ_y², its docs: "hundreds";
#: the two DiffPIRs scale ρ_t = λσ_y²/σ_t² differently — deepinv γ = 1/(2ρ) on [0, 1], ours γ = 1/ρ on [−1, 1])
GRIDS = {
    ("DPS", "ours"): {"zeta": [1.0, 3.0, 10.0], "sigma_y": [False, True]},  # σ_y given: the library's bounded step
    ("DDNM", "ours"): {"eta": [0.5, 0.85, 1.0], "scale": [0.5, 1.0]},  # η ≤ 1 (DDIM) and scale 1 (the exact projection) are range ends
    ("DiffPIR", "ours"): {"lam": [0.25, 0.5, 1.0, 2.0, 4.0, 8.0]},
    ("PnP-DM", "ours"): {"rho_min": [0.01, 0.02, 0.04, 0.08, 0.16, 0.32]},
    ("ScorePnP-ADMM", "ours"): {"lam": [0.1, 0.2, 0.4, 0.8, 1.6, 3.2]},
    ("ScorePnP-DPIR", "ours"): {"lam": [0.1, 0.2, 0.4, 0.8, 1.6, 3.2]},
    ("DPS", "deepinv"): {"guidance": [["norm", 30.0], ["norm", 100.0], ["norm", 300.0], ["norm", 1000.0], ["norm", 3000.0], ["annealed", 1.0]]},
    ("DiffPIR", "deepinv"): {"lam": [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]},
}
#: the previous run (2026-11-27: 8 test phantoms from one generator seeded 0, weights picked on 2 validation phantoms
#: from grids of 3–5, one shared setting for all NFEs, no CIs): PSNR (dB) of each row, for the before/after note
BEFORE = {
    "MRI 4x (8 coils)": {"Tikhonov": 22.78, ("DPS", 100, "ours"): 37.76, ("DPS", 100, "deepinv"): 19.43, ("DPS", 250, "ours"): 38.66,
                         ("DPS", 250, "deepinv"): 26.73, ("DiffPIR", 20, "ours"): 33.02, ("DiffPIR", 20, "deepinv"): 31.88,
                         ("DiffPIR", 50, "ours"): 36.15, ("DiffPIR", 50, "deepinv"): 35.07, ("DiffPIR", 100, "ours"): 36.52,
                         ("DiffPIR", 100, "deepinv"): 35.63, ("DDNM", 25, "ours"): 31.41, ("DDNM", 100, "ours"): 35.57,
                         ("ScorePnP-ADMM", 20, "ours"): 42.33, ("ScorePnP-ADMM", 50, "ours"): 42.07, ("ScorePnP-DPIR", 20, "ours"): 40.57,
                         ("ScorePnP-DPIR", 50, "ours"): 40.72},
    "Gaussian deblur (σ=1 px)": {"Tikhonov": 17.05, ("DPS", 100, "ours"): 26.95, ("DPS", 100, "deepinv"): 24.02, ("DPS", 250, "ours"): 29.37,
                                 ("DPS", 250, "deepinv"): 23.81, ("DiffPIR", 20, "ours"): 23.06, ("DiffPIR", 20, "deepinv"): 23.09,
                                 ("DiffPIR", 50, "ours"): 24.45, ("DiffPIR", 50, "deepinv"): 24.45, ("DiffPIR", 100, "ours"): 25.05,
                                 ("DiffPIR", 100, "deepinv"): 25.03, ("DDNM", 25, "ours"): 22.32, ("DDNM", 100, "ours"): 23.87,
                                 ("ScorePnP-ADMM", 20, "ours"): 32.21, ("ScorePnP-ADMM", 50, "ours"): 33.16, ("ScorePnP-DPIR", 20, "ours"): 27.01,
                                 ("ScorePnP-DPIR", 50, "ours"): 27.49},
}


def split_seeds(split: str, n: int) -> list[int]:
    """The first ``n`` phantom seeds of ``split`` (raises if they would leave its range)."""
    r = SPLIT[split]
    if n > len(r):
        raise SystemExit(f"{n} {split} phantoms exceed the split's seeds {r}")
    return list(r[:n])


def load_prior() -> DiffusionPrior:
    data = (WEIGHTS / "model.pt").read_bytes()
    expected = (WEIGHTS / "model.sha256").read_text().split()[0]
    if hashlib.sha256(data).hexdigest() != expected:
        raise SystemExit(f"{WEIGHTS / 'model.pt'}: sha256 mismatch")
    net = diffusion_unet(2, 1, size="tiny")
    net.load_state_dict(torch.load(WEIGHTS / "model.pt", map_location="cpu", weights_only=True))
    net.eval().requires_grad_(False)
    return DiffusionPrior(net, make_scheduler())


def phantoms(seeds: list[int]) -> torch.Tensor:
    """One phantom magnitude per seed (its own generator), scaled to [0, 1]."""
    x = torch.stack([mr_phantom(SIZE, torch.Generator().manual_seed(s)).abs() for s in seeds]).float()[:, None]
    return x / x.amax(dim=(1, 2, 3), keepdim=True)


def operator(key: str):
    if key == "mri":
        mask = random_lines_mask(SIZE, 4, 4, generator=torch.Generator().manual_seed(7))
        return ComplexToReal() @ MultiCoilMRI(birdcage_maps(8, (SIZE, SIZE)), mask) @ RealToComplex()
    return Blur(gaussian_kernel(1.0, size=7))


def measure(op, x: torch.Tensor, sigma: float, seeds: list[int], offset: int) -> torch.Tensor:
    """``A x + n``, one noise draw per phantom (generator ``offset + seed``); for MRI the noise only on sampled
    k-space locations (unsampled ones are exact zeros)."""
    y = op(x)
    n = torch.stack([torch.randn(y.shape[1:], generator=torch.Generator().manual_seed(offset + s)) for s in seeds]) * sigma
    if len(getattr(op, "ops", ())) > 1 and hasattr(op.ops[1], "mask"):
        n = n * op.ops[1].mask.expand(1, 1, SIZE, SIZE)[..., None]
    return y + n


def metrics(x01: torch.Tensor, ref: torch.Tensor) -> list[tuple[float, float]]:
    """Per image (PSNR, SSIM) on [0, 1]."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    out = []
    for a, b in zip(x01.detach().clamp(0, 1).double().numpy(), ref.double().numpy()):
        out.append((float(peak_signal_noise_ratio(b[0], a[0], data_range=1.0)), float(structural_similarity(b[0], a[0], data_range=1.0))))
    return out


def ours(prior, name: str, nfe: int, p: dict, s: float):
    """Our sampler ``name`` at ``nfe`` (PnP-DM: Gibbs iterations) with the knobs ``p``, σ' = ``s`` in [−1, 1] units."""
    if name == "DPS":
        return DPS(prior, nfe, zeta=p["zeta"], sigma_y=s if p["sigma_y"] else None, clip=(-1.0, 1.0))
    if name == "DDNM":
        return DDNM(prior, nfe, eta=p["eta"], scale=p["scale"], sigma_y=s)
    if name == "DiffPIR":
        return DiffPIR(prior, nfe, lam=p["lam"], zeta=0.3, sigma_y=s, clip=(-1.0, 1.0), spacing="quad")
    if name == "PnP-DM":  # burn-in: until ρ reaches ρ_min (at most nfe − 1), then the chain's states are averaged
        return PnPDM(prior, sigma_y=s, num_iters=nfe, rho0=5.0, rho_decay=0.8, rho_min=p["rho_min"], prior_steps=40, prior_spacing="uniform")
    algo = {"ScorePnP-ADMM": "admm", "ScorePnP-DPIR": "hqs"}[name]
    return ScorePnP(prior, algo, num_iters=nfe, sigma_start=0.5, sigma_end=0.02, lam=p["lam"], sigma_y=s)


class DeepinvDenoiser(torch.nn.Module):
    """Our prior's VE denoiser in deepinv's [0, 1] ``Denoiser(x, sigma)`` interface."""

    def __init__(self, prior):
        super().__init__()
        self.prior = prior

    def forward(self, x, sigma, *args, **kwargs):
        s = torch.as_tensor(sigma, dtype=torch.float64).flatten()
        s = float(s[0]) if s.numel() else float(sigma)
        return (self.prior.denoise(2 * x.float() - 1, 2 * s) + 1) / 2


def run_deepinv(method: str, prior, op, y, sigma, nfe: int, seed: int, p: dict) -> torch.Tensor:
    import deepinv as dinv

    physics = dinv.physics.LinearPhysics(A=lambda v: op(v.float()), A_adjoint=lambda v: op.adjoint(v.float()),
                                         noise_model=dinv.physics.GaussianNoise(sigma))
    den = DeepinvDenoiser(prior)
    if method == "DPS":
        guidance, weight = p["guidance"]
        model = dinv.sampling.DPS(den, num_steps=nfe, guidance=guidance, weight=weight, rng=torch.Generator().manual_seed(seed))
        return model(y.double(), physics, x_init=tuple(op.adjoint(y).shape)).float()
    torch.manual_seed(seed)
    model = dinv.sampling.DiffPIR(den, dinv.optim.data_fidelity.L2(), sigma=sigma, max_iter=nfe, zeta=0.3, lambda_=p["lam"])
    return model(y, physics).float()


class Case:
    """One task's data on a split: phantoms ``x`` in [0, 1], measurements ``y`` on [0, 1] and ``y'`` on [−1, 1]."""

    def __init__(self, task: str, seeds: list[int]):
        key, self.sigma, offset = TASKS[task]
        self.op, self.seeds = operator(key), seeds
        self.x = phantoms(seeds)
        self.y = measure(self.op, self.x, self.sigma, seeds, offset)
        self.y_pm, self.s_pm = 2 * self.y - self.op(torch.ones_like(self.x)), 2 * self.sigma

    def run(self, prior, name: str, impl: str, nfe: int, p: dict, seed: int) -> tuple[torch.Tensor, int]:
        """The reconstruction on [0, 1] and the NFE spent."""
        if impl == "ours":
            out = ours(prior, name, nfe, p, self.s_pm)(self.y_pm, self.op, generator=torch.Generator().manual_seed(seed), progress=False)
            return (out.mean + 1) / 2, out.nfe
        return run_deepinv(name, prior, self.op, self.y, self.sigma, nfe, seed, p), nfe


def label(name: str, nfe: int, impl: str, version: str) -> str:
    size = f"{nfe} it." if name == "PnP-DM" else f"{nfe} NFE"
    return f"{name} {size} ({'ours' if impl == 'ours' else 'deepinv ' + version})"


def main() -> None:
    from monai_diffrecon.evaluation import Results, Target, check_target, grid_search, run_info, target_spec

    ap = argparse.ArgumentParser()
    ap.add_argument("--no-deepinv", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n-test", type=int, default=12)
    ap.add_argument("--n-val", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="interleaved timing repeats of each ours/deepinv pair")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--samplers", default="", help="comma-separated subset of the samplers (smoke runs; default all)")
    ap.add_argument("--tasks", default="", help="comma-separated subset of the operator keys mri, blur (default both)")
    ap.add_argument("--render", action="store_true", help="only rewrite the .md from the run's .json (no sampler is run)")
    a = ap.parse_args()
    if a.render:
        return render(a)
    started = time.perf_counter()
    torch.set_num_threads(a.threads)
    load0 = os.getloadavg()
    prior = load_prior()
    version = None
    if not a.no_deepinv:
        try:
            import deepinv

            version = deepinv.__version__
        except ImportError:
            print("deepinv not importable: ours only", flush=True)
    impls = ["ours"] + (["deepinv"] if version else [])
    test_seeds, val_seeds = split_seeds("test", a.n_test), split_seeds("val", a.n_val)
    rows, tuning, timing, examples, loads = [], {}, {}, {}, [load0]
    row_list = [r for r in ROWS if not a.samplers or r[0] in a.samplers.split(",")]
    tasks = [t for t, v in TASKS.items() if not a.tasks or v[0] in a.tasks.split(",")]
    for task in tasks:
        val, test = Case(task, val_seeds), Case(task, test_seeds)
        val_tik = float(np.mean([p for p, _ in metrics((regularised_start(val.y_pm, val.op, val.s_pm) + 1) / 2, val.x)]))
        tik = (regularised_start(test.y_pm, test.op, test.s_pm) + 1) / 2
        for s, (ps, ss) in zip(test_seeds, metrics(tik, test.x)):
            rows.append({"task": task, "case": s, "method": TRIVIAL, "sampler": "Tikhonov", "implementation": "—", "nfe": 0,
                         "psnr": ps, "ssim": ss, "seconds_per_image": 0.0})
        examples[(task, "truth")], examples[(task, "Tikhonov start")] = test.x, tik
        tuning[task] = {"validation_tikhonov_psnr": val_tik}
        print(f"{task}: validation Tikhonov {val_tik:.2f} dB", flush=True)
        for name, nfe in row_list:
            here = [i for i in impls if (name, i) in GRIDS]
            chosen = {}
            for impl in here:  # tuning on validation, at this row's NFE, one budget for every method
                def score(p, impl=impl, name=name, nfe=nfe, val=val, task=task):
                    rec, _ = val.run(prior, name, impl, nfe, p, seed=5)
                    v = float(np.mean([q for q, _ in metrics(rec, val.x)]))
                    print(f"  tune {task} | {name} {nfe} {impl} {p}: {v:.2f} dB", flush=True)
                    return v
                t = grid_search(score, GRIDS[(name, impl)], BUDGET)
                tuning[task][label(name, nfe, impl, version)] = t.as_dict()
                chosen[impl] = t.params
            # test: interleaved repeats (ours, deepinv, ours, …); the first repeat's outputs are scored
            times = {i: [] for i in here}
            outs = {}
            for r in range(a.repeats if len(here) > 1 else 1):
                for impl in here:
                    loads.append(os.getloadavg())
                    t0 = time.perf_counter()
                    rec, used = test.run(prior, name, impl, nfe, chosen[impl], seed=1)
                    times[impl].append((time.perf_counter() - t0) / len(test_seeds))
                    if r == 0:
                        outs[impl] = (rec, used)
            for impl in here:
                rec, used = outs[impl]
                m = label(name, nfe, impl, version)
                sec = statistics.median(times[impl])
                for s, (ps, ss) in zip(test_seeds, metrics(rec, test.x)):
                    rows.append({"task": task, "case": s, "method": m, "sampler": name, "implementation": impl, "nfe": used,
                                 "psnr": ps, "ssim": ss, "seconds_per_image": sec})
                examples[(task, m)] = rec
                print(f"{task} | {m}: {np.mean([r['psnr'] for r in rows[-len(test_seeds):]]):.2f} dB, {sec:.3f} s/image "
                      f"(repeats {[round(v, 3) for v in times[impl]]})", flush=True)
            if len(here) > 1:
                timing[f"{task} | {name} {nfe}"] = {i: times[i] for i in here}
    loads.append(os.getloadavg())

    res = Results(rows, ("task", "case"))
    protocol = (f"32² MR-like phantoms, {a.n_test} test phantoms (seeds {test_seeds[0]}–{test_seeds[-1]}, one generator each; validation "
                f"seeds {val_seeds[0]}–{val_seeds[-1]}, training stream seed 1000); PSNR on [0, 1] over the whole image against the phantom "
                f"(data range 1); every row tuned at its own NFE on the {a.n_val} validation phantoms, {BUDGET} settings at most; "
                f"trivial input: the Tikhonov start")
    targets = []
    if version:
        for task in tasks:
            for name, nfe in row_list:
                if name in SHARED:
                    targets.append(Target(f"samplers {task}: ours {name} vs deepinv {version} at {nfe} NFE: ΔPSNR > 0",
                                          label(name, nfe, "ours", version), label(name, nfe, "deepinv", version), "psnr", 0.0,
                                          "samplers.md", {"task": task}, trivial=TRIVIAL))
    specs = [target_spec(t, ("task", "case"), protocol) for t in targets]
    entries = [{**check_target(res, t), "protocol": protocol} for t in targets]
    info = run_info(started)
    info["load_average"] = {"start": list(load0), "end": list(loads[-1]), "max_1min": max(v[0] for v in loads)}
    out = Path(a.out)
    out.with_suffix(".json").write_text(json.dumps(
        {"run": info, "protocol": protocol, "split": {k: [v.start, v.stop] for k, v in SPLIT.items()}, "test_seeds": test_seeds,
         "val_seeds": val_seeds, "tasks": {k: {"operator": v[0], "sigma": v[1], "noise_seed_offset": v[2]} for k, v in TASKS.items()},
         "budget": BUDGET, "grids": {f"{n} | {i}": g for (n, i), g in GRIDS.items()}, "tuning": tuning, "timing_repeats": timing,
         "deepinv": version, "rows": rows, "targets": specs}, indent=1, ensure_ascii=False) + "\n")
    report(res, tuning, timing, entries, info, protocol, version, a, out, tasks, row_list)
    figure(examples, out.with_suffix(".png"))


def render(a) -> None:
    """Rewrite the .md from the .json a run wrote (its rows, tuning, timing, run info and target specs)."""
    from monai_diffrecon.evaluation import Results, evaluate_results_doc

    out = Path(a.out)
    doc = json.loads(out.with_suffix(".json").read_text())
    res = Results(doc["rows"], ("task", "case"))
    tasks = list(dict.fromkeys(r["task"] for r in doc["rows"]))
    present = {(r["sampler"], int(r["method"].split(" ")[1])) for r in doc["rows"] if r["method"] != TRIVIAL}
    a.n_val = len(doc["val_seeds"])
    report(res, doc["tuning"], doc["timing_repeats"], evaluate_results_doc(doc), doc["run"], doc["protocol"], doc["deepinv"], a, out, tasks,
           [r for r in ROWS if r in present])


def report(res, tuning, timing, entries, info, protocol, version, a, out: Path, tasks: list, row_list: list) -> None:
    from monai_diffrecon.evaluation import baseline_guard, targets_section

    venv = ".venv-bench" if version else ".venv"
    ld = info["load_average"]
    lines = ["# Samplers on a small trained prior: quality and time vs NFE, ours vs deepinv", "",
             (f"Command: `OMP_NUM_THREADS=1 {info['command'].replace('python', venv + '/bin/python', 1)}` — commit {info['commit']}"
             f"{'' if info['tree_clean'] else ' (+ uncommitted changes)'}, torch {info['torch']}, {info['threads']} thread(s), "
             f"{info['wall_seconds'] / 60:.1f} min wall (tuning included), {info['date']}. Load: other processes shared the "
             f"{info['cpu_count']} cores (1-min load average {ld['start'][0]:.1f} at the start, up to {ld['max_1min']:.1f} during the timed runs), "
             "so absolute times are inflated; the ours/deepinv ratios are measured interleaved in the same run. Setup in the script's docstring."), "",
             (f"**Protocol.** {protocol}. Prior: tiny MONAI DiffusionModelUNet (0.28 M parameters) trained on 32² MR-like phantoms "
             "(`benchmarks/train_bench_prior.py`). "
             + (f"deepinv {version} rows use the *same* network (wrapped as a deepinv Denoiser on [0, 1]), operator, data and noise draws, in the same process. "
                if version else "deepinv was not available: ours only. ")
             + "This is an implementation comparison on a toy prior, not a paper protocol (DPS, DiffPIR, DDNM, PnP-DM report FFHQ/ImageNet 256² with "
             "trained 256² priors); the Tikhonov start is the trivial input of the broken-baseline guard."), ""]
    for task in tasks:
        ms = [m for m in dict.fromkeys(r["method"] for r in res.rows if r["task"] == task)]
        before = BEFORE.get(task, {})
        lines += [f"## {task}", "", "| method | NFE | PSNR (dB) [95 % CI] | SSIM [95 % CI] | s / image (median) | before (PSNR) | vs Tikhonov start |",
                  "|---|---|---|---|---|---|---|"]
        for m in ms:
            rs = [r for r in res.rows if r["task"] == task and r["method"] == m]
            p, s = res.estimate(m, "psnr", task=task), res.estimate(m, "ssim", task=task)
            if m == TRIVIAL:
                b, status = before.get("Tikhonov"), "—"
            else:
                r0 = rs[0]
                key_nfe = int(m.split(" ")[1]) if r0["sampler"] != "PnP-DM" else None
                b = before.get((r0["sampler"], key_nfe, r0["implementation"]))
                g = baseline_guard(res, m, TRIVIAL, "psnr", task=task)
                status = "ok" if g["baseline_ok"] else "**failed** (not above the Tikhonov start)"
            sec = "—" if m == TRIVIAL else f"{rs[0]['seconds_per_image']:.3f}"
            bef = "—" if b is None else f"{b:.2f}"
            lines.append(f"| {m} | {rs[0]['nfe']} | {p.mean:.2f} [{p.low:.2f}, {p.high:.2f}] | {s.mean:.3f} [{s.low:.3f}, {s.high:.3f}] | "
                         f"{sec} | {bef} | {status} |")
        if version:
            lines += ["", "Ours − deepinv at equal NFE (positive: ours more accurate; time ratio < 1: ours faster; paired over the same phantoms):", "",
                      "| sampler | NFE | ΔPSNR (dB) [95 % CI] | ΔSSIM [95 % CI] | time ratio ours/deepinv (median of repeats) | per-repeat ratios | before: ΔPSNR |",
                      "|---|---|---|---|---|---|---|"]
            for name, nfe in row_list:
                if name not in SHARED:
                    continue
                mo, md = label(name, nfe, "ours", version), label(name, nfe, "deepinv", version)
                dp, dss = res.compare(mo, md, "psnr", task=task), res.compare(mo, md, "ssim", task=task)
                tt = timing[f"{task} | {name} {nfe}"]
                ratio = statistics.median(tt["ours"]) / statistics.median(tt["deepinv"])
                per = ", ".join(f"{o / d:.2f}" for o, d in zip(tt["ours"], tt["deepinv"]))
                bo, bd = before.get((name, nfe, "ours")), before.get((name, nfe, "deepinv"))
                bdelta = "—" if bo is None or bd is None else f"{bo - bd:+.2f}"
                lines.append(f"| {name} | {nfe} | {dp.mean:+.2f} [{dp.low:+.2f}, {dp.high:+.2f}] | {dss.mean:+.3f} [{dss.low:+.3f}, {dss.high:+.3f}] | "
                             f"{ratio:.2f} | {per} | {bdelta} |")
        lines += ["", (f"Tuning ({a.n_val} validation phantoms, Tikhonov start {tuning[task]['validation_tikhonov_psnr']:.2f} dB; at most {BUDGET} "
                       "settings per row, each row at its own NFE):"), "",
                  "| row | grid | chosen | validation PSNR | on the grid's edge |", "|---|---|---|---|---|"]
        for m, t in tuning[task].items():
            if m == "validation_tikhonov_psnr":
                continue
            name = m.split(" ")[0]
            impl = "ours" if m.endswith("(ours)") else "deepinv"
            lines.append(f"| {m} | {json.dumps(GRIDS[(name, impl)])} | {json.dumps(t['params'])} | {t['score']:.2f} | {', '.join(t['on_edge']) or '—'} |")
        lines.append("")
    lines += [("\"vs Tikhonov start\": the broken-baseline guard (ok only if the 95 % CI of the paired PSNR gain over the Tikhonov start is above 0). "
              "\"before\": the previous run (8 phantoms of one generator, no CIs, one setting per sampler tuned at one NFE on grids of 3–5, our DPS "
              "without σ_y or clipping, PnP-DM rows of 10/30 iterations with a fixed burn-in) — other phantoms, so compare only roughly. "
              "The previous MRI deepinv DPS rows (19.43 dB at 100 NFE, 26.73 at 250; Tikhonov start 22.78) were a baseline below or barely above "
              "the trivial input, tuned on a grid whose weights stopped at 1000: the +18.32 / +11.93 dB gaps were wins over a broken baseline. "
              "Every trial is in samplers.json under `tuning`; per-case rows under `rows`. "
              "Edge flags: DDNM's η = 1 and scale = 1 are the ends of their meaningful ranges (DDIM's η ≤ 1; scale 1 is the exact range-space "
              "projection). PnP-DM's NFE is measured (its prior steps from ρ depend on the ρ schedule); its rows are named by Gibbs iterations."), ""]
    if version:
        lines += targets_section(entries)
    lines += ["", "Example reconstructions (first test phantom): `benchmarks/results/samplers.png`.", ""]
    out.write_text("\n".join(lines))
    print("\n".join(lines))


def figure(examples: dict, path: Path) -> None:
    from monai_diffrecon.data.preview import save_panels

    panels = [(f"{task.split(' ')[0]}: {name}", img[0, 0].clamp(0, 1).numpy(), "gray") for (task, name), img in examples.items()]
    save_panels(panels, path, ncols=6, title="Samplers on a small trained prior (first test phantom)")


if __name__ == "__main__":
    main()
