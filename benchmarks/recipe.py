"""The training-recipe ablation that decides the default (issue 22, item 4) → results/recipe.md / recipe.json.

Usage (each training run is resumable and stops at CPU-time budgets; run them in the background, in parallel)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/recipe.py train --task natural64 --recipe new --budgets 10 20 40 --work ~/recipe
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/recipe.py train --task natural64 --recipe current --budgets 10 20 40 --work ~/recipe
    (same for --task mri128)
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/recipe.py report --work ~/recipe      # evaluates every snapshot → recipe.md
    .venv/bin/python benchmarks/recipe.py train ... --smoke                          # tiny sizes, seconds

Tasks (the two priors the issue names), each with the shipped prior's network, optimiser, batch and data:

* ``mri128`` — the clean-image MRI prior (2-channel complex 128² slices of the MNI152 anatomy, the MSM oracle's cohort:
  ``benchmarks/weights/mri_clean_prior``, MONAI ``DiffusionModelUNet`` preset ``small``, batch 8, lr 5e-4; 3350
  iterations, loaded with its EMA correction as ``benchmarks/mri.py`` does).
* ``natural64`` — the natural-image prior of ``natural_blind_deblur`` (64² patches of the training photographs in
  [−1, 1], preset ``small``, batch 16, lr 5e-4, 6000 iterations).

Recipes: ``current`` — ε-prediction, t uniform, fp32 (what shipped). ``new`` — EDM preconditioning (σ_d = 0.5),
log-normal σ (P_mean −1.2, P_std 1.2), EDM loss weight, bf16 autocast (``benchmarks/results/training_speed.md``).
Budgets are *process CPU time* of the training loop (one thread); each run saves its EMA weights at every budget.

Validation (the validation split only: MRI val slices of the held-out axial block, coil-combined like the training
images; natural patches drawn from the training photographs with the validation seeds), per image so that recipes are
compared with paired CIs: the Gaussian denoising MSE ``‖D_σ(x + σn) − x‖²`` at σ ∈ {0.05, 0.1, 0.2, 0.5, 1}, the x̂₀
MSE at t = 200 / 500 / 800, and the PSNR of one posterior sampler at its defaults (DiffPIR, 50 NFE): MRI 4×
(8 coils, the val acquisitions), natural Gaussian deblurring (σ = 1.6 px, σ_y = 0.02).
Targets (issue 22): the new recipe reaches the shipped prior's validation denoising MSE (mean over the σ grid) within
¼ of the shipped prior's training CPU time (estimated as its iterations × this run's CPU seconds per iteration of the
current recipe), and its x̂₀ MSE at t = 800 is ≤ ½ of the current recipe's at the same budget.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from monai_diffrecon.diffusion import DiffusionPrior, make_scheduler  # noqa: E402
from monai_diffrecon.evaluation import Results, run_info  # noqa: E402
from monai_diffrecon.networks import diffusion_unet  # noqa: E402
from monai_diffrecon.training import DenoisingScoreTrainer, DSMConfig, TensorSampler  # noqa: E402

OUT = ROOT / "results" / "recipe.md"
RECIPES = {
    "current": {},
    "new": {"prediction": "edm", "sigma_data": 0.5, "loss_weighting": "edm", "t_sampling": "lognormal", "precision": "bf16"},
}
TASKS = {
    "mri128": {"bundle": "mri_multicoil_msm", "shipped": ROOT / "weights" / "mri_clean_prior" / "model.pt", "shipped_iterations": 3350},
    "natural64": {"bundle": "natural_blind_deblur", "shipped": ROOT.parent / "bundles" / "natural_blind_deblur" / "models" / "model.pt",
                  "shipped_iterations": 6000},
}
SIGMAS = (0.05, 0.1, 0.2, 0.5, 1.0)
TS = (200, 500, 800)


def bundle_cfg(task: str) -> dict:
    from _train_common import bundle_train_config

    return bundle_train_config(TASKS[task]["bundle"])


def train_images(task: str, work: Path, smoke: bool) -> torch.Tensor:
    cfg = bundle_cfg(task)
    if task == "natural64":
        from monai_diffrecon.training.natural_cohort import cached_patch_cohort

        n = 256 if smoke else cfg["n_patches"]
        return cached_patch_cohort(work / f"patches_train_{n}.pt", n, cfg["size"], "train")["images"]
    from monai_diffrecon.physics.functional.sense import complex_to_channels
    from monai_diffrecon.training.mri_cohort import cached_mri_cohort

    n = 8 if smoke else cfg["n_slices"]
    return complex_to_channels(cached_mri_cohort(work / f"mri_clean_{n}.pt", n, "clean", cfg["size"], cfg["acceleration"])["images"])


def val_data(task: str, work: Path, n: int) -> dict:
    """``{"images": (n, C, H, W), "y", "op", "sigma_y"}``: validation images and one posterior-sampling problem."""
    cfg = bundle_cfg(task)
    if task == "natural64":
        from monai_diffrecon.physics import Blur, gaussian_kernel
        from monai_diffrecon.training.natural_cohort import cached_patch_cohort

        x = cached_patch_cohort(work / f"patches_val_{n}.pt", n, cfg["size"], "val")["images"]
        op, sy = Blur(gaussian_kernel(1.6, size=9)), 0.04  # σ_y = 0.02 on [0, 1] is 0.04 on [−1, 1]
        g = torch.Generator().manual_seed(5)
        return {"images": x, "op": op, "y": op(x) + sy * torch.randn(op(x).shape, generator=g), "sigma_y": sy, "range": 2.0}
    from monai_diffrecon.physics import ChannelsToComplex, MultiCoilMRI
    from monai_diffrecon.physics.functional.sense import complex_to_channels, sense_combine
    from monai_diffrecon.training.mri_cohort import cached_mri_cohort

    v = cached_mri_cohort(work / f"mri_val_{n}.pt", n, "val", cfg["size"], cfg["acceleration"])
    x = complex_to_channels(sense_combine(v["kspace_full"], v["maps"]))
    op = MultiCoilMRI(v["maps"], v["mask"]) @ ChannelsToComplex()
    return {"images": x, "op": op, "y": v["kspace"], "sigma_y": 0.01, "range": None}


def network(task: str, channels: int) -> torch.nn.Module:
    return diffusion_unet(2, channels, size=bundle_cfg(task)["network_def"]["size"])


# ---------------------------------------------------------------------------------------------------------------- train
def train(a) -> None:
    torch.set_num_threads(1)
    cfg = bundle_cfg(a.task)
    work = Path(a.work).expanduser()
    run_dir = work / f"{a.task}_{a.recipe}"
    run_dir.mkdir(parents=True, exist_ok=True)
    images = train_images(a.task, work, a.smoke)
    tc = cfg["trainer_config"]
    torch.manual_seed(cfg["seed"])
    net = network(a.task, images.shape[1])
    batch = 2 if a.smoke else cfg["batch_size"]
    dsm = DSMConfig(max_iterations=10**9, batch_size=batch, lr=cfg["lr"], ema_decay=tc["ema_decay"], warmup=tc["warmup"],
                    checkpoint_every=10**9, seed=cfg["seed"], **RECIPES[a.recipe])
    trainer = DenoisingScoreTrainer(net, make_scheduler(), TensorSampler(images, augment=True), run_dir, dsm, progress=False)
    state_file = run_dir / "state.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {"cpu_seconds": 0.0, "snapshots": {}}
    if trainer.checkpoint_path.exists():
        from monai_diffrecon.training.dsm import load_checkpoint

        trainer.load_state_dict(load_checkpoint(trainer.checkpoint_path))
    budgets = sorted(float(b) for b in a.budgets)
    last_save = time.time()

    def save() -> None:
        trainer.save()
        tmp = state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        os.replace(tmp, state_file)

    for b in budgets:
        key = f"{b:g}"
        if key in state["snapshots"]:
            continue
        while state["cpu_seconds"] < 60 * b:
            c0 = time.process_time()
            trainer.step()
            state["cpu_seconds"] += time.process_time() - c0
            state["iteration"] = trainer.iteration
            if time.time() - last_save > 180:
                save()
                last_save = time.time()
                print(f"{a.task}/{a.recipe}: iteration {trainer.iteration}, {state['cpu_seconds'] / 60:.1f} CPU-min, "
                      f"loss {sum(trainer.losses[-50:]) / len(trainer.losses[-50:]):.4f}", flush=True)
        snap = run_dir / f"ema_{key}min.pt"
        torch.save(trainer._cpu(trainer.ema.state_dict()), snap)
        state["snapshots"][key] = {"file": snap.name, "iteration": trainer.iteration, "cpu_seconds": state["cpu_seconds"]}
        state["cpu_seconds_per_iteration"] = state["cpu_seconds"] / max(1, trainer.iteration)
        state["recipe"], state["config"] = RECIPES[a.recipe], {k: v for k, v in vars(trainer.cfg).items()}
        save()
        print(f"{a.task}/{a.recipe}: snapshot at {key} CPU-min, iteration {trainer.iteration}", flush=True)


# ---------------------------------------------------------------------------------------------------------------- report
def load_prior(task: str, path: Path, recipe: dict, channels: int) -> DiffusionPrior:
    if task == "mri128" and Path(path) == TASKS[task]["shipped"]:
        from mri import load_oracle  # the shipped oracle with its EMA share of the initial weights removed (benchmarks/mri.py)

        net = load_oracle()
    else:
        net = network(task, channels)
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    net.eval().requires_grad_(False)
    kw = {k: recipe[k] for k in ("prediction", "sigma_data") if k in recipe}
    return DiffusionPrior(net, make_scheduler(), **kw)


@torch.no_grad()
def evaluate(prior: DiffusionPrior, val: dict, nfe: int) -> list[dict]:
    """Per-image rows: denoising MSE per σ (and their mean), x̂₀ MSE per t, and the sampler's PSNR."""
    from monai_diffrecon.samplers import DiffPIR

    x = val["images"]
    g = torch.Generator().manual_seed(11)
    rows = [{"case": i} for i in range(x.shape[0])]
    per = lambda e: e.flatten(1).mean(1)  # noqa: E731
    dn = []
    for s in SIGMAS:
        e = per((prior.denoise(x + s * torch.randn(x.shape, generator=g), s) - x) ** 2)
        dn.append(e)
        for r, v in zip(rows, e.tolist()):
            r[f"denoise_mse_{s:g}"] = v
    for r, v in zip(rows, torch.stack(dn).mean(0).tolist()):
        r["denoise_mse_mean"] = v
    sch_ab = prior.alphas_cumprod
    for t in TS:
        a = float(sch_ab[t])
        x_t = math.sqrt(a) * x + math.sqrt(1 - a) * torch.randn(x.shape, generator=g)
        for r, v in zip(rows, per((prior.x0(x_t, float(t)) - x) ** 2).tolist()):
            r[f"x0_mse_t{t}"] = v
    out = DiffPIR(prior, nfe, sigma_y=val["sigma_y"])(val["y"], val["op"], generator=torch.Generator().manual_seed(3), progress=False)
    est = out.mean
    for i, r in enumerate(rows):
        if val["range"] is None:  # MRI: magnitude images, range of the reference
            ref, img = torch.linalg.vector_norm(x[i], dim=0), torch.linalg.vector_norm(est[i], dim=0)
            rng = float(ref.max())
        else:
            ref, img, rng = x[i], est[i].clamp(-1, 1), val["range"]
        r["sampler_psnr"] = float(10 * torch.log10(rng**2 / ((img - ref) ** 2).mean()))
    return rows


