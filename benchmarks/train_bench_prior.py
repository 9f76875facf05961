"""Train the small 2D prior used by benchmarks/samplers.py (MR-like phantom magnitudes, 32², values in [−1, 1]).

Usage:  .venv/bin/python benchmarks/train_bench_prior.py [--iterations 1500] [--out benchmarks/weights/bench_prior_mr32]
Writes ``model.pt`` (EMA weights, ``torch.load(..., weights_only=True)``), ``checkpoint.pt`` (resumable),
``loss.png`` and ``model.sha256``. Resumes automatically if a checkpoint exists.
"""

from __future__ import annotations

import argparse

import torch
from _train_common import record_sha256

from monai_diffrecon.data.mri_sim import mr_phantom
from monai_diffrecon.diffusion import make_scheduler
from monai_diffrecon.networks import diffusion_unet
from monai_diffrecon.training import DenoisingScoreTrainer, DSMConfig, TensorSampler

SIZE = 32


def training_images(n: int = 2000, seed: int = 1000) -> torch.Tensor:
    """Phantom magnitudes scaled to [−1, 1] (seeds ≥ 1000; the benchmark's test images use seeds < 1000)."""
    g = torch.Generator().manual_seed(seed)
    imgs = torch.stack([mr_phantom(SIZE, g).abs() for _ in range(n)]).float()[:, None]
    return imgs / imgs.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6) * 2 - 1


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--iterations", type=int, default=1500)
    p.add_argument("--out", default="benchmarks/weights/bench_prior_mr32")
    a = p.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    net = diffusion_unet(2, 1, size="tiny")
    cfg = DSMConfig(max_iterations=a.iterations, batch_size=32, lr=1e-3, ema_decay=0.995, warmup=100, checkpoint_every=100)
    tr = DenoisingScoreTrainer(net, make_scheduler(), TensorSampler(training_images(), augment=True), a.out, cfg)
    out = tr.run()
    print(out, record_sha256(a.out))


if __name__ == "__main__":
    main()
