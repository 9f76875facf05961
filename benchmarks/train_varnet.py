"""Train the end-to-end unrolled baseline without diffusion for benchmarks/unfolding.py: MONAI's e2e-VarNet
(``monai.apps.reconstruction.networks.nets.VariationalNetworkModel``: learned coil sensitivities + cascades of
ComplexUnet refinement and soft data consistency), supervised on the same clean slices and random masks (R = 4 with 20
ACS lines, R = 6 with 12) as the Diff-Unfolding bundle. Loss: MSE of the magnitude (its output is the coil RSS).

Usage:  .venv/bin/python benchmarks/train_varnet.py --cohort-dir /tmp/mri_cohort [--iterations N] [--cascades 4] [--threads 1]
Writes ``benchmarks/weights/mri_varnet/{model.pt, model.sha256, loss.png}`` (resumable: checkpoint.pt).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from monai_diffrecon.diffusion import make_scheduler
from monai_diffrecon.physics import birdcage_maps
from monai_diffrecon.physics.functional.sense import channels_to_complex
from monai_diffrecon.training import DenoisingScoreTrainer, DSMConfig, MRIOperatorSampler
from monai_diffrecon.training.mri_cohort import cached_mri_cohort

ROOT = Path(__file__).resolve().parent


def varnet(cascades: int = 4, features=(16, 16, 32, 64, 128, 16)):
    from monai.apps.reconstruction.networks.nets.coil_sensitivity_model import CoilSensitivityModel
    from monai.apps.reconstruction.networks.nets.complex_unet import ComplexUnet
    from monai.apps.reconstruction.networks.nets.varnet import VariationalNetworkModel

    return VariationalNetworkModel(CoilSensitivityModel(features=features), ComplexUnet(features=features), num_cascades=cascades)


def varnet_inputs(y: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Our complex ``(B, C, H, W)`` k-space and ``(B|1, 1, 1, W)`` mask → VarNet's ``(B, C, H, W, 2)`` and ``(1, 1, 1, W, 1)``."""
    return torch.view_as_real(y.to(torch.complex64)).contiguous(), mask[:1].reshape(1, 1, 1, -1, 1).bool()


class VarNetTrainer(DenoisingScoreTrainer):
    """Supervised magnitude regression with the trainer's optimiser, EMA, checkpoint/resume (no diffusion)."""

    def loss(self, batch: dict, generator: torch.Generator) -> torch.Tensor:
        k, m = varnet_inputs(batch["y"], batch["mask"])
        target = channels_to_complex(batch["image"]).abs()[:, 0]
        return torch.nn.functional.mse_loss(self.model(k.to(self.device), m.to(self.device)), target.to(self.device))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cohort-dir", required=True)
    ap.add_argument("--iterations", type=int, default=3000)
    ap.add_argument("--cascades", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--n-slices", type=int, default=600)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "weights" / "mri_varnet"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    clean = cached_mri_cohort(Path(a.cohort_dir) / "mri_clean.pt", a.n_slices, "clean", a.size)
    acs = (20, 12) if a.size >= 128 else (max(4, a.size // 8), max(4, a.size // 12))
    smp = MRIOperatorSampler(clean["images"], birdcage_maps(8, (a.size, a.size)), accelerations=(4, 6), center_lines=acs, shared_mask=True)
    cfg = DSMConfig(max_iterations=a.iterations, batch_size=a.batch_size, lr=5e-4, warmup=200, checkpoint_every=250)
    print(VarNetTrainer(varnet(a.cascades), make_scheduler(), smp, a.out, cfg).run())
    from _train_common import record_sha256

    print(record_sha256(a.out))


if __name__ == "__main__":
    main()
