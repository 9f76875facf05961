"""Train the *oracle* clean-image prior for benchmarks/mri.py (DPS and DDNM with a prior trained on clean images,
the reference the self-supervised MSM and SelfDB compete with).

Usage:  .venv/bin/python benchmarks/train_mri_oracle.py --cohort-dir /tmp/mri_cohort [--iterations N] [--threads 1]

Same slices, network size, optimiser, batch and iterations as the MRI bundles' train.json, but denoising score
matching on the fully sampled coil-combined complex images (2 channels) — data the bundles never see. Writes
``benchmarks/weights/mri_clean_prior/{model.pt, model.sha256, loss.png}``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _train_common import bundle_train_config, train_like_bundle

from monai_diffrecon.physics.functional.sense import complex_to_channels
from monai_diffrecon.training.mri_cohort import cached_mri_cohort

ROOT = Path(__file__).resolve().parent


def main() -> None:
    cfg = bundle_train_config("mri_multicoil_msm")
    p = argparse.ArgumentParser()
    p.add_argument("--cohort-dir", required=True)
    p.add_argument("--iterations", type=int, default=None, help="default: the bundle's max_iterations")
    p.add_argument("--out", default=str(ROOT / "weights" / "mri_clean_prior"))
    p.add_argument("--threads", type=int, default=2, help="torch threads (1 when other trainings share the CPU)")
    a = p.parse_args()
    clean = cached_mri_cohort(Path(a.cohort_dir) / "mri_clean.pt", cfg["n_slices"], "clean", cfg["size"], cfg["acceleration"])
    print(train_like_bundle("mri_multicoil_msm", complex_to_channels(clean["images"]), a.out, a.iterations, threads=a.threads))


if __name__ == "__main__":
    main()
