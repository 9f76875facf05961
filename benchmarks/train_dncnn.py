"""Train a classical denoiser of the score-based PnP comparison → benchmarks/weights/<arch>/{model.pt, model.sha256,
train_info.json}.

Usage:
    .venv/bin/python benchmarks/train_dncnn.py --arch unet [--iters 6000] [--cohort-dir DIR]   # → weights/unet_denoiser
    .venv/bin/python benchmarks/train_dncnn.py --arch dncnn --iters 3000                       # → weights/dncnn

Architectures (both with FFDNet's noise-level map as an extra input, :mod:`monai_diffrecon.networks.dncnn`):

* ``dncnn``: :class:`~monai_diffrecon.networks.DnCNN` (12 layers, 48 features, 0.21 M parameters). Every layer
  works at full resolution, so a step costs several times a UNet step of the same batch; the shipped weights had
  3000 iterations.
* ``unet``: :class:`~monai_diffrecon.networks.UNetDenoiser` (DRUNet-style residual UNet, 1.04 M parameters — the
  size of the 1.11 M diffusion prior), trained to the diffusion prior's budget in iterations and batch (6000 × 16).

Both are trained by :class:`~monai_diffrecon.training.GaussianDenoiserTrainer` (σ ~ U(0, 0.5) in the [−1, 1] range —
the σ range ScorePnP anneals through) on the *same* patch cohort as ``bundles/natural_blind_deblur``'s image prior
(20 000 64² patches of the scikit-image training photographs, ``cached_patch_cohort``), AdamW lr 10⁻³ (200 warm-up),
batch 16, EMA 0.999. ``train_info.json`` records iterations, batch, process CPU-hours (summed over resumed runs; unknown,
``null``, when a checkpoint is continued without an earlier ``train_info.json``) and the commands (the budget the
comparison states).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _train_common import record_sha256  # noqa: E402

from monai_diffrecon.networks import DnCNN, UNetDenoiser  # noqa: E402
from monai_diffrecon.training import DSMConfig, GaussianDenoiserTrainer, TensorSampler  # noqa: E402
from monai_diffrecon.training.natural_cohort import cached_patch_cohort  # noqa: E402

ROOT = Path(__file__).resolve().parent
ARCHS = {"dncnn": (lambda: DnCNN(1, 12, 48), "dncnn", 3000), "unet": (lambda: UNetDenoiser(1), "unet_denoiser", 6000)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", choices=sorted(ARCHS), default="dncnn")
    ap.add_argument("--iters", type=int, default=None, help="default: dncnn 3000, unet 6000 (the diffusion prior's)")
    ap.add_argument("--cohort-dir", default="/tmp/nat_cohort")
    ap.add_argument("--out", default=None, help="default: benchmarks/weights/<dncnn|unet_denoiser>")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    build, folder, default_iters = ARCHS[a.arch]
    iters, out = a.iters or default_iters, a.out or str(ROOT / "weights" / folder)
    torch.set_num_threads(a.threads)
    cohort = cached_patch_cohort(Path(a.cohort_dir) / "patches_train.pt", 20000, 64, "train")
    cfg = DSMConfig(max_iterations=iters, batch_size=16, lr=1e-3, ema_decay=0.999, warmup=200, checkpoint_every=250, seed=0)
    info_path = Path(out) / "train_info.json"
    resumed = (Path(out) / "checkpoint.pt").is_file()  # the trainer continues its checkpoint: the budget adds up
    before = json.loads(info_path.read_text()) if resumed and info_path.is_file() else None
    cpu0, wall0 = time.process_time(), time.perf_counter()
    tr = GaussianDenoiserTrainer(build(), None, TensorSampler(cohort["images"], augment=True), out, cfg, sigma_max=0.5)
    print(tr.run())
    this = (time.process_time() - cpu0) / 3600
    total = this if not resumed else None if before is None else before.get("cpu_hours", before.get("cpu_hours_this_run", 0.0)) + this
    info = {"arch": a.arch, "iterations": iters, "batch_size": 16, "parameters": sum(p.numel() for p in tr.network.parameters()),
            "cpu_hours": None if total is None else round(total, 4), "cpu_hours_this_run": round(this, 4),
            "wall_seconds_this_run": round(time.perf_counter() - wall0, 1), "resumed": resumed,
            "threads": a.threads, "commands": [*(before or {}).get("commands", [before["command"]] if before and "command" in before else []),
                                              " ".join(["python", *sys.argv])], "sha256": record_sha256(out)}
    info_path.write_text(json.dumps(info, indent=1) + "\n")
    print(info)


if __name__ == "__main__":
    main()
