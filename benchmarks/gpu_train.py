"""Train several bundles' networks side by side on one lent GPU within a fixed time budget.

A task here is lent a GPU only by chance and for 15 minutes in all, so one prepared command trains every network
that is still CPU-bound, each from its bundle's own ``train.json`` (parsed with MONAI's ``ConfigParser``, exactly as
``python -m monai.bundle run`` would) with these overrides only: ``device`` = cuda, a larger ``batch_size``
(twice the CPU batch: the GPU is shared by all jobs), ``max_iterations`` unbounded, ``checkpoint_every`` 1000. At the deadline each
trainer gets SIGTERM, saves its checkpoint and EMA weights and stops (the trainers' own signal handling), so the
iteration count is whatever the budget allowed — reported per job in ``summary.json``.

Data that cannot be generated quickly on the GPU machine travels with the command (``prepare`` writes it here):

* MRI: the 600 training slices of ``mni_mr_slices("train", 600, seed=40000)`` as float16 magnitude/phase
  (relative error 3e-4, far below the k-space noise σ = 0.01); the GPU machine re-simulates the acquisitions
  (same seeds, ``mri_acquisition``) and writes ``mri_train.pt`` / ``mri_clean.pt`` with the cohort's own meta.
  (nilearn, torchio and SimpleITK, which make the source slices, are not installed there.)
* Kernels: the kernel-prior cohort (20 000 kernels take 6.5 min on one core, sequential generator) in float16.

Usage::

    .venv/bin/python benchmarks/gpu_train.py prepare --dest .gpu/cohort            # here, once
    python3 benchmarks/gpu_train.py train --bundles-dir .gpu/bundles --src .gpu/cohort \
        --cohort-dir /tmp/cohort --work /tmp/gpu_runs --out $OUT --minutes 7           # on the GPU machine
    .venv/bin/python benchmarks/gpu_train.py train ... --device cpu --smoke --minutes 1  # CPU rehearsal
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
MRI_N, MRI_SIZE, MRI_SEED = 600, 128, 40_000


@dataclass
class Job:
    bundle: str
    configs: list[str]
    batch: int
    overrides: dict = field(default_factory=dict)
    oracle: bool = False  # clean-image DSM prior with the MSM bundle's settings (benchmarks/train_mri_oracle.py)


JOBS = {
    "mri_msm": Job("mri_multicoil_msm", ["train.json"], 16),
    "mri_selfdb": Job("mri_multicoil_selfdb", ["train.json"], 16),
    "mri_oracle": Job("mri_multicoil_msm", ["train.json"], 16, oracle=True),
    "mri_unfolding": Job("mri_multicoil_unfolding", ["train.json"], 8),
    "natural_image": Job("natural_blind_deblur", ["train.json"], 32),
    "natural_kernel": Job("natural_blind_deblur", ["train.json", "train_kernel.json"], 32),
    "satellite_sar": Job("satellite_cloud_removal", ["train.json"], 16),
    "satellite_nosar": Job("satellite_cloud_removal", ["train.json"], 16, {"use_sar": False}),
}
SMOKE = {"n_slices": 8, "n_patches": 64, "n_kernels": 16, "n_scenes": 8}


# ---------------------------------------------------------------------------------------------- data that travels
def prepare(dest: Path, kernels_pt: str | None) -> None:
    """Write the float16 MRI source slices (and the kernel cohort, if ``kernels_pt`` is given) to ``dest``."""
    from monai_diffrecon.data.mri_sim import mni_mr_slices

    dest.mkdir(parents=True, exist_ok=True)
    im = mni_mr_slices("train", MRI_N, size=MRI_SIZE, seed=MRI_SEED)
    mag = im.abs().numpy().astype(np.float16)
    ph = np.where(mag > 0, im.angle().numpy(), 0).astype(np.float16)
    (dest / "mri_src600.f16.xz").write_bytes(lzma.compress(mag.tobytes() + ph.tobytes(), preset=6))
    if kernels_pt:
        d = torch.load(kernels_pt, map_location="cpu", weights_only=True)
        blob = {"kernels": d["kernels"].half(), "maxima": d["maxima"], "meta": d["meta"]}
        raw = Path(str(dest / "kernels_train.pt") + ".tmp")
        torch.save(blob, raw)
        (dest / "kernels_train.pt.xz").write_bytes(lzma.compress(raw.read_bytes(), preset=6))
        raw.unlink()


def _acquire(args):
    from monai_diffrecon.physics.functional.sense import sense_combine
    from monai_diffrecon.training.mri_cohort import mri_acquisition

    torch.set_num_threads(1)
    i, img = args
    acq = mri_acquisition(img, MRI_SEED + i, 4.0)
    return acq["kspace"], acq["mask"], acq["maps"], sense_combine(acq["kspace_full"][None], acq["maps"][None])[0]


def unpack_cohorts(src: Path, cohort_dir: Path, n_mri: int) -> None:
    """Rebuild ``mri_train.pt``/``mri_clean.pt`` (re-simulated acquisitions) and ``kernels_train.pt`` in ``cohort_dir``."""
    from multiprocessing import Pool

    from monai_diffrecon.training.cohort_io import save_cohort

    cohort_dir.mkdir(parents=True, exist_ok=True)
    raw = np.frombuffer(lzma.decompress((src / "mri_src600.f16.xz").read_bytes()), dtype=np.float16)
    mag, ph = raw[: raw.size // 2], raw[raw.size // 2:]
    shape = (MRI_N, MRI_SIZE, MRI_SIZE)
    images = torch.polar(torch.from_numpy(mag.astype(np.float64).reshape(shape)), torch.from_numpy(ph.astype(np.float64).reshape(shape)))
    t = time.time()
    with Pool(min(14, os.cpu_count() or 1)) as pool:
        res = pool.map(_acquire, [(i, images[i]) for i in range(n_mri)], chunksize=4)
    k, m, s, c = (torch.stack(v) for v in zip(*res))
    meta = {"n": n_mri, "size": MRI_SIZE, "acceleration": 4.0, "seed": MRI_SEED}
    save_cohort({"kspace": k, "mask": m, "maps": s, "meta": {"split": "train", **meta}}, cohort_dir / "mri_train.pt")
    save_cohort({"images": c, "meta": {"split": "clean", **meta}}, cohort_dir / "mri_clean.pt")
    print(f"MRI cohort: {n_mri} acquisitions re-simulated in {time.time() - t:.0f} s", flush=True)
    kx = src / "kernels_train.pt.xz"
    if kx.exists():
        tmp = cohort_dir / "kernels_blob.pt"
        tmp.write_bytes(lzma.decompress(kx.read_bytes()))
        d = torch.load(tmp, map_location="cpu", weights_only=True)
        tmp.unlink()
        save_cohort({"kernels": d["kernels"].float(), "maxima": d["maxima"], "meta": d["meta"]}, cohort_dir / "kernels_train.pt")


# ---------------------------------------------------------------------------------------------- one job
def build_parser(job: Job, bundles_dir: Path, out_dir: Path, cohort_dir: Path, device: str, smoke: bool, keep_batch: bool = False):
    from monai.bundle import ConfigParser

    cfg_dir = bundles_dir / job.bundle / "configs"
    parser = ConfigParser()
    parser.read_config([str(cfg_dir / f) for f in job.configs])
    parser["imports"] = list(parser["imports"]) + ["$import monai_diffrecon.physics.functional.sense", "$import monai_diffrecon.training.mri_cohort"]
    parser["bundle_root"] = str(bundles_dir / job.bundle)
    parser["output_dir"] = str(out_dir)
    parser["cohort_dir"] = str(cohort_dir)
    parser["device"] = f"$torch.device('{device}')"
    parser["batch_size"] = 2 if smoke else (parser["batch_size"] if keep_batch else job.batch)
    parser["max_iterations"] = 10**7
    parser["progress"] = False
    parser["trainer_config#checkpoint_every"] = 20 if smoke else 1000
    for k, v in job.overrides.items():
        parser[k] = v
    if smoke:
        for k, v in SMOKE.items():
            if k in parser:
                parser[k] = v
    if job.oracle:
        parser["cohort"] = {"_target_": "monai_diffrecon.training.mri_cohort.cached_mri_cohort", "path": "$@cohort_dir + '/mri_clean.pt'",
                            "n_slices": "@n_slices", "split": "clean", "size": "@size", "acceleration": "@acceleration", "progress": False}
        parser["sampler"] = {"_target_": "monai_diffrecon.training.TensorSampler",
                             "images": "$monai_diffrecon.physics.functional.sense.complex_to_channels(@cohort['images'])"}
        parser["trainer"] = {"_target_": "monai_diffrecon.training.DenoisingScoreTrainer", "network": "@network_def", "scheduler": "@scheduler",
                             "sampler": "@sampler", "out_dir": "@output_dir", "config": "@trainer_config", "progress": False, "device": "@device"}
    return parser


def run_job(name: str, a) -> None:
    job = JOBS[name]
    torch.set_num_threads(2)
    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = True  # TF32 tensor cores for the convolutions and attention products
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    parser = build_parser(job, Path(a.bundles_dir), Path(a.work) / name, Path(a.cohort_dir), a.device, a.smoke, a.keep_batch)
    t0 = time.time()
    trainer = parser.get_parsed_content("trainer")
    n_params = sum(p.numel() for p in trainer.network.parameters())
    print(f"{name}: built in {time.time() - t0:.0f} s, {n_params} parameters, batch {parser['batch_size']}", flush=True)
    ckpt = Path(a.work) / name / "checkpoint.pt"
    start = int(torch.load(ckpt, map_location="cpu", weights_only=True)["iteration"]) if ckpt.exists() else 0
    t1 = time.time()
    out = trainer.run()
    dt = time.time() - t1
    losses = trainer.losses[-200:]
    rec = {"job": name, "bundle": job.bundle, "configs": job.configs, "overrides": job.overrides, "oracle": job.oracle,
           "batch_size": parser["batch_size"], "iterations": trainer.iteration, "resumed_from": start,
           "train_seconds": round(dt, 1), "iterations_per_second": round((trainer.iteration - start) / max(dt, 1e-9), 2), "parameters": n_params,
           "loss_last200": float(np.mean(losses)) if losses else None, "device": torch.cuda.get_device_name() if a.device == "cuda" else "cpu",
           "result": {k: v for k, v in (out or {}).items() if isinstance(v, (int, float, str))}}
    (Path(a.work) / name / "job.json").write_text(json.dumps(rec, indent=1))
    print(json.dumps(rec), flush=True)


# ---------------------------------------------------------------------------------------------- driver
def train(a) -> None:
    work, out = Path(a.work), Path(a.out)
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    unpack_cohorts(Path(a.src), Path(a.cohort_dir), SMOKE["n_slices"] if a.smoke else MRI_N)
    names = a.jobs.split(",") if a.jobs else list(JOBS)
    env = dict(os.environ, OMP_NUM_THREADS="2", PYTHONUNBUFFERED="1", PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    procs = {}
    for n in names:
        (work / n).mkdir(parents=True, exist_ok=True)
        if a.init and (Path(a.init) / n / "checkpoint.pt").exists():  # resume a CPU run (needs --keep-batch)
            shutil.copy(Path(a.init) / n / "checkpoint.pt", work / n / "checkpoint.pt")
        cmd = [sys.executable, __file__, "job", n, "--bundles-dir", a.bundles_dir, "--cohort-dir", a.cohort_dir, "--work", a.work, "--device", a.device]
        cmd += (["--smoke"] if a.smoke else []) + (["--keep-batch"] if a.keep_batch else [])
        procs[n] = subprocess.Popen(cmd, stdout=open(work / n / "log.txt", "w"), stderr=subprocess.STDOUT, env=env)
    deadline = t_start + 60 * a.minutes
    while time.time() < deadline and any(p.poll() is None for p in procs.values()):
        time.sleep(5)
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    t_stop = time.time()
    while time.time() < t_stop + a.grace and any(p.poll() is None for p in procs.values()):
        time.sleep(1)
    for p in procs.values():
        if p.poll() is None:
            p.kill()
    summary = {}
    for n, p in procs.items():
        jf = work / n / "job.json"
        summary[n] = json.loads(jf.read_text()) if jf.exists() else {"job": n, "returncode": p.returncode, "failed": True}
        summary[n]["returncode"] = p.returncode
    summary["_wall_seconds"] = round(time.time() - t_start, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))
    pack(work, out, names)


def pack(work: Path, out: Path, names: list[str], limit: int = 15_000_000) -> None:
    """``$OUT`` returns at most 8 files of 16 MB: logs in one tar, weights greedily in tars under ``limit``."""
    with tarfile.open(out / "logs.tar.gz", "w:gz") as tf:
        for n in names:
            for f in ("log.txt", "job.json", "loss.png"):
                if (work / n / f).exists():
                    tf.add(work / n / f, arcname=f"{n}/{f}")
    files = [(n, work / n / "model.pt") for n in names if (work / n / "model.pt").exists()]
    groups: list[list] = []
    for n, f in files:
        for g in groups:
            if sum(x.stat().st_size for _, x in g) + f.stat().st_size < limit:
                g.append((n, f))
                break
        else:
            groups.append([(n, f)])
    for i, g in enumerate(groups[:6]):
        with tarfile.open(out / f"weights_{i}.tar", "w") as tf:
            for n, f in g:
                tf.add(f, arcname=f"{n}/model.pt")


def timing(a) -> dict:
    """Seconds per image of Diff-Unfolding (10 DDIM steps, K = 3, 8 coils, R = 4) at ``a.size``² on ``a.device`` —
    the architecture's cost (untrained weights: the time does not depend on their values)."""
    from monai_diffrecon.diffusion import make_scheduler
    from monai_diffrecon.networks import unfolded_denoiser
    from monai_diffrecon.physics import MultiCoilMRI, birdcage_maps, random_lines_mask
    from monai_diffrecon.samplers import DiffUnfolding

    dev = torch.device(a.device)
    torch.backends.cuda.matmul.allow_tf32 = True
    sch = make_scheduler("ddim")
    net = unfolded_denoiser(sch.alphas_cumprod, channels=2, num_unroll=3, size="small", cg_iters=6).to(dev).eval()
    n = a.size
    op = MultiCoilMRI(birdcage_maps(8, (n, n)), random_lines_mask(n, 4.0, 20, generator=torch.Generator().manual_seed(0))).to(dev)
    y = op(torch.randn(1, 1, n, n, dtype=torch.complex64, device=dev))
    sampler = DiffUnfolding(net, num_steps=10, scheduler=sch).to(dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    times = []
    with torch.no_grad():
        for i in range(a.repeats + 2):
            sync()
            t = time.perf_counter()
            out = sampler(y, op, torch.Generator().manual_seed(i), progress=False)
            sync()
            times.append(time.perf_counter() - t)
    rec = {"what": "Diff-Unfolding 10 DDIM steps, K=3, shared small UNet, 8 coils, R=4", "size": n, "device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
           "parameters": sum(p.numel() for p in net.parameters()), "seconds_per_image_median": float(np.median(times[2:])),
           "seconds_all": [round(x, 4) for x in times], "output_finite": bool(torch.isfinite(torch.view_as_real(out.mean)).all())}
    print(json.dumps(rec), flush=True)
    if a.out:
        Path(a.out).mkdir(parents=True, exist_ok=True)
        (Path(a.out) / "timing.json").write_text(json.dumps(rec, indent=1))
    return rec


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    pp = sub.add_parser("prepare")
    pp.add_argument("--dest", required=True)
    pp.add_argument("--kernels", default=None, help="a kernels_train.pt built by cached_kernel_cohort(…, 20000, 64, 'train')")
    for name in ("train", "job"):
        q = sub.add_parser(name)
        if name == "job":
            q.add_argument("name")
        q.add_argument("--bundles-dir", required=True)
        q.add_argument("--cohort-dir", required=True)
        q.add_argument("--work", required=True)
        q.add_argument("--device", default="cuda")
        q.add_argument("--smoke", action="store_true")
        q.add_argument("--keep-batch", action="store_true", help="the bundle's own batch size (to resume a CPU checkpoint)")
        if name == "train":
            q.add_argument("--src", required=True)
            q.add_argument("--out", required=True)
            q.add_argument("--minutes", type=float, default=7.0)
            q.add_argument("--grace", type=float, default=45.0)
            q.add_argument("--jobs", default="")
            q.add_argument("--init", default="", help="folder with NAME/checkpoint.pt to resume from")
    tq = sub.add_parser("timing")
    tq.add_argument("--device", default="cuda")
    tq.add_argument("--size", type=int, default=256)
    tq.add_argument("--repeats", type=int, default=5)
    tq.add_argument("--out", default="")
    a = p.parse_args()
    if a.cmd == "timing":
        timing(a)
    elif a.cmd == "prepare":
        prepare(Path(a.dest), a.kernels)
    elif a.cmd == "job":
        run_job(a.name, a)
    else:
        train(a)


if __name__ == "__main__":
    main()