def report(a) -> None:
    torch.set_num_threads(1)
    started = time.perf_counter()
    work = Path(a.work).expanduser()
    doc = {"tasks": {}, "rows": []}
    for task in TASKS:
        runs = {r: work / f"{task}_{r}" for r in RECIPES if (work / f"{task}_{r}" / "state.json").exists()}
        if not runs:
            continue
        val = val_data(task, work, a.n_val)
        C = val["images"].shape[1]
        cache_file = work / f"eval_{task}.json"
        cache = json.loads(cache_file.read_text()) if cache_file.exists() else {}
        entries = {"shipped (current recipe, full training)": (TASKS[task]["shipped"], {}, None)}
        states = {}
        for r, d in runs.items():
            st = json.loads((d / "state.json").read_text())
            states[r] = st
            for b, snap in st["snapshots"].items():
                entries[f"{r} @ {b} CPU-min"] = (d / snap["file"], RECIPES[r], snap)
        for name, (path, recipe, snap) in entries.items():
            key = f"{name}|{os.path.getmtime(path):.0f}|{a.n_val}|{a.nfe}"
            if key not in cache:
                t0 = time.perf_counter()
                cache[key] = evaluate(load_prior(task, Path(path), recipe, C), val, a.nfe)
                print(f"{task}: evaluated {name} in {time.perf_counter() - t0:.0f} s", flush=True)
                cache_file.write_text(json.dumps(cache))
            for row in cache[key]:
                doc["rows"].append({"task": task, "method": name, **row, **({"iteration": snap["iteration"], "cpu_minutes": snap["cpu_seconds"] / 60}
                                                                             if snap else {})})
        cur = states.get("current", {}).get("cpu_seconds_per_iteration")
        doc["tasks"][task] = {"states": states, "shipped_iterations": TASKS[task]["shipped_iterations"],
                              "shipped_cpu_minutes_estimate": None if cur is None else cur * TASKS[task]["shipped_iterations"] / 60}
    doc["run"] = run_info(started)
    (Path(a.out).with_suffix(".json")).write_text(json.dumps(doc, indent=1))
    write_md(doc, a)


