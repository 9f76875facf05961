"""Deterministic data simulators (phantoms, k-space, natural images, satellite scenes)."""

from monai_diffrecon.data.spect_lesions import OOF_KINDS, out_of_family_cases, out_of_family_phantom
from monai_diffrecon.data.spect_phantom import Patient, cardiac_phantom, draw_patient, render_patient

__all__ = [
    "OOF_KINDS",
    "Patient",
    "cardiac_phantom",
    "draw_patient",
    "out_of_family_cases",
    "out_of_family_phantom",
    "render_patient",
]
