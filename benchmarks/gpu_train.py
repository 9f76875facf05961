"""Train several bundles' networks side by side on one lent GPU within a fixed time budget.

A task here is lent a GPU only by chance and for 15 minutes in all, so one prepared command trains every network
that is still CPU-bound. Each job is one training campaign (:func:`monai_diffrecon.training.campaign.train`, the
code behind ``diffrecon train``): its bundle's own ``train.json`` parsed with MONAI's ``ConfigParser`` (as
``python -m monai.bundle run`` would, shared :func:`~monai_diffrecon.training.campaign.bundle_parser`) with these
overrides only: ``device`` = cuda, a larger ``batch_size`` (twice the CPU batch: the GPU is shared by all jobs), the
job's own recipe (``use_sar``, the oracle's clean-image DSM items). The campaign checkpoints every
``--checkpoint-minutes`` in ``--work/NAME`` and, at the deadline, gets SIGTERM, finishes its iteration, saves its
checkpoint and EMA weights and exits 0, so the iteration count is whatever the budget allowed. Every job appends
its entry (recipe, iterations start → end, CPU-hours, device, commit) to ``OUT/training_ledger.json``; ``OUT`` also
gets ``summary.json`` (per job, with its return code and, for a job that failed, its log tail), ``logs.tar.gz`` and
the EMA weights — plus the checkpoints where they fit in what ``$OUT`` can return (8 files of 16 MiB; a full-size
checkpoint is 18 MB, so they normally stay on the machine: ``summary.json``'s ``_returned`` says which came back).

The first H100 run lost 6 of 8 jobs (rc 1): under Python 3.12 ``pydoc.locate`` resolved the bundle target
``monai_diffrecon.networks.diffusion_unet`` to the module, not the function (fixed by the module's rename; a test now
forbids config targets that are also module paths). ``tests/test_gpu_train_smoke.py`` rehearses two jobs on the CPU
(``--smoke``: batch 2, tiny cohorts at 32², ``--iterations 2``) in CI, so a script error cannot cost a GPU window again.

Data that cannot be generated quickly on the GPU machine travels with the command (``prepare`` writes it here):

* MRI: the 600 training slices of ``mni_mr_slices("train", 600, seed=40000)`` as float16 magnitude/phase
  (relative error 3e-4, far below the k-space noise σ = 0.01); the GPU machine re-simulates the acquisitions
  (same seeds, ``mri_acquisition``) and writes ``mri_train.pt`` / ``mri_clean.pt`` with the cohort's own meta.
  (nilearn, torchio and SimpleITK, which make the source slices, are not installed there.) Only MRI jobs need ``--src``.
* Kernels: the kernel-prior cohort (20 000 kernels take 6.5 min on one core, sequential generator) in float16.

Usage::

    .venv/bin/python benchmarks/gpu_train.py prepare --dest .gpu/cohort            # here, once
    python3 benchmarks/gpu_train.py train --bundles-dir .gpu/bundles --src .gpu/cohort \
        --cohort-dir /tmp/cohort --work /tmp/gpu_runs --out $OUT --minutes 7           # on the GPU machine
    .venv/bin/python benchmarks/gpu_train.py train --bundles-dir bundles --cohort-dir /tmp/c --work /tmp/w --out /tmp/o \
        --device cpu --smoke --iterations 2 --jobs natural_image,satellite_nosar        # CPU rehearsal (the CI test)

Afterwards, here: unpack the weights into work folders and gate them (``diffrecon train BUNDLE --work DIR --promote``).
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
SMOKE_SIZE = 32  # --smoke: image/patch/scene size of the jobs that simulate their data here (not MRI: its cohort travels at 128²)


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
EXTRA_IMPORTS = ["$import monai_diffrecon.physics.functional.sense", "$import monai_diffrecon.training.mri_cohort"]


def job_overrides(job: Job, bundles_dir: Path, smoke: bool, keep_batch: bool = False) -> tuple[dict, dict]:
    """``(overrides, optional)`` for :func:`monai_diffrecon.training.campaign.train`: the job's batch size (``--smoke``: 2;
    ``--keep-batch``: the bundle's own), its own overrides, the oracle job's clean-image DSM items, the modules the GPU
    machine must import; ``optional``: the smoke cohort sizes (applied only where the config has them)."""
    base = json.loads((bundles_dir / job.bundle / "configs" / job.configs[0]).read_text())
    ov: dict = {"imports": list(base["imports"]) + EXTRA_IMPORTS}
    if smoke:
        ov["batch_size"] = 2
    elif not keep_batch:
        ov["batch_size"] = job.batch
    ov.update(job.overrides)
    if job.oracle:
        ov["cohort"] = {"_target_": "monai_diffrecon.training.mri_cohort.cached_mri_cohort", "path": "$@cohort_dir + '/mri_clean.pt'",
                        "n_slices": "@n_slices", "split": "clean", "size": "@size", "acceleration": "@acceleration", "progress": False}
        ov["batches"] = {"_target_": "monai_diffrecon.training.TensorSampler",
                         "images": "$monai_diffrecon.physics.functional.sense.complex_to_channels(@cohort['images'])"}
        ov["trainer"] = {"_target_": "monai_diffrecon.training.DenoisingScoreTrainer", "network": "@network_def", "scheduler": "@scheduler",
                         "batches": "@batches", "out_dir": "@output_dir", "config": "@trainer_config", "progress": False, "device": "@device"}
    opt = dict(SMOKE) if smoke else {}
    if smoke and not job.bundle.startswith("mri_"):
        opt["size"] = SMOKE_SIZE
    return ov, opt


def run_job(name: str, a) -> None:
    """One job = one campaign (:func:`monai_diffrecon.training.campaign.train`) in ``--work/NAME``: resumes its checkpoint if
    there is one, stops on the driver's SIGTERM (saved), appends its ledger entry to ``--ledger`` and writes ``job.json``."""
    from monai_diffrecon.training import campaign

    job = JOBS[name]
    torch.set_num_threads(2 if a.device.startswith("cuda") else int(os.environ.get("OMP_NUM_THREADS", "1")))
    torch.backends.cuda.matmul.allow_tf32 = True  # TF32 tensor cores for the convolutions and attention products
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    work = Path(a.work) / name
    ov, opt = job_overrides(job, Path(a.bundles_dir), a.smoke, a.keep_batch)
    entry = campaign.train(Path(a.bundles_dir) / job.bundle, Path(job.configs[-1]).stem, iterations=a.iterations or 10**7, work=work,
                           resume=(work / "checkpoint.pt").exists(), device=a.device, checkpoint_minutes=a.checkpoint_minutes, overrides=ov,
                           optional=opt, cohort_dir=a.cohort_dir, ledger=a.ledger or None, trust_config=True, progress=False,
                           command=" ".join(["python3", *sys.argv]))
    it = entry["iterations"]
    rec = {"job": name, "bundle": job.bundle, "configs": job.configs, "overrides": job.overrides, "oracle": job.oracle,
           "batch_size": ov.get("batch_size", "bundle's"), "recipe_id": entry["recipe_id"], "iterations": it["end"], "resumed_from": it["start"],
           "train_seconds": entry["wall_seconds"], "iterations_per_second": entry["iterations_per_second"],
           "loss_last100": entry["loss_last100"], "device": entry["device"], "stopped": entry["stopped"],
           "cpu_hours": entry["cpu_hours"], "ema_parameters_sha256": entry["ema_parameters_sha256"]}
    (work / "job.json").write_text(json.dumps(rec, indent=1))
    print(json.dumps(rec), flush=True)


