from __future__ import annotations

import json
from pathlib import Path

import pytest

from monai_diffrecon.data.spect_study import simulate_spect_study


@pytest.fixture(scope="session")
def study(tmp_path_factory):
    """A small simulated SPECT/CT study written as DICOM (32³, 12 mm voxels, 32 views, two heads)."""
    return simulate_spect_study(tmp_path_factory.mktemp("study"), seed=4, size=32, voxel_mm=12.0, views=32, total_counts=5e5)


def case_dirs(out: str | Path) -> list[Path]:
    """The per-case folders of a run's output ``out`` (``OUT/<case id>/``), in the order of ``summary.json``'s cases
    (the order of the inputs). A failed case (cohort ``--keep-going``) is listed too; its folder does not exist."""
    out = Path(out)
    return [out / c["output"] for c in json.loads((out / "summary.json").read_text())["cases"]]


def spect_tiny_weights(path: str | Path) -> tuple[Path, str]:
    """Random tiny weights for the SPECT bundle's network (its ``cond_channels`` as ``inference.json`` sets them; use
    with ``network_def#size=tiny``) saved to ``path``: smoke tests exercise the configs, not the model.
    Returns ``(path, sha256)``."""
    import hashlib

    import torch

    from monai_diffrecon.bundles import BUNDLES_DIR
    from monai_diffrecon.networks import diffusion_unet

    cfg = json.loads((BUNDLES_DIR / "spect_cardiac_diffusion" / "configs" / "inference.json").read_text())
    torch.manual_seed(0)
    p = Path(path)
    torch.save(diffusion_unet(2, 1, cond_channels=cfg["network_def"]["cond_channels"], size="tiny").state_dict(), p)
    return p, hashlib.sha256(p.read_bytes()).hexdigest()
