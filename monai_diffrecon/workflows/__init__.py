"""End-to-end workflows behind the bundles (DICOM/k-space in → DICOM/NIfTI/PNG out).

The names below are imported on first use (PEP 562 module ``__getattr__``), so ``import monai_diffrecon.workflows``
or ``from monai_diffrecon.workflows import SPECTReconstruction`` loads only the modality it needs (the SPECT bundle
does not import the MRI, natural-image or satellite workflows). Every name stays importable as before, including
through the bundle configs' ``_target_`` paths (e.g. ``monai_diffrecon.workflows.SPECTReconstruction``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name → submodule that defines it
_LAZY = {
    "CaseWorkflow": "base",
    "summarize": "base",
    "SPECTReconstruction": "spect",
    "find_study": "spect",
    "spect_datalist": "spect",
    "simulated_studies": "spect",
    "MRIReconstruction": "mri",
    "kspace_datalist": "mri",
    "simulated_kspace_files": "mri",
    "NaturalRestoration": "natural",
    "natural_datalist": "natural",
    "SatelliteCloudRemoval": "satellite",
    "satellite_datalist": "satellite",
}

__all__ = ["CaseWorkflow", "summarize", "SPECTReconstruction", "find_study", "spect_datalist", "simulated_studies", "MRIReconstruction",
           "kspace_datalist", "simulated_kspace_files", "NaturalRestoration", "natural_datalist",
           "SatelliteCloudRemoval", "satellite_datalist"]

if TYPE_CHECKING:  # for type checkers and IDEs only
    from monai_diffrecon.workflows.base import CaseWorkflow, summarize
    from monai_diffrecon.workflows.mri import MRIReconstruction, kspace_datalist, simulated_kspace_files
    from monai_diffrecon.workflows.natural import NaturalRestoration, natural_datalist
    from monai_diffrecon.workflows.satellite import SatelliteCloudRemoval, satellite_datalist
    from monai_diffrecon.workflows.spect import SPECTReconstruction, find_study, simulated_studies, spect_datalist


def __getattr__(name: str) -> Any:
    sub = _LAZY.get(name)
    if sub is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{sub}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
