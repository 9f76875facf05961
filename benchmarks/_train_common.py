"""Shared by the benchmark-only training scripts: train a baseline prior with the same settings as a bundle's
``train.json`` (network size, optimiser, batch, EMA, warm-up, iterations) and record the weights' sha256."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from monai_diffrecon.diffusion import make_scheduler
from monai_diffrecon.networks import diffusion_unet
from monai_diffrecon.training import DenoisingScoreTrainer, DSMConfig, TensorSampler

BUNDLES = Path(__file__).resolve().parent.parent / "bundles"


def bundle_train_config(bundle: str) -> dict:
    return json.loads((BUNDLES / bundle / "configs" / "train.json").read_text())


def record_sha256(out_dir: str | Path) -> str:
    """Write ``model.sha256`` next to ``model.pt`` (the benchmarks refuse weights that do not match)."""
    digest = hashlib.sha256((Path(out_dir) / "model.pt").read_bytes()).hexdigest()
    (Path(out_dir) / "model.sha256").write_text(digest + "  model.pt\n")
    return digest


def train_like_bundle(bundle: str, images: torch.Tensor, out_dir: str | Path, iterations: int | None = None) -> dict:
    """Denoising score matching on ``images (N, C, H, W)`` with ``bundle``'s training settings, no condition."""
    cfg = bundle_train_config(bundle)
    torch.set_num_threads(2)
    torch.manual_seed(cfg["seed"])
    net = diffusion_unet(2, images.shape[1], size=cfg["network_def"]["size"])
    tc = cfg["trainer_config"]
    dsm = DSMConfig(max_iterations=iterations or cfg["max_iterations"], batch_size=cfg["batch_size"], lr=cfg["lr"], ema_decay=tc["ema_decay"],
                    warmup=tc["warmup"], checkpoint_every=tc["checkpoint_every"], seed=cfg["seed"])
    out = DenoisingScoreTrainer(net, make_scheduler(), TensorSampler(images), out_dir, dsm).run()
    out["sha256"] = record_sha256(out_dir)
    return out
