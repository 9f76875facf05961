"""Saving simulated training cohorts: one atomic ``torch.save`` (temporary file, then rename) shared by the SPECT, MRI
and satellite cohort builders, so an interrupted build never leaves a truncated cohort that a later run would load."""

from __future__ import annotations

from pathlib import Path

import torch

__all__ = ["save_cohort"]


def save_cohort(data: dict, out_path: str | Path) -> Path:
    """Write ``data`` to ``out_path`` atomically (parents created); returns the path."""
    p = Path(out_path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".tmp")
    torch.save(data, tmp)
    tmp.replace(p)
    return p
