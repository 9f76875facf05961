"""CPU speed levers for training and running a diffusion prior, measured side by side → results/training_speed.md.

Usage:
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/training_speed.py                  # the table (≈ 10 min)
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/training_speed.py --repeats 2 --size 32 --out /tmp/s.md  # smoke

What is timed: one full training step of the shipped ``small`` MONAI ``DiffusionModelUNet`` (1.1 M parameters) —
forward, ε-MSE, backward, gradient clipping, AdamW step — on a batch of 8 images of 128², and one ε̂ forward pass
(inference) on the same batch. Every lever runs in the same process, interleaved: repeat r times the sequence
"baseline, lever 1, lever 2, …" (one warm-up step each first), and report each lever's median and its ratio to the
baseline's median (> 1: faster). Levers:

* numerics: bf16 autocast (``torch.autocast("cpu", torch.bfloat16)``; weights, optimiser and loss in fp32),
  channels_last memory format, ``torch.compile`` (compile time reported separately);
* architecture: no attention, attention only at the lowest resolution of a 4-level layout (H/8), the same at 64²
  crops (per-sample cost of patch training);
* threads: torch threads = 2 (the machine has 2 cores, shared).

Numerical difference of each same-network lever against fp32 on the same batch and weights: cosine and relative L2 of the
full parameter gradient, relative L2 of the inference output. Architecture levers change the network, so no numerical
difference applies ("—").

Adoption rule (computed, in the "Decision" section): a numerics lever is adopted if its step or inference speed-up is
≥ 1.2× with gradient cosine ≥ 0.999 and output difference ≤ 1 % (a lever combined with bf16 must also be ≥ 1.1× faster
than bf16 alone); architecture levers are reported, not adopted here
(they change the network, so they are decided by the recipe ablation, benchmarks/recipe.py). bf16 inference is
also checked end to end: DiffPIR (50 NFE) with the bench prior of benchmarks/samplers.py in fp32 and in bf16
(``DiffusionPrior(precision="bf16")``) on that script's 12 test phantoms and two tasks, paired PSNR difference with
its 95 % CI and the time ratio.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import os
import statistics
import time
from pathlib import Path

import torch

from monai_diffrecon.diffusion import make_scheduler
from monai_diffrecon.evaluation import run_info
from monai_diffrecon.networks import diffusion_unet

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "results" / "training_speed.md"


def make_net(layout: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if layout == "small":
        return diffusion_unet(2, 1, size="small")
    if layout == "small-noattn":
        return diffusion_unet(2, 1, size="small", attention_levels=(False, False, False))
    if layout == "small4-attn-H/8":
        return diffusion_unet(2, 1, size="small", channels=(32, 64, 64, 128), attention_levels=(False, False, False, True))
    raise ValueError(layout)


class Lever:
    """One configuration: network layout, image size, precision, memory format, compile, threads."""

    def __init__(self, name: str, layout: str = "small", size: int | None = None, bf16: bool = False, channels_last: bool = False,
                 compile: bool = False, threads: int = 1, same_network: bool = True) -> None:
        size = SIZE if size is None else size
        self.name, self.size, self.bf16, self.cl, self.threads = name, size, bf16, channels_last, threads
        self.same_network = same_network and layout == "small" and size == SIZE
        self.net = make_net(layout)
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=1e-4)
        self.fwd = torch.compile(self.net) if compile else self.net
        self.compile_s = None
        self.step_s: list[float] = []
        self.infer_s: list[float] = []

    def _ctx(self):
        return torch.autocast("cpu", dtype=torch.bfloat16) if self.bf16 else torch.autocast("cpu", enabled=False)

    def _inp(self, x):
        return x.contiguous(memory_format=torch.channels_last) if self.cl else x

    def loss(self, x_t, t, eps):
        with self._ctx():
            pred = self.fwd(self._inp(x_t), t)
        return torch.nn.functional.mse_loss(pred.float(), eps)

    def step(self, batch) -> float:
        torch.set_num_threads(self.threads)
        x_t, t, eps = batch
        t0 = time.perf_counter()
        self.opt.zero_grad(set_to_none=True)
        self.loss(x_t, t, eps).backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
        self.opt.step()
        dt = time.perf_counter() - t0
        torch.set_num_threads(1)
        return dt

    @torch.no_grad()
    def infer(self, batch) -> tuple[float, torch.Tensor]:
        torch.set_num_threads(self.threads)
        x_t, t, _ = batch
        t0 = time.perf_counter()
        with self._ctx():
            out = self.fwd(self._inp(x_t), t).float()
        dt = time.perf_counter() - t0
        torch.set_num_threads(1)
        return dt, out

    def gradient(self, batch, state: dict) -> torch.Tensor:
        """The full parameter gradient at the weights ``state`` (for the numerical comparison)."""
        self.net.load_state_dict(state)
        self.net.zero_grad(set_to_none=True)
        self.loss(*batch).backward()
        return torch.cat([p.grad.flatten().float() for p in self.net.parameters()])


def make_batch(size: int, n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    sch = make_scheduler()
    x0 = torch.rand(n, 1, size, size, generator=g) * 2 - 1
    t = torch.randint(0, 1000, (n,), generator=g)
    eps = torch.randn(x0.shape, generator=g)
    a = sch.alphas_cumprod[t].reshape(-1, 1, 1, 1).float()
    return a.sqrt() * x0 + (1 - a).sqrt() * eps, t, eps


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


SIZE = 128


def main() -> None:
    global SIZE
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile levers")
    ap.add_argument("--quality-cases", type=int, default=12, help="test phantoms for the bf16 inference check (0: skip)")
    ap.add_argument("--out", default=str(OUT))
    a = ap.parse_args()
    started = time.perf_counter()
    SIZE = a.size
    torch.set_num_threads(1)
    half = max(16, a.size // 2)
    specs = [
        dict(name="fp32 (shipped step)"),
        dict(name="bf16 autocast", bf16=True),
        dict(name="channels_last", channels_last=True),
        dict(name="channels_last + bf16", channels_last=True, bf16=True),
        *([] if a.no_compile else [dict(name="torch.compile", compile=True), dict(name="torch.compile + bf16", compile=True, bf16=True)]),
        dict(name="2 threads", threads=2),
        dict(name="2 threads + bf16", threads=2, bf16=True),
        dict(name="no attention", layout="small-noattn"),
        dict(name="no attention + bf16", layout="small-noattn", bf16=True),
        dict(name="4 levels, attention at H/8", layout="small4-attn-H/8"),
        dict(name="4 levels, attention at H/8 + bf16", layout="small4-attn-H/8", bf16=True),
        dict(name=f"{half}² crops (per {a.size}² of pixels)", size=half),
        dict(name=f"{half}² crops + bf16 (per {a.size}² of pixels)", size=half, bf16=True),
    ]
    levers = [Lever(**s) for s in specs]
    batches = {s: make_batch(s, a.batch) for s in {lv.size for lv in levers}}
    # warm-up (and compile) once each
    for lv in levers:
        t0 = time.perf_counter()
        lv.step(batches[lv.size])
        lv.infer(batches[lv.size])
        lv.compile_s = time.perf_counter() - t0
    for r in range(a.repeats):
        for lv in levers:
            lv.step_s.append(lv.step(batches[lv.size]))
            lv.infer_s.append(lv.infer(batches[lv.size])[0])
        print(f"repeat {r + 1}/{a.repeats}", flush=True)
    # numerics vs fp32 at the same weights and batch: the baseline's weights after its timed steps (MONAI zero-initialises
    # the output convolution, so at the initial weights every output is 0)
    base = levers[0]
    state = copy.deepcopy(base.net.state_dict())
    g_ref = base.gradient(batches[a.size], state)
    out_ref = base.infer(batches[a.size])[1]
    rows = []
    pix = lambda lv: (a.size / lv.size) ** 2  # noqa: E731  (crops: time per the same number of pixels)
    b_step, b_inf = statistics.median(base.step_s), statistics.median(base.infer_s)
    for lv in levers:
        step, inf = statistics.median(lv.step_s) * pix(lv), statistics.median(lv.infer_s) * pix(lv)
        if lv.same_network and lv is not base:
            g = lv.gradient(batches[a.size], state)
            num = (f"{float(torch.nn.functional.cosine_similarity(g, g_ref, dim=0)):.4f}", f"{100 * rel(g, g_ref):.2f} %",
                   f"{100 * rel(lv.infer(batches[a.size])[1], out_ref):.2f} %")
        else:
            num = ("—", "—", "—") if lv is not base else ("1", "0", "0")
        rows.append((lv.name, step, b_step / step, inf, b_inf / inf, *num, lv.compile_s))
    load = os.getloadavg()
    lines = ["# Training and inference speed levers on this CPU", "",
             f"Generated by `OMP_NUM_THREADS=1 .venv/bin/python benchmarks/training_speed.py --repeats {a.repeats} --size {a.size} "
             f"--batch {a.batch}{' --no-compile' if a.no_compile else ''}` on {datetime.date.today()} (torch {torch.__version__}, "
             f"CPU capability {torch.backends.cpu.get_cpu_capability()}; {len(os.sched_getaffinity(0))} cores; load average during the run "
             f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} — other processes shared the cores, which is why every lever is timed "
             "interleaved with the baseline and reported as a ratio of medians).", "",
             f"One training step = forward + ε-MSE + backward + clip + AdamW on a batch of {a.batch} images of {a.size}² "
             f"(MONAI `DiffusionModelUNet`, preset `small`, 1.1 M parameters); inference = one ε̂ forward on the same batch. "
             f"Median of {a.repeats} interleaved repeats after one warm-up each. Crops: time scaled to the same number of pixels. "
             "Gradient and output differences: at the same weights (the baseline's after its timed steps) and batch, against fp32.", "",
             "| lever | step (s) | step speed-up | inference (s) | inference speed-up | gradient cosine | gradient rel. L2 | output rel. L2 | first step incl. compile (s) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, step, su, inf, isu, cos, gl2, ol2, first in rows:
        lines.append(f"| {name} | {step:.3f} | {su:.2f}× | {inf:.3f} | {isu:.2f}× | {cos} | {gl2} | {ol2} | {first:.1f} |")
    decision = ["", "## Decision (adoption rule in the script's docstring)", ""]
    bf16 = next(r for r in rows if r[0] == "bf16 autocast")
    for name, step, su, inf, isu, cos, gl2, ol2, first in rows[1:]:
        if cos == "—":
            continue
        ok = (su >= 1.2 or isu >= 1.2) and float(cos) >= 0.999 and float(ol2.rstrip(" %")) <= 1.0
        why = f"step {su:.2f}×, inference {isu:.2f}×, gradient cosine {cos}, output {ol2}"
        if name.endswith(" + bf16"):  # a lever on top of bf16 must beat bf16 alone
            ok = ok and (su >= 1.1 * bf16[2] or isu >= 1.1 * bf16[4])
            why += f"; bf16 alone {bf16[2]:.2f}× / {bf16[4]:.2f}×"
        decision.append(f"- {name}: {'**adopted**' if ok else 'not adopted'} ({why})")
    lines += decision
    lines += inference_quality(a.quality_cases) if a.quality_cases else []
    info = run_info(started)
    lines += ["", f"Commit {info.get('commit')}; wall time {info.get('wall_seconds', 0):.0f} s."]
    Path(a.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def inference_quality(n: int) -> list[str]:
    """DiffPIR (50 NFE) with the bench prior in fp32 and bf16 on benchmarks/samplers.py's test phantoms and tasks."""
    import sys

    sys.path.insert(0, str(ROOT))
    import samplers as S

    from monai_diffrecon.diffusion import DiffusionPrior
    from monai_diffrecon.evaluation import Results
    from monai_diffrecon.samplers import DiffPIR

    p32 = S.load_prior()
    p16 = DiffusionPrior(p32.network, make_scheduler(), precision="bf16")
    seeds = S.split_seeds("test", n)
    x = S.phantoms(seeds)
    rows, times = [], {"fp32": [], "bf16": []}
    for task, (key, sigma, offset) in S.TASKS.items():
        op = S.operator(key)
        y = S.measure(op, x, sigma, seeds, offset)
        ypm = 2 * y - op(torch.ones_like(x))  # the prior's [−1, 1] space (benchmarks/samplers.py)
        for rep in range(2):  # interleaved repeats for the time ratio; same seed, so both repeats give the same output
            for prior, lab in ((p32, "fp32"), (p16, "bf16")):
                t0 = time.perf_counter()
                out = DiffPIR(prior, 50, sigma_y=2 * sigma)(ypm, op, generator=torch.Generator().manual_seed(5), progress=False).mean
                times[lab].append(time.perf_counter() - t0)
                if rep == 0:
                    rows += [{"method": lab, "task": task, "case": s, "psnr": v[0]} for s, v in zip(seeds, S.metrics((out + 1) / 2, x))]
    res = Results(rows, ["task", "case"])
    out = ["", f"## bf16 inference end to end (DiffPIR, 50 NFE, bench prior; {n} test phantoms per task)", "",
           "| task | fp32 PSNR | bf16 PSNR | bf16 − fp32 [95 % CI] |", "|---|---|---|---|"]
    for task in S.TASKS:
        d = res.compare("bf16", "fp32", "psnr", task=task)
        out.append(f"| {task} | {res.estimate('fp32', 'psnr', task=task)} | {res.estimate('bf16', 'psnr', task=task)} | "
                   f"{d.mean:+.3f} [{d.low:+.3f}, {d.high:+.3f}] |")
    out += ["", f"Time ratio bf16/fp32 (median of interleaved runs): {statistics.median(times['bf16']) / statistics.median(times['fp32']):.2f}."]
    return out


if __name__ == "__main__":
    main()
