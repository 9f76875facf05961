"""Train the unconditional 2D slice prior for the SPECT benchmark's "unconditional prior + DiffPIR" baseline.

Usage:  .venv/bin/python benchmarks/train_spect_uncond.py --cohort-dir /tmp/spect_train [--iterations N]

Same network size, optimiser, batch size, iterations and training slices as the bundle's conditional prior
(``bundles/spect_cardiac_diffusion/configs/train.json``; the cohort is read from / simulated into ``--cohort-dir``
exactly as that config does), but no condition channels: the comparison isolates what the 2.5D OSEM + CT
conditioning adds. Writes ``benchmarks/weights/spect_uncond2d/{model.pt, model.sha256, loss.png}``; resumes
from ``checkpoint.pt`` (not committed).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _train_common import bundle_train_config, train_like_bundle

from monai_diffrecon.training.spect_cohort import cached_cohort

ROOT = Path(__file__).resolve().parent


def main() -> None:
    cfg = bundle_train_config("spect_cardiac_diffusion")
    p = argparse.ArgumentParser()
    p.add_argument("--cohort-dir", required=True)
    p.add_argument("--iterations", type=int, default=None, help="default: the bundle's max_iterations")
    p.add_argument("--out", default=str(ROOT / "weights" / "spect_uncond2d"))
    a = p.parse_args()
    cohort = cached_cohort(Path(a.cohort_dir) / "cohort_train.pt", cfg["n_volumes"], "train")
    print(train_like_bundle("spect_cardiac_diffusion", cohort["target"].float(), a.out, a.iterations))


if __name__ == "__main__":
    main()