def write_md(doc: dict, a) -> None:
    lines = ["# Training recipe ablation: current (ε) vs new (EDM + bf16) at equal CPU-time budgets", "",
             f"Generated by `OMP_NUM_THREADS=1 .venv/bin/python benchmarks/recipe.py report --work <dir> --n-val {a.n_val} --nfe {a.nfe}` "
             f"after the `train` runs listed below (commit {doc['run'].get('commit')}, {doc['run'].get('date')}). "
             "Protocol: module docstring of `benchmarks/recipe.py`; every number is a mean over the validation images with its 95 % "
             "bootstrap CI; differences are paired per image.", ""]
    metrics = ["denoise_mse_mean", *[f"denoise_mse_{s:g}" for s in SIGMAS], *[f"x0_mse_t{t}" for t in TS], "sampler_psnr"]
    for task, info in doc["tasks"].items():
        rows = [r for r in doc["rows"] if r["task"] == task]
        res = Results(rows, ["case"])
        methods = list(dict.fromkeys(r["method"] for r in rows))
        lines += [f"## {task}", ""]
        for r, st in info["states"].items():
            budgets = " ".join(st["snapshots"])
            lines.append(f"- `{r}`: recipe {json.dumps(RECIPES[r]) if RECIPES[r] else '(ε, uniform t, fp32)'}; "
                         f"{st.get('iteration')} iterations in {st['cpu_seconds'] / 60:.1f} CPU-min "
                         f"({st.get('cpu_seconds_per_iteration', float('nan')):.2f} CPU-s per iteration); trained by "
                         f"`OMP_NUM_THREADS=1 .venv/bin/python benchmarks/recipe.py train --task {task} --recipe {r} --budgets {budgets} --work <dir>`.")
        est = info["shipped_cpu_minutes_estimate"]
        lines += [f"- shipped prior: {info['shipped_iterations']} iterations of the current recipe ≈ "
                  + (f"{est:.0f} CPU-min at this run's CPU-s per iteration." if est else "(no current-recipe run yet to estimate its CPU time)."), ""]
        lines += ["| weights | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
        for m in methods:
            cells = []
            for k in metrics:
                e = res.estimate(m, k)
                cells.append(f"{e.mean:.4g} [{e.low:.4g}, {e.high:.4g}]")
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines.append("")
        lines += targets_lines(task, info, res, methods)
    lines += ["## Reading", "", a.reading if getattr(a, "reading", None) else "(see the closing note of issue 22)", ""]
    Path(a.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def targets_lines(task: str, info: dict, res: Results, methods: list[str]) -> list[str]:
    """The two targets of the module doc, computed; every difference is an improvement (positive = the first named is
    better: lower MSE, higher PSNR), paired per validation image, with its 95 % CI."""
    out = ["Targets (differences are improvements: positive = the first named is better):", ""]
    shipped = "shipped (current recipe, full training)"
    est = info["shipped_cpu_minutes_estimate"]
    budget = lambda m: float(m.split("@ ")[1].split()[0])  # noqa: E731
    new = sorted((budget(m), m) for m in methods if m.startswith("new @"))
    if est and new:
        for b, m in new:
            d = res.compare(m, shipped, "denoise_mse_mean", higher_is_better=False)
            ratio = res.estimate(m, "denoise_mse_mean").mean / res.estimate(shipped, "denoise_mse_mean").mean
            verdict = "MET" if d.low > 0 else ("MISSED" if d.high < 0 else "not shown (CI spans 0)")
            within = b <= est / 4
            out.append(f"- New recipe at {b:g} CPU-min ({'≤' if within else '>'} ¼ of the shipped ≈ {est:.0f} CPU-min) vs the shipped "
                       f"prior, denoising MSE: improvement {d.mean:+.4g} [{d.low:+.4g}, {d.high:+.4g}], MSE ratio new/shipped {ratio:.2f} → "
                       + (f"**{verdict}**" if within else f"{verdict} (beyond the ¼ budget: not the target)"))
        if not any(b <= est / 4 for b, _ in new):
            out.append(f"- No new-recipe snapshot within ¼ of the shipped CPU time ({est / 4:.0f} CPU-min) yet.")
    common = sorted({budget(m) for m in methods if m.startswith("new @")} & {budget(m) for m in methods if m.startswith("current @")})
    for b in common:
        n_, c_ = f"new @ {b:g} CPU-min", f"current @ {b:g} CPU-min"
        ratio = res.estimate(n_, "x0_mse_t800").mean / res.estimate(c_, "x0_mse_t800").mean
        out.append(f"- x̂₀ MSE at t = 800, new / current at {b:g} CPU-min: {ratio:.2f} → **{'MET' if ratio <= 0.5 else 'MISSED'}** (target ≤ 0.5)")
        for k in ("denoise_mse_mean", "x0_mse_t800", "sampler_psnr"):
            d = res.compare(n_, c_, k, higher_is_better=(k == "sampler_psnr"))
            out.append(f"  - {k}: improvement new over current {d.mean:+.4g} [{d.low:+.4g}, {d.high:+.4g}]")
    return out + [""]


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--task", choices=sorted(TASKS), required=True)
    t.add_argument("--recipe", choices=sorted(RECIPES), required=True)
    t.add_argument("--budgets", nargs="+", type=float, default=[10, 20, 40], help="CPU-minutes at which to save the EMA weights")
    t.add_argument("--work", required=True)
    t.add_argument("--smoke", action="store_true")
    r = sub.add_parser("report")
    r.add_argument("--work", required=True)
    r.add_argument("--n-val", type=int, default=16)
    r.add_argument("--nfe", type=int, default=50)
    r.add_argument("--out", default=str(OUT))
    r.add_argument("--reading", default=None)
    a = ap.parse_args()
    train(a) if a.cmd == "train" else report(a)


if __name__ == "__main__":
    main()
