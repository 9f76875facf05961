"""Train the classical denoiser of the score-based PnP comparison → benchmarks/weights/dncnn/{model.pt, model.sha256}.

Usage:
    .venv/bin/python benchmarks/train_dncnn.py [--iters 3000] [--cohort-dir DIR] [--out benchmarks/weights/dncnn]

:class:`~monai_diffrecon.networks.DnCNN` (12 layers, 48 features, noise-level map input) trained by
:class:`~monai_diffrecon.training.GaussianDenoiserTrainer` (σ ~ U(0, 0.5) in the [−1, 1] range — the σ range ScorePnP
anneals through) on the *same* patch cohort as ``bundles/natural_blind_deblur``'s image prior (20 000 64² patches of
the scikit-image training photographs, ``cached_patch_cohort``), AdamW lr 10⁻³ (200 warm-up), batch 16, EMA 0.999.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _train_common import record_sha256  # noqa: E402

from monai_diffrecon.networks import DnCNN  # noqa: E402
from monai_diffrecon.training import DSMConfig, GaussianDenoiserTrainer, TensorSampler  # noqa: E402
from monai_diffrecon.training.natural_cohort import cached_patch_cohort  # noqa: E402

ROOT = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=3000)
    ap.add_argument("--cohort-dir", default="/tmp/nat_cohort")
    ap.add_argument("--out", default=str(ROOT / "weights" / "dncnn"))
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cohort = cached_patch_cohort(Path(a.cohort_dir) / "patches_train.pt", 20000, 64, "train")
    cfg = DSMConfig(max_iterations=a.iters, batch_size=16, lr=1e-3, ema_decay=0.999, warmup=200, checkpoint_every=250, seed=0)
    tr = GaussianDenoiserTrainer(DnCNN(1, 12, 48), None, TensorSampler(cohort["images"], augment=True), a.out, cfg, sigma_max=0.5)
    print(tr.run())
    print(record_sha256(a.out))


if __name__ == "__main__":
    main()
