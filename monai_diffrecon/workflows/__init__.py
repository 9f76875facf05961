"""End-to-end workflows behind the bundles (DICOM/k-space in → DICOM/NIfTI/PNG out)."""

from monai_diffrecon.workflows.spect import SPECTReconstruction, find_study, spect_datalist

__all__ = ["SPECTReconstruction", "find_study", "spect_datalist"]
