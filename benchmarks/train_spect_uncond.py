"""Train the unconditional 2D slice prior for the SPECT benchmark's "unconditional prior + DiffPIR" baseline.

Usage:  .venv/bin/python benchmarks/train_spect_uncond.py --cohort-dir /tmp/spect_train --iterations 2000 --init-from-bundle

Same network size, optimiser, batch size and training slices as the bundle's conditional prior
(``bundles/spect_cardiac_diffusion/configs/train.json``; the cohort is read from / simulated into ``--cohort-dir``
exactly as that config does), but no condition channels: the comparison isolates what the 2.5D OSEM + CT
conditioning adds. ``--init-from-bundle`` starts from the bundle's trained weights (all tensors except the
condition channels of the input convolution) and fine-tunes unconditionally for ``--iterations`` — so the baseline
gets the conditional model's training compute plus its own, not less. Writes ``benchmarks/weights/spect_uncond2d/{model.pt, model.sha256, loss.png}``; resumes
from ``checkpoint.pt`` (not committed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import torch

from _train_common import bundle_train_config, train_like_bundle

from monai_diffrecon.training.spect_cohort import cached_cohort

ROOT = Path(__file__).resolve().parent
BUNDLE = ROOT.parent / "bundles" / "spect_cardiac_diffusion"


def main() -> None:
    cfg = bundle_train_config("spect_cardiac_diffusion")
    p = argparse.ArgumentParser()
    p.add_argument("--cohort-dir", required=True)
    p.add_argument("--iterations", type=int, default=None, help="default: the bundle's max_iterations")
    p.add_argument("--out", default=str(ROOT / "weights" / "spect_uncond2d"))
    p.add_argument("--init-from-bundle", action="store_true")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    cohort = cached_cohort(Path(a.cohort_dir) / "cohort_train.pt", cfg["n_volumes"], "train")
    init = None
    if a.init_from_bundle:
        meta = json.loads((BUNDLE / "configs" / "metadata.json").read_text())
        path = BUNDLE / "models" / "model.pt"
        if hashlib.sha256(path.read_bytes()).hexdigest() != meta["model_sha256"]:
            raise SystemExit(f"{path}: sha256 does not match metadata.json")
        init = torch.load(path, map_location="cpu", weights_only=True)
    print(train_like_bundle("spect_cardiac_diffusion", cohort["target"].float(), a.out, a.iterations, init_state=init, threads=a.threads))


if __name__ == "__main__":
    main()
