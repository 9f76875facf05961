"""NIfTI output with the same geometry as the DICOM output.

Volumes are ``(X, Y, Z)`` with an LPS affine (DICOM convention); NIfTI stores RAS, so the affine written is
``diag(−1, −1, 1, 1) · A_lps``. The file is written to a temporary name in the same folder and renamed into place.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from monai_diffrecon.errors import OutputError

__all__ = ["write_nifti"]


def write_nifti(volume: np.ndarray, affine_lps: np.ndarray, path: str | Path) -> Path:
    """Write a float32 NIfTI-1 file (gzip if the name ends in ``.gz``); rejects NaN/Inf."""
    import nibabel as nib

    from monai_diffrecon.io.dicom import lps_to_ras

    v = np.asarray(volume, dtype=np.float32)
    if not np.isfinite(v).all():
        raise OutputError(f"{path}: volume contains NaN or Inf; refusing to write")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = nib.Nifti1Image(v, lps_to_ras(affine_lps))
    img.header.set_xyzt_units("mm")
    suffix = ".nii.gz" if path.name.endswith(".gz") else ".nii"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        nib.save(img, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
