"""CPU and wall time of the SPECT bundle end to end, as a user runs it → benchmarks/results/spect_time.md/json.

Usage:  .venv/bin/python benchmarks/spect_time.py [--n 3] [--threads 1] [--seed 100] [--with-truth] [--no-breakdown]

What is timed (issue 23's target: ≤ 30 CPU-s per 64³ study with one sample, end to end):

1. ``diffrecon simulate spect --n N`` writes N fresh simulated SPECT/CT studies (DICOM) into a temporary folder (not
   timed). Their ``truth.npy`` (the simulator's reference, which a clinical study does not have) is removed unless
   ``--with-truth``, so the run reads DICOM only, as a user's would.
2. Each study is reconstructed by a fresh child process
   ``diffrecon run spect_cardiac_diffusion --input STUDY --output FRESH_DIR --quiet`` with the bundle's defaults
   (one sample); its CPU time is the change of ``resource.getrusage(RUSAGE_CHILDREN)`` (user + system) across the
   child, its wall time the elapsed time. Interpreter start, imports, DICOM reading, OSEM, sampling and writing
   DICOM, NIfTI, PNG and the polar map are all included. The child must exit 0 and write those files.
3. Sampler only, for comparison: the ``seconds`` each run writes to its ``metrics.json`` (wall time of the sampler
   call inside the run: OSEM warm start + diffusion steps + count correction).
4. Breakdown (one more child on the first study, unless ``--no-breakdown``): the same run in-process
   (``monai_diffrecon.cli.main``) with CPU timers (``time.process_time``) around the imports, the reading (datalist
   + DICOM loading + projector build), the OSEM, the sampling (the sampler call less the OSEM; the network
   evaluations and the count correction shown inside it) and the writing (the figure and polar map inside it);
   ``other`` is the rest (config parsing, loading the weights, staging), and the interpreter's exit is the child's
   CPU time after the timed part (its final garbage collections over every imported module's objects).

CPU time is the robust measure: the machine may be shared (other jobs inflate wall time, and a little the CPU time
through cache and memory contention); the load average before and after is recorded.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
BUNDLE = "spect_cardiac_diffusion"
TARGET_CPU_S = 30.0
OUTPUTS = ("recon.nii.gz", "recon.png", "polar_map.png", "polar_map.json", "metrics.json")


def _diffrecon() -> list[str]:
    exe = Path(sys.executable).with_name("diffrecon")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "monai_diffrecon.cli"]


def _env(threads: int) -> dict:
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[k] = str(threads)
    return env


def _child_cpu(cmd: list[str], env: dict) -> tuple[float, float, float, subprocess.CompletedProcess]:
    """Run ``cmd``; return (user + sys CPU-s of the child, user, wall-s, the completed process)."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    user, system = r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime
    return user + system, user, wall, proc


def _check_outputs(case_dir: Path) -> None:
    missing = [f for f in OUTPUTS if not (case_dir / f).is_file()]
    if not (case_dir / "dicom").is_dir() or not any((case_dir / "dicom").rglob("*.dcm")):
        missing.append("dicom/*.dcm")
    if missing:
        raise SystemExit(f"{case_dir}: the run did not write {missing}")


