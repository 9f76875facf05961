"""monai_diffrecon: diffusion-model image reconstruction for MONAI (SPECT, multi-coil MRI, CT, natural images)."""

__version__ = "0.1.0"
