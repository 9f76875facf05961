"""MONAI image reader for NM RECON TOMO files: activity values and the right affine in ``LoadImage`` pipelines.

MONAI's own DICOM readers get reconstructed SPECT wrong in two ways: NM keeps ImageOrientationPatient and
ImagePositionPatient inside the Detector Information Sequence, where ``PydicomReader`` does not look (it warns and
returns an identity affine), and none of them applies the Real World Value Mapping (``ITKReader``/SimpleITK place the
voxels correctly but return stored integers, off by ``1/slope`` = 65,535 / the largest activity).
:class:`NMReconReader` reads both our derived series (:func:`~monai_diffrecon.io.dicom_write.write_nm_recon`) and
vendor NM RECON TOMO files through the project's guarded reader
(:func:`~monai_diffrecon.io.dicom_guard.read_dataset`), so bad input raises
:class:`~monai_diffrecon.errors.DicomError` naming the file and the tag.

Geometry (PS3.3 C.8.4.15 NM Reconstruction Module, and the layout :func:`write_nm_recon` writes):

* frame ``k`` (in SliceVector order, which must be 1…N) is slice ``k``; pixel ``(row j, column i)`` of it is voxel
  ``(i, j, k)``, so the array is ``(X, Y, Z) = (Columns, Rows, NumberOfFrames)``;
* ``r, c`` = ImageOrientationPatient (row and column direction cosines) and ``p`` = ImagePositionPatient of the first
  frame, from ``DetectorInformationSequence[0]`` (else the top-level attributes); ``n = r × c``;
* ``s`` = SpacingBetweenSlices (negative: slices stacked in front of the first, i.e. along ``−n``), else
  SliceThickness; PixelSpacing = ``(Δrow, Δcol)``;
* LPS position of voxel ``(i, j, k)``: ``p + i·Δcol·r + j·Δrow·c + k·s·n``.

Values: ``stored · RealWorldValueSlope + RealWorldValueIntercept`` from the first Real World Value Mapping item,
else ``stored · RescaleSlope + RescaleIntercept`` (absent ⇒ 1 and 0).

Example::

    from monai.transforms import LoadImage
    from monai_diffrecon.io import NMReconReader

    img = LoadImage(reader=NMReconReader(), image_only=True)("out/NM_RECON_1a2b3c/IM_00001.dcm")
    img.shape, img.meta["space"], img.meta["units"]  # (X, Y, Z), "RAS", "{counts}"
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from monai.data.image_reader import ImageReader
from monai.utils import MetaKeys, SpaceKeys

from monai_diffrecon.errors import DicomError
from monai_diffrecon.io.dicom import _seq, lps_to_ras
from monai_diffrecon.io.dicom_guard import (
    get_float,
    get_floats,
    get_int,
    get_str,
    get_strs,
    get_tags,
    pixel_values,
    read_dataset,
    real_world_values,
)
from monai_diffrecon.io.dicom_write import NM_IMAGE_STORAGE

__all__ = ["NMReconImage", "NMReconReader", "nm_recon_affine", "nm_recon_values"]

_SLICE_VECTOR = 0x00540080
_DICOM_SUFFIXES = (".dcm", ".dicom")
_LINEAGE = {  # meta key → DICOM keyword (empty string when absent)
    "modality": "Modality",
    "series_instance_uid": "SeriesInstanceUID",
    "sop_instance_uid": "SOPInstanceUID",
    "frame_of_reference_uid": "FrameOfReferenceUID",
}


def _is_part10(path: Path) -> bool:
    """A regular file with the Part-10 preamble (``DICM`` at byte 128); anything else in a series folder is skipped."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def _series_file(path: Path) -> Path:
    """The one DICOM file of a series folder (non-DICOM files such as a manifest are ignored), or ``path`` itself."""
    if not path.is_dir():
        return path
    files = sorted(p for p in path.iterdir() if not p.name.startswith(".") and p.is_file() and _is_part10(p))
    if len(files) != 1:
        raise DicomError(path, f"holds {len(files)} DICOM files; an NM RECON TOMO series is one multi-frame file")
    return files[0]


def _check_recon_tomo(ds, path: object) -> None:
    if get_str(ds, path, "SOPClassUID") != NM_IMAGE_STORAGE:
        raise DicomError(path, "not NM Image Storage", "SOPClassUID")
    itype = [v.upper() for v in get_strs(ds, path, "ImageType")]
    if len(itype) < 3 or itype[2] != "RECON TOMO":
        kind = itype[2] if len(itype) > 2 else "?"
        raise DicomError(path, f"ImageType value 3 is {kind!r}; expected RECON TOMO", "ImageType")


