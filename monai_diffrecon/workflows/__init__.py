"""End-to-end workflows behind the bundles (DICOM/k-space in → DICOM/NIfTI/PNG out)."""

from monai_diffrecon.workflows.base import CaseWorkflow, summarize
from monai_diffrecon.workflows.satellite import SatelliteCloudRemoval, satellite_datalist
from monai_diffrecon.workflows.natural import NaturalRestoration, natural_datalist
from monai_diffrecon.workflows.mri import MRIReconstruction, kspace_datalist, simulated_kspace_files
from monai_diffrecon.workflows.spect import SPECTReconstruction, find_study, simulated_studies, spect_datalist

__all__ = ["CaseWorkflow", "summarize", "SPECTReconstruction", "find_study", "spect_datalist", "simulated_studies", "MRIReconstruction",
           "kspace_datalist", "simulated_kspace_files", "NaturalRestoration", "natural_datalist",
           "SatelliteCloudRemoval", "satellite_datalist"]