# ---------------------------------------------------------------------------------------------- driver
def train(a) -> None:
    work, out = Path(a.work), Path(a.out)
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    names = a.jobs.split(",") if a.jobs else list(JOBS)
    unknown = [n for n in names if n not in JOBS]
    if unknown:
        sys.exit(f"gpu_train: unknown job(s) {unknown}; known: {sorted(JOBS)}")
    if any(JOBS[n].bundle.startswith("mri_") for n in names):
        if not a.src:
            sys.exit("gpu_train: MRI jobs need --src (the folder `prepare` wrote)")
        unpack_cohorts(Path(a.src), Path(a.cohort_dir), SMOKE["n_slices"] if a.smoke else MRI_N)
    ledger = Path(a.ledger) if a.ledger else out / "training_ledger.json"
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"), PYTHONUNBUFFERED="1",
               PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    procs = {}
    from monai_diffrecon.training.campaign import WORK_MARKER

    for n in names:
        (work / n).mkdir(parents=True, exist_ok=True)
        (work / n / WORK_MARKER).touch()  # the job folder is the campaign's own (its log.txt lands there first)
        if a.init and (Path(a.init) / n / "checkpoint.pt").exists():  # resume a CPU run (needs --keep-batch)
            shutil.copy(Path(a.init) / n / "checkpoint.pt", work / n / "checkpoint.pt")
        cmd = [sys.executable, __file__, "job", n, "--bundles-dir", a.bundles_dir, "--cohort-dir", a.cohort_dir, "--work", a.work, "--device", a.device,
               "--ledger", str(ledger), "--checkpoint-minutes", str(a.checkpoint_minutes)]
        cmd += (["--smoke"] if a.smoke else []) + (["--keep-batch"] if a.keep_batch else []) + (["--iterations", str(a.iterations)] if a.iterations else [])
        procs[n] = subprocess.Popen(cmd, stdout=open(work / n / "log.txt", "w"), stderr=subprocess.STDOUT, env=env)
    deadline = t_start + 60 * a.minutes
    while time.time() < deadline and any(p.poll() is None for p in procs.values()):
        time.sleep(0.5)
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    t_stop = time.time()
    while time.time() < t_stop + a.grace and any(p.poll() is None for p in procs.values()):
        time.sleep(0.5)
    for p in procs.values():
        if p.poll() is None:
            p.kill()
            p.wait()
    summary = {}
    for n, p in procs.items():
        jf = work / n / "job.json"
        summary[n] = json.loads(jf.read_text()) if jf.exists() else {"job": n, "failed": True,
                                                                      "log_tail": (work / n / "log.txt").read_text()[-1500:]}
        summary[n]["returncode"] = p.returncode
    summary["_wall_seconds"] = round(time.time() - t_start, 1)
    summary["_returned"] = pack(work, out, names)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))