def _slice_order(ds, path: object, n_frames: int) -> None:
    """Frames must be slices 1…N in file order (FrameIncrementPointer = SliceVector); anything else is refused."""
    if "FrameIncrementPointer" in ds and get_tags(ds, path, "FrameIncrementPointer") != [_SLICE_VECTOR]:
        problem = "frames are not indexed by SliceVector alone (gated or dynamic data?)"
        raise DicomError(path, problem, "FrameIncrementPointer")
    if "SliceVector" in ds and get_floats(ds, path, "SliceVector") != [float(k) for k in range(1, n_frames + 1)]:
        raise DicomError(path, f"SliceVector is not 1…{n_frames} in frame order", "SliceVector")
    if get_int(ds, path, "NumberOfSlices", default=n_frames) != n_frames:
        raise DicomError(path, f"NumberOfSlices differs from the {n_frames} frames", "NumberOfSlices")


def nm_recon_affine(ds, path: object) -> np.ndarray:
    """``4×4`` affine (voxel index ``(i, j, k)`` → LPS mm) of an NM RECON TOMO data set (see the module doc).

    Raises:
        DicomError: missing or non-orthonormal ImageOrientationPatient, missing ImagePositionPatient or PixelSpacing,
            no (or zero) SpacingBetweenSlices/SliceThickness.
    """
    det = _seq(ds, path, "DetectorInformationSequence", required=False)
    where = {kw: det[0] if det and kw in det[0] else ds for kw in ("ImageOrientationPatient", "ImagePositionPatient")}
    iop = np.asarray(get_floats(where["ImageOrientationPatient"], path, "ImageOrientationPatient", 6))
    ipp = np.asarray(get_floats(where["ImagePositionPatient"], path, "ImagePositionPatient", 3))
    r, c = iop[:3], iop[3:]
    if max(abs(np.linalg.norm(r) - 1), abs(np.linalg.norm(c) - 1), abs(r @ c)) > 1e-3:
        raise DicomError(path, "row and column directions are not orthonormal", "ImageOrientationPatient")
    d_row, d_col = get_floats(ds, path, "PixelSpacing", 2, positive=True)
    if "SpacingBetweenSlices" in ds:
        s = get_float(ds, path, "SpacingBetweenSlices")  # the sign gives the stacking direction (C.8.4.15)
        if s == 0:
            raise DicomError(path, "value must not be 0", "SpacingBetweenSlices")
    elif "SliceThickness" in ds:
        s = get_float(ds, path, "SliceThickness", positive=True)
    else:
        problem = "neither SpacingBetweenSlices nor SliceThickness: slice spacing unknown"
        raise DicomError(path, problem, "SpacingBetweenSlices")
    aff = np.eye(4)
    aff[:3, 0], aff[:3, 1], aff[:3, 2], aff[:3, 3] = r * d_col, c * d_row, np.cross(r, c) * s, ipp
    return aff


def nm_recon_values(ds, path: object) -> np.ndarray:
    """Real values of an NM RECON TOMO data set as float64 ``(X, Y, Z)`` = ``(Columns, Rows, frames)``.

    Real World Value Mapping first (applied to stored values), else Rescale Slope/Intercept.

    Raises:
        DicomError: bad pixel header/data, a zero slope, or frames that are not slices 1…N in order.
    """
    has_rwvm = bool(ds.get("RealWorldValueMappingSequence"))
    frames = real_world_values(ds, path, pixel_values(ds, path, rescale=not has_rwvm))  # (Z, rows, cols)
    _slice_order(ds, path, frames.shape[0])
    return np.ascontiguousarray(frames.transpose(2, 1, 0))


def _units(ds) -> str:
    """UCUM code of the first Real World Value Mapping item (``"{counts}"``, ``"Bq/ml"`` …), else ``""``."""
    items = ds.get("RealWorldValueMappingSequence") or []
    codes = items[0].get("MeasurementUnitsCodeSequence") if items else None
    return str(codes[0].get("CodeValue", "")) if codes else ""


@dataclass(frozen=True)
class NMReconImage:
    """What :meth:`NMReconReader.read` returns for one file: its path and its (guarded, fully decoded) data set."""

    path: str
    dataset: object