# ----------------------------------------------------------------------------------------------- breakdown child
def breakdown(study: str, out: str) -> dict:
    """Run ``diffrecon run`` in this process with CPU timers around its stages (module doc, 4); returns CPU-s."""
    start = resource.getrusage(resource.RUSAGE_SELF)
    t_imp = time.process_time()
    import monai.bundle  # noqa: F401 - the imports the run makes, timed together
    import torch

    import monai_diffrecon.diffusion.prior as prior_mod
    import monai_diffrecon.networks  # imported by the run: timed with the imports
    import monai_diffrecon.samplers  # noqa: F401
    import monai_diffrecon.samplers.spect25d as s25
    import monai_diffrecon.transforms.dictionary as tdict
    import monai_diffrecon.workflows.spect as wspect
    from monai_diffrecon import cli
    from monai_diffrecon.metrics import polar_map  # noqa: F401
    from monai_diffrecon.physics.spect import SPECTProjector

    imports = time.process_time() - t_imp
    acc: dict[str, float] = {}

    def timed(name, fn):
        def wrapper(*a, **k):
            t = time.process_time()
            try:
                return fn(*a, **k)
            finally:
                acc[name] = acc.get(name, 0.0) + time.process_time() - t
        return wrapper

    wspect.spect_datalist = timed("datalist", wspect.spect_datalist)
    tdict.LoadSPECTStudyd.__call__ = timed("load", tdict.LoadSPECTStudyd.__call__)
    SPECTProjector._build = timed("projector_build", SPECTProjector._build)
    s25.osem = timed("osem", s25.osem)
    s25.honour_counts = timed("honour_counts", s25.honour_counts)
    prior_mod.DiffusionPrior.output = timed("network", prior_mod.DiffusionPrior.output)
    wspect.SPECTReconstruction.reconstruct = timed("reconstruct", wspect.SPECTReconstruction.reconstruct)
    wspect.SPECTReconstruction.sample = timed("sample", wspect.SPECTReconstruction.sample)
    wspect.SPECTReconstruction.write = timed("write", wspect.SPECTReconstruction.write)
    wspect._figure = timed("figure", wspect._figure)
    rc = cli.main(["run", BUNDLE, "--input", study, "--output", out, "--quiet"])
    if rc != 0:
        raise SystemExit(f"diffrecon run exited {rc}")
    end = resource.getrusage(resource.RUSAGE_SELF)
    total = (end.ru_utime - start.ru_utime) + (end.ru_stime - start.ru_stime)
    g = acc.get
    stages = {
        "imports": imports,
        "reading (datalist + DICOM + projector)": g("datalist", 0) + g("load", 0),
        "  of which projector build": g("projector_build", 0),
        "OSEM warm start": g("osem", 0),
        "sampling (sampler call less OSEM)": g("sample", 0) - g("osem", 0),
        "  of which network evaluations": g("network", 0),
        "  of which count correction (honour_counts)": g("honour_counts", 0),
        "metrics after sampling (reconstruct less sampler call)": g("reconstruct", 0) - g("sample", 0),
        "writing (DICOM, NIfTI, PNG, polar map)": g("write", 0),
        "  of which figure + polar map PNG": g("figure", 0),
    }
    top = [v for k, v in stages.items() if not k.startswith("  ")]
    stages["other (config, weights, staging)"] = total - sum(top)
    return {"cpu_s_process_total": total, "torch_threads": torch.get_num_threads(), "stages_cpu_s": stages}


