"""Deterministic data simulators (phantoms, k-space, natural images, satellite scenes)."""

from monai_diffrecon.data.spect_phantom import cardiac_phantom

__all__ = ["cardiac_phantom"]
