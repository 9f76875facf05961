"""I/O: defensive DICOM reading, strict series assembly, NM/CT readers, derived-series writers, k-space, NIfTI,
guarded ``.npy``/TIFF rasters with GeoTIFF georeferencing (:mod:`~monai_diffrecon.io.rasters`) and the input-size
guard of the bundles' networks (:mod:`~monai_diffrecon.io.shape_guard`).

Readers raise :class:`~monai_diffrecon.errors.DicomError` (or :class:`~monai_diffrecon.errors.KSpaceError`) naming
the file and the tag; writers stage their output and never leave a half-written series. :class:`NMReconReader`
(MONAI ``ImageReader`` for our NM RECON outputs) is imported on first use, so ``import monai_diffrecon.io`` does not
pay for importing MONAI.
"""

from monai_diffrecon.io.dicom import (
    HU_MU_MODEL,
    NMProjections,
    ct_to_mu_on_grid,
    hu_to_mu,
    lps_to_ras,
    mu_to_hu,
    read_ct_series,
    read_nm_projections,
    read_nm_recon,
    resample_to_grid,
)
from monai_diffrecon.io.dicom_guard import check_structure, read_dataset
from monai_diffrecon.io.dicom_write import Derivation, DicomSource, quantize, write_mr_series, write_nm_recon
from monai_diffrecon.io.nifti import write_nifti
from monai_diffrecon.io.rasters import GEOTIFF_TAGS, read_array, read_geotags, utm_geotags
from monai_diffrecon.io.series import SeriesVolume, assemble_series
from monai_diffrecon.io.shape_guard import check_spatial_size, spatial_divisor
from monai_diffrecon.io.staging import staged_directory

__all__ = [
    "NMProjections",
    "read_nm_projections",
    "read_nm_recon",
    "read_ct_series",
    "ct_to_mu_on_grid",
    "hu_to_mu",
    "mu_to_hu",
    "HU_MU_MODEL",
    "resample_to_grid",
    "lps_to_ras",
    "check_structure",
    "read_dataset",
    "assemble_series",
    "SeriesVolume",
    "DicomSource",
    "Derivation",
    "quantize",
    "write_nm_recon",
    "write_mr_series",
    "write_derived_series",
    "write_nifti",
    "staged_directory",
    "GEOTIFF_TAGS",
    "read_array",
    "read_geotags",
    "utm_geotags",
    "spatial_divisor",
    "check_spatial_size",
    "NMReconReader",
]


def __getattr__(name: str):
    """Lazy exports (PEP 562): ``NMReconReader`` imports ``monai.data`` (seconds), so only when asked for."""
    if name == "NMReconReader":
        from monai_diffrecon.io.monai_reader import NMReconReader

        return NMReconReader
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def write_derived_series(image, source, out_dir, modality: str = "NM", derivation=None, affine_lps=None, seed: int = 0, **kwargs):
    """Write a reconstructed volume as a derived DICOM series (DESIGN.md contract).

    Args:
        image: ``(X, Y, Z)`` or ``(1, X, Y, Z)`` array/tensor, or a MONAI ``MetaTensor`` (its RAS affine is used when
            ``affine_lps`` is not given).
        source: :class:`DicomSource` (lineage), or ``None`` for raw-data inputs (a new study is created).
        out_dir: parent folder; the series goes into a new sub-folder named from the modality and a hash.
        modality: ``"NM"`` (SPECT, one NM RECON TOMO file) or ``"MR"`` (classic MR slices).
        derivation: :class:`Derivation` (method, parameters, model sha256).
        affine_lps: ``4×4`` index → LPS mm.
        seed: part of the deterministic UID policy.
        kwargs: passed to :func:`write_nm_recon` / :func:`write_mr_series` (description, series_number, role…).

    Returns:
        the written files.

    Raises:
        InvalidValueError: no ``affine_lps`` for a plain array, or a modality other than NM / MR.
    """
    import numpy as np

    from monai_diffrecon.errors import InvalidValueError

    arr = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if affine_lps is None:
        if not hasattr(image, "affine"):
            raise InvalidValueError("affine_lps: required unless image is a MetaTensor (with an affine)")
        aff = np.asarray(image.affine, dtype=np.float64)
        space = str(getattr(image, "meta", {}).get("space", "RAS"))
        affine_lps = lps_to_ras(aff) if space.upper() == "RAS" else aff
    derivation = derivation or Derivation("reconstruction")
    if modality.upper() == "NM":
        return write_nm_recon(arr, affine_lps, source, out_dir, derivation, seed=seed, **kwargs)
    if modality.upper() == "MR":
        return write_mr_series(arr, affine_lps, source, out_dir, derivation, seed=seed, **kwargs)
    raise InvalidValueError(f"modality: NM or MR, got {modality!r}")