# ----------------------------------------------------------------------------------------------------- driver
def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3, help="number of fresh simulated studies (default 3)")
    ap.add_argument("--threads", type=int, default=1, help="OMP/MKL threads of each child (default 1)")
    ap.add_argument("--seed", type=int, default=100, help="seed of the simulated studies (default 100)")
    ap.add_argument("--with-truth", action="store_true", help="keep the simulator's truth.npy (image metrics computed too)")
    ap.add_argument("--no-breakdown", action="store_true", help="skip the profiled breakdown run")
    ap.add_argument("--no-write", action="store_true", help="print only; do not write benchmarks/results")
    ap.add_argument("--_breakdown", nargs=2, metavar=("STUDY", "OUT"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a._breakdown:
        print(json.dumps(breakdown(*a._breakdown)))
        return
    env = _env(a.threads)
    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="spect_time_"))
    try:
        sim = tmp / "studies"
        cmd_sim = [*_diffrecon(), "simulate", "spect", "--output", str(sim), "--n", str(a.n), "--seed", str(a.seed), "--quiet"]
        proc = subprocess.run(cmd_sim, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"simulate failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
        studies = sorted(p for p in sim.iterdir() if p.is_dir())
        if len(studies) != a.n:
            raise SystemExit(f"expected {a.n} studies in {sim}, found {len(studies)}")
        if not a.with_truth:
            for s in studies:
                (s / "truth.npy").unlink(missing_ok=True)
        runs = []
        for i, s in enumerate(studies):
            out = tmp / f"out_{i}"
            cmd = [*_diffrecon(), "run", BUNDLE, "--input", str(s), "--output", str(out), "--quiet"]
            cpu, user, wall, proc = _child_cpu(cmd, env)
            if proc.returncode != 0:
                raise SystemExit(f"{s.name}: diffrecon run exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
            case = out / s.name
            _check_outputs(case)
            metrics = json.loads((case / "metrics.json").read_text())
            runs.append({"study": s.name, "cpu_s": round(cpu, 2), "user_s": round(user, 2), "sys_s": round(cpu - user, 2),
                         "wall_s": round(wall, 2), "sampler_wall_s": metrics.get("seconds"), "nfe": metrics.get("nfe")})
            print(f"{s.name}: {cpu:.1f} CPU-s (user {user:.1f}, sys {cpu - user:.1f}), wall {wall:.1f} s, "
                  f"sampler {metrics.get('seconds')} s wall", flush=True)
        bd = None
        if not a.no_breakdown:
            out = tmp / "out_breakdown"
            cmd = [sys.executable, str(Path(__file__).resolve()), "--_breakdown", str(studies[0]), str(out)]
            cpu, _, wall, proc = _child_cpu(cmd, env)
            if proc.returncode != 0:
                raise SystemExit(f"breakdown run exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
            bd = json.loads(proc.stdout.strip().splitlines()[-1])
            bd.update({"cpu_s_child": round(cpu, 2), "wall_s": round(wall, 2), "study": studies[0].name})
            # the child's CPU after the timed process total: interpreter start-up before it (≈ 0.05 s) and the exit,
            # whose final garbage collections walk every object of the ~4000 imported modules
            bd["stages_cpu_s"]["interpreter exit (after main returns)"] = cpu - bd["cpu_s_process_total"]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load_after = os.getloadavg()

    med = lambda k: statistics.median(r[k] for r in runs)
    command = "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/spect_time.py " + " ".join(
        x for x in [f"--n {a.n}", f"--threads {a.threads}", f"--seed {a.seed}", "--with-truth" if a.with_truth else "",
                    "--no-breakdown" if a.no_breakdown else ""] if x)
    dirty = _git("status", "--porcelain", "--untracked-files=no", "--", "monai_diffrecon", "bundles")
    result = {
        "command": command,
        "commit": _git("rev-parse", "HEAD") + (" (package or bundles modified in the working tree)" if dirty else ""),
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "threads": a.threads,
        "load_average_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "bundle": BUNDLE, "truth_npy_in_input": a.with_truth, "target_cpu_s": TARGET_CPU_S,
        "median_cpu_s": round(med("cpu_s"), 2), "median_wall_s": round(med("wall_s"), 2),
        "median_sampler_wall_s": round(med("sampler_wall_s"), 2), "runs": runs, "breakdown": bd,
    }
    lines = [
        "# SPECT bundle: time per study end to end, as a user runs it",
        "",
        (f"Generated by `{command}` at {result['date_utc']} UTC, commit {result['commit']}; {result['machine']}, "
        f"{a.threads} thread(s) per run (OMP/MKL). The machine is shared: other jobs were running (1-min load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after, on {os.cpu_count()} CPUs), so wall times are inflated; "
        "CPU time (user + system of the child, from `getrusage(RUSAGE_CHILDREN)`) is the robust measure."),
        "",
        f"Each of {a.n} fresh simulated 64³ studies (`diffrecon simulate spect --seed {a.seed}`, 60 views, DICOM"
        + (", with truth.npy" if a.with_truth else ", truth.npy removed") + ") reconstructed by a fresh "
        f"`diffrecon run {BUNDLE} --input STUDY --output FRESH_DIR --quiet` (bundle defaults, one sample; DICOM in → "
        "DICOM, NIfTI, PNG, polar map out, all checked to exist).",
        "",
        (f"**Median {result['median_cpu_s']:.1f} CPU-s per study** (target ≤ {TARGET_CPU_S:.0f}), median wall "
        f"{result['median_wall_s']:.1f} s; the sampler call alone (wall, from metrics.json) median "
        f"{result['median_sampler_wall_s']:.1f} s."),
        *([(f"Sampler alone in CPU time (the breakdown run below: OSEM warm start + sampling): "
           f"{bd['stages_cpu_s']['OSEM warm start'] + bd['stages_cpu_s']['sampling (sampler call less OSEM)']:.1f} CPU-s.")] if bd else []),
        "",
        "| study | CPU-s | user | sys | wall-s | sampler wall-s | NFE |",
        "|---|---|---|---|---|---|---|",
        *[f"| {r['study']} | {r['cpu_s']:.1f} | {r['user_s']:.1f} | {r['sys_s']:.1f} | {r['wall_s']:.1f} | {r['sampler_wall_s']} | {r['nfe']} |"
          for r in runs],
        "",
    ]
    if bd:
        lines += [
            (f"Breakdown of one run ({bd['study']}, in-process `monai_diffrecon.cli.main` with `time.process_time` timers "
            f"around each stage; {bd['cpu_s_process_total']:.1f} CPU-s in the process, {bd['cpu_s_child']:.1f} CPU-s for "
            f"the child as a whole, torch threads {bd['torch_threads']}):"),
            "",
            "| stage | CPU-s |",
            "|---|---|",
            *[f"| {k.strip() if not k.startswith('  ') else '&nbsp;&nbsp;' + k.strip()} | {v:.2f} |" for k, v in bd["stages_cpu_s"].items()],
            "",
        ]
    text = "\n".join(lines)
    print(text)
    if not a.no_write:
        (ROOT / "results" / "spect_time.md").write_text(text)
        (ROOT / "results" / "spect_time.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