class NMReconReader(ImageReader):
    """MONAI ``ImageReader`` for NM RECON TOMO multi-frame files (ours and vendors'); see the module doc.

    ``get_data`` returns a float array ``(X, Y, Z)`` = ``(Columns, Rows, slices)`` with no channel (several files:
    ``(N, X, Y, Z)``, ``original_channel_dim = 0``) in activity units, and the meta keys MONAI's readers set:
    ``affine`` and ``original_affine`` (index → RAS mm, or LPS with ``affine_lps_to_ras=False``), ``space``,
    ``spatial_shape``, ``spacing`` (mm), ``original_channel_dim`` (NaN: no channel); plus ``units`` (UCUM code of the
    value mapping, ``""`` if none), ``modality``, ``series_instance_uid``, ``sop_instance_uid`` and
    ``frame_of_reference_uid`` for lineage.

    Args:
        affine_lps_to_ras: RAS affine (MONAI's default, like ``ITKReader``/``PydicomReader``) or DICOM's LPS.
        dtype: dtype of the returned array (``LoadImage`` converts to its own ``dtype`` afterwards).

    Usage: ``LoadImage(reader=NMReconReader(), image_only=True)``, ``LoadImaged(keys, reader=NMReconReader())`` or
    by dotted name, ``LoadImage(reader="monai_diffrecon.io.NMReconReader")`` (bundle configs). A path may be the file
    or its series folder (non-DICOM files in it are ignored). Note that ``LoadImage`` treats readers given to its
    constructor as suggestions: if this one raises, MONAI tries its own readers, which load an NM RECON file with the
    wrong units; pass the reader at call time, ``LoadImage(image_only=True)(path, reader=NMReconReader())``, to get
    the :class:`~monai_diffrecon.errors.DicomError` instead.
    """

    def __init__(self, affine_lps_to_ras: bool = True, dtype=np.float32) -> None:
        self.affine_lps_to_ras = affine_lps_to_ras
        self.dtype = dtype

    def verify_suffix(self, filename: Sequence[str | Path] | str | Path) -> bool:
        """True if every name is a folder, ends in ``.dcm``/``.dicom`` or is a Part-10 file."""
        names = [Path(f) for f in ([filename] if isinstance(filename, (str, Path)) else filename)]
        return all(p.is_dir() or p.suffix.lower() in _DICOM_SUFFIXES or _is_part10(p) for p in names)

    def read(self, data: Sequence[str | Path] | str | Path, **kwargs) -> NMReconImage | list[NMReconImage]:
        """Guarded read of each file (a series folder stands for its one DICOM file); checks it is NM RECON TOMO.

        Raises:
            DicomError: unreadable or corrupt file, not NM Image Storage / RECON TOMO, a folder without exactly one
                DICOM file.
        """
        names = [data] if isinstance(data, (str, Path)) else list(data)
        out = []
        for name in names:
            path = _series_file(Path(name))
            ds = read_dataset(path)
            _check_recon_tomo(ds, path)
            out.append(NMReconImage(str(path), ds))
        return out[0] if len(out) == 1 else out

    def get_data(self, img: NMReconImage | Sequence[NMReconImage]) -> tuple[np.ndarray, dict]:
        """``(array, meta)``: ``(X, Y, Z)`` activity values (stacked on a new first axis for several files) and the
        meta dictionary described in the class doc.

        Raises:
            DicomError: see :func:`nm_recon_values` and :func:`nm_recon_affine`; several files whose grids differ.
        """
        images = [img] if isinstance(img, NMReconImage) else list(img)
        arrays, metas = [], []
        for im in images:
            ds, path = im.dataset, im.path
            values = nm_recon_values(ds, path).astype(self.dtype)
            affine = nm_recon_affine(ds, path)
            affine = lps_to_ras(affine) if self.affine_lps_to_ras else affine
            meta = {
                MetaKeys.ORIGINAL_AFFINE: affine,
                MetaKeys.AFFINE: affine.copy(),
                MetaKeys.SPACE: SpaceKeys.RAS if self.affine_lps_to_ras else SpaceKeys.LPS,
                MetaKeys.SPATIAL_SHAPE: np.asarray(values.shape),
                MetaKeys.ORIGINAL_CHANNEL_DIM: float("nan"),
                "spacing": np.linalg.norm(affine[:3, :3], axis=0),
                "units": _units(ds),
                **{key: str(ds.get(kw) or "") for key, kw in _LINEAGE.items()},
            }
            if metas and not (values.shape == arrays[0].shape and np.allclose(affine, metas[0]["affine"], 0, 1e-4)):
                raise DicomError(path, f"grid differs from {images[0].path}'s; cannot stack the files as channels")
            arrays.append(values)
            metas.append(meta)
        if len(arrays) == 1:
            return arrays[0], metas[0]
        metas[0][MetaKeys.ORIGINAL_CHANNEL_DIM] = 0
        return np.stack(arrays), metas[0]

