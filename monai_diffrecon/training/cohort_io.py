"""Saving simulated training cohorts: one atomic ``torch.save`` (temporary file, then rename) shared by the SPECT, MRI
and satellite cohort builders, so an interrupted build never leaves a truncated cohort that a later run would load."""

from __future__ import annotations

import os
from pathlib import Path

import torch

__all__ = ["save_cohort", "cached"]


def save_cohort(data: dict, out_path: str | Path) -> Path:
    """Write ``data`` to ``out_path`` atomically (parents created); returns the path. The temporary file is unique to
    the process: DDP ranks (``torchrun``) build the same cohort at the same path at once, and with a shared temporary
    name one rank renamed the file another was still writing."""
    p = Path(out_path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    torch.save(data, tmp)
    tmp.replace(p)
    return p


def cached(path: str | Path, meta: dict, build) -> dict:
    """The cohort at ``path`` if its ``meta`` equals ``meta``; else ``build()`` (a dict of tensors), saved atomically
    with ``meta`` and returned as loaded (``weights_only=True``)."""
    p = Path(path)
    if p.exists():
        data = torch.load(p, map_location="cpu", weights_only=True)
        if data.get("meta") == meta:
            return data
    data = build()
    data["meta"] = meta
    save_cohort(data, p)
    return torch.load(p, map_location="cpu", weights_only=True)
