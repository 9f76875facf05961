"""I/O: staged outputs now; DICOM / k-space readers and the derived-series writer arrive with the I/O issue."""

from monai_diffrecon.io.staging import staged_directory

__all__ = ["staged_directory"]