def pack(work: Path, out: Path, names: list[str], limit: int = 15_000_000, total: int = 56_000_000, max_tars: int = 5) -> dict:
    """What comes back from ``$OUT`` is at most 8 files of 16 MiB, 64 MiB in all: ``summary.json``, the ledger, the logs
    in one tar, then the EMA weights (``model.pt``) and — where they still fit — the checkpoints (``checkpoint.pt``), greedily
    in at most ``max_tars`` tars under ``limit`` bytes each and ``total`` bytes together. Returns ``{"packed", "left_on_machine"}``."""
    with tarfile.open(out / "logs.tar.gz", "w:gz") as tf:
        for n in names:
            for f in ("log.txt", "job.json", "loss.png", "campaign.json", "validation.json"):
                if (work / n / f).exists():
                    tf.add(work / n / f, arcname=f"{n}/{f}")
    files = [(n, work / n / f) for f in ("model.pt", "checkpoint.pt") for n in names if (work / n / f).exists()]
    groups: list[list] = []
    packed, left, used = [], [], 0
    for n, f in files:
        size = f.stat().st_size
        if used + size > total or size >= limit:
            left.append(f"{n}/{f.name}")
            continue
        for g in groups:
            if sum(x.stat().st_size for _, x in g) + size < limit:
                g.append((n, f))
                break
        else:
            if len(groups) >= max_tars:
                left.append(f"{n}/{f.name}")
                continue
            groups.append([(n, f)])
        used += size
        packed.append(f"{n}/{f.name}")
    for i, g in enumerate(groups):
        with tarfile.open(out / f"weights_{i}.tar", "w") as tf:
            for n, f in g:
                tf.add(f, arcname=f"{n}/{f.name}")
    return {"packed": packed, "left_on_machine": left}


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
        q.add_argument("--iterations", type=int, default=0, help="stop each job at this iteration (0: only the wall budget)")
        q.add_argument("--checkpoint-minutes", type=float, default=3.0, help="wall minutes between checkpoints")
        q.add_argument("--ledger", default="", help="training ledger to append to (train default: OUT/training_ledger.json)")
        if name == "train":
            q.add_argument("--src", default="", help="the folder `prepare` wrote (needed by the MRI jobs)")
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
