"""Loading shipped weights safely: sha256 checked first, then ``torch.load(..., weights_only=True)``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

from monai_diffrecon.errors import WeightsError
from monai_diffrecon.physics.functional.devices import device_of

__all__ = ["sha256_file", "load_verified"]


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_verified(network: nn.Module, path: str | Path, sha256: str | None = None, strict: bool = True,
                  map_location: str | torch.device | None = None) -> nn.Module:
    """Load a state dict into ``network`` after checking its sha256 (if given); returns the network in eval mode
    with gradients off.

    Args:
        map_location: the device to put the network on (``"cuda"``, ``torch.device("cuda:1")``, …): the tensors are
            loaded straight onto it and the network is moved there. ``None``: the network stays where it is and the
            tensors are loaded onto its device (the CPU for a network without parameters or buffers).

    Raises:
        WeightsError: missing file, sha256 mismatch, not loadable with ``weights_only=True`` (e.g. a pickle with
            code), or keys/shapes that do not fit the network.
    """
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"{p}: weights file not found")
    if sha256:
        got = sha256_file(p)
        if got != sha256.lower():
            raise WeightsError(f"{p}: sha256 {got} does not match the recorded {sha256}")
    device = torch.device(map_location) if map_location is not None else device_of(network)
    try:
        sd = torch.load(p, map_location=device, weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise WeightsError(f"{p}: not a plain state dict ({type(e).__name__})") from None
    if isinstance(sd, dict) and "ema" in sd and "model" in sd:  # a trainer checkpoint: take the EMA weights
        sd = sd["ema"]
    try:
        network.load_state_dict(sd, strict=strict)
    except (RuntimeError, TypeError) as e:
        raise WeightsError(f"{p}: weights do not fit the network ({str(e)[:300]})") from None
    return network.to(device).eval().requires_grad_(False)
