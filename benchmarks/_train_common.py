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


def init_from_conditional(net: torch.nn.Module, state: dict) -> int:
    """Copy a conditional network's weights into the unconditional ``net`` of the same size: every tensor whose
    shape matches, and for the input convolution only the weights of the image channel (the condition channels are
    dropped). Returns the number of tensors copied."""
    own = net.state_dict()
    n = 0
    for k, v in state.items():
        if k in own and own[k].shape == v.shape:
            own[k] = v.clone()
            n += 1
        elif k in own and v.dim() == 4 and own[k].shape[1] < v.shape[1] and own[k].shape[0] == v.shape[0]:
            own[k] = v[:, : own[k].shape[1]].clone()
            n += 1
    net.load_state_dict(own)
    return n


def train_like_bundle(bundle: str, images: torch.Tensor, out_dir: str | Path, iterations: int | None = None,
                      init_state: dict | None = None, threads: int = 2) -> dict:
    """Denoising score matching on ``images (N, C, H, W)`` with ``bundle``'s training settings, no condition;
    ``init_state``: start from these (conditional) weights via :func:`init_from_conditional`."""
    cfg = bundle_train_config(bundle)
    torch.set_num_threads(threads)
    torch.manual_seed(cfg["seed"])
    net = diffusion_unet(2, images.shape[1], size=cfg["network_def"]["size"])
    if init_state is not None:
        print(f"initialised {init_from_conditional(net, init_state)} tensors from the conditional weights")
    tc = cfg["trainer_config"]
    dsm = DSMConfig(max_iterations=iterations or cfg["max_iterations"], batch_size=cfg["batch_size"], lr=cfg["lr"], ema_decay=tc["ema_decay"],
                    warmup=tc["warmup"], checkpoint_every=tc["checkpoint_every"], seed=cfg["seed"])
    out = DenoisingScoreTrainer(net, make_scheduler(), TensorSampler(images), out_dir, dsm).run()
    out["sha256"] = record_sha256(out_dir)
    return out
