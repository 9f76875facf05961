"""Strict assembly of single-frame image series (CT, MR) into one volume with a correct affine.

MONAI's ``PydicomReader`` stacks two series found in one folder into one volume and reports 6.667 mm for a 5 mm
series with one slice missing, without a warning. Here every case is decided explicitly (tolerance ``tol_mm``,
default 1e-3 mm, on positions along the slice normal and on in-plane offsets):

| case | outcome |
|---|---|
| several SeriesInstanceUIDs in the folder | :class:`SeriesAssemblyError` listing them (pass ``series_uid``) |
| mixed Rows/Columns, PixelSpacing or ImageOrientationPatient within a series | error |
| mixed PatientID, StudyInstanceUID or FrameOfReferenceUID within a series | error (the identifiers are not quoted) |
| two slices at the same position (± tol) | error (duplicate) |
| a gap that is a whole multiple of the regular spacing | error (missing slice(s), positions named) |
| any other spacing spread above tol | error (non-uniform spacing) |
| slice origins not on a line along the normal (gantry tilt / shear) | error, with the tilt angle |
| oblique but consistent orientation | accepted: the affine carries the orientation |
| reversed or shuffled file order | accepted: slices are sorted along the normal |
| non-DICOM files (no ``DICM`` preamble, e.g. README) | skipped, recorded in ``warnings`` |
| a ``*.dcm``/``*.dicom``/``*.ima`` file without the preamble | error (a truncated slice is never skipped) |
| a single slice | accepted with a warning; spacing from SpacingBetweenSlices/SliceThickness |

Values: the Real World Value Mapping of the stored values when present (our MR output), else Rescale Slope/Intercept
(required for CT).

Axes of the returned volume: ``(X, Y, Z)`` = (column index, row index, slice index along the normal); the affine
maps ``(i, j, k, 1)`` to patient LPS millimetres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from monai_diffrecon.errors import DicomError, SeriesAssemblyError
from monai_diffrecon.io.dicom_guard import get_float, get_floats, get_int, get_str, pixel_values, read_dataset, real_world_values, require

__all__ = ["SeriesVolume", "assemble_series", "list_dicom_files"]


@dataclass
class SeriesVolume:
    """An assembled series.

    Attributes:
        values: float64 ``(X, Y, Z)`` after rescale (HU for CT).
        affine: ``4×4`` index → patient LPS mm.
        datasets: headers of the slices in volume order (pixel data dropped).
        paths: file of each slice, in volume order.
        warnings: accepted oddities (skipped files, single slice, …).
    """

    values: np.ndarray
    affine: np.ndarray
    datasets: list
    paths: list[Path]
    warnings: list[str] = field(default_factory=list)

    @property
    def spacing(self) -> tuple[float, float, float]:
        return tuple(float(np.linalg.norm(self.affine[:3, i])) for i in range(3))

    @property
    def series_uid(self) -> str:
        return str(self.datasets[0].SeriesInstanceUID)


def list_dicom_files(folder: str | Path) -> tuple[list[Path], list[str]]:
    """Files under ``folder`` (recursively) that carry the Part-10 ``DICM`` marker; others are reported."""
    root = Path(folder)
    if not root.is_dir():
        raise DicomError(folder, "not a folder")
    files, skipped = [], []
    for p in sorted(q for q in root.rglob("*") if q.is_file()):
        if p.name == "manifest.json":  # written by our own series writer
            continue
        with open(p, "rb") as fh:
            head = fh.read(132)
        if len(head) == 132 and head[128:132] == b"DICM":
            files.append(p)
        elif p.suffix.lower() in (".dcm", ".dicom", ".ima"):
            raise DicomError(p, "named like a DICOM file but has no Part-10 preamble (truncated or not DICOM)")
        else:
            skipped.append(p.name)
    return files, skipped


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def assemble_series(
    source: str | Path | list[str | Path],
    series_uid: str | None = None,
    tol_mm: float = 1e-3,
    modality: str | None = None,
) -> SeriesVolume:
    """Read and assemble one single-frame series.

    Args:
        source: a folder (searched recursively) or a list of files.
        series_uid: pick this SeriesInstanceUID when the source holds several.
        tol_mm: geometric tolerance in mm (positions, spacings, in-plane offsets).
        modality: if given (e.g. ``"CT"``), every slice must have this Modality.

    Raises:
        SeriesAssemblyError: the slices cannot be assembled without guessing (see the module table).
        DicomError: a file is unreadable or lacks the geometry attributes.
    """
    warnings: list[str] = []
    if isinstance(source, (str, Path)):
        files, skipped = list_dicom_files(source)
        if skipped:
            warnings.append(f"skipped {len(skipped)} non-DICOM file(s): {', '.join(skipped[:5])}")
        where = source
    else:
        files, where = [Path(p) for p in source], "<file list>"
    if not files:
        raise SeriesAssemblyError(where, "no DICOM files found")

    groups: dict[str, list] = {}
    for p in files:
        ds = read_dataset(p)
        uid = get_str(ds, p, "SeriesInstanceUID")
        groups.setdefault(uid, []).append((p, ds))
    if series_uid is not None:
        if series_uid not in groups:
            raise SeriesAssemblyError(where, f"series {series_uid} not found (found {sorted(groups)})", "SeriesInstanceUID")
        items = groups[series_uid]
    elif len(groups) > 1:
        desc = ", ".join(f"{u} ({len(v)} files)" for u, v in sorted(groups.items()))
        raise SeriesAssemblyError(where, f"{len(groups)} series in one source, refusing to merge: {desc}; pass series_uid", "SeriesInstanceUID")
    else:
        items = next(iter(groups.values()))

    p0, ds0 = items[0]
    iop0 = np.array(get_floats(ds0, p0, "ImageOrientationPatient", 6))
    rows0, cols0 = get_int(ds0, p0, "Rows", 1), get_int(ds0, p0, "Columns", 1)
    ps0 = np.array(get_floats(ds0, p0, "PixelSpacing", 2, positive=True))
    r_dir, c_dir = iop0[:3], iop0[3:]
    if abs(np.linalg.norm(r_dir) - 1) > 1e-3 or abs(np.linalg.norm(c_dir) - 1) > 1e-3 or abs(r_dir @ c_dir) > 1e-3:
        raise DicomError(p0, "direction cosines are not orthonormal", "ImageOrientationPatient")
    r_dir, c_dir = _unit(r_dir), _unit(c_dir)
    normal = np.cross(r_dir, c_dir)

    ident0 = {kw: get_str(ds0, p0, kw, default="") for kw in ("PatientID", "StudyInstanceUID", "FrameOfReferenceUID")}
    recs = []
    for p, ds in items:
        for kw, v0 in ident0.items():  # one series is one patient, study and frame of reference
            if get_str(ds, p, kw, default="") != v0:
                raise SeriesAssemblyError(p, f"{kw} differs within the series", kw)
        if modality is not None and get_str(ds, p, "Modality") != modality:
            raise SeriesAssemblyError(p, f"Modality is not {modality}", "Modality")
        if get_int(ds, p, "NumberOfFrames", 1, default=1) != 1:
            raise SeriesAssemblyError(p, "multi-frame (enhanced) images are not supported in a slice series", "NumberOfFrames")
        size = (get_int(ds, p, "Rows", 1), get_int(ds, p, "Columns", 1))
        if size != (rows0, cols0):  # the first slice is the reference: name it, it may be the odd one
            raise SeriesAssemblyError(p, f"slice size {size[0]}×{size[1]} differs within the series "
                                         f"(mixed Rows/Columns: {p0.name} has {rows0}×{cols0})", "Rows")
        if np.abs(np.array(get_floats(ds, p, "PixelSpacing", 2, positive=True)) - ps0).max() > tol_mm:
            raise SeriesAssemblyError(p, f"pixel spacing differs within the series (from {p0.name}'s)", "PixelSpacing")
        if np.abs(np.array(get_floats(ds, p, "ImageOrientationPatient", 6)) - iop0).max() > 1e-4:
            raise SeriesAssemblyError(p, f"orientation differs within the series (from {p0.name}'s)",
                                      "ImageOrientationPatient")
        ipp = np.array(get_floats(ds, p, "ImagePositionPatient", 3))
        recs.append((float(ipp @ normal), ipp, p, ds))
    recs.sort(key=lambda r: r[0])
    pos = np.array([r[0] for r in recs])
    ipps = np.stack([r[1] for r in recs])

    if len(recs) > 1:
        d = np.diff(pos)
        dup = np.nonzero(d <= tol_mm)[0]
        if dup.size:
            i = int(dup[0])
            raise SeriesAssemblyError(where, f"duplicate slice position {pos[i]:.4f} mm along the normal ({recs[i][2].name}, {recs[i + 1][2].name})", "ImagePositionPatient")
        inplane = (ipps - ipps[0]) - np.outer(pos - pos[0], normal)
        off = np.linalg.norm(inplane, axis=1)
        if off.max() > tol_mm:
            span = abs(pos[-1] - pos[0])
            angle = math.degrees(math.atan2(float(off[-1]), span)) if span > 0 else 90.0
            raise SeriesAssemblyError(
                where, f"slice origins drift {off.max():.3f} mm off the slice normal (gantry tilt ≈ {angle:.2f}° or sheared stack); not supported", "ImagePositionPatient"
            )
        step = float(np.median(d))
        if d.max() - d.min() > tol_mm:
            ratio = d / d.min()
            if np.all(np.abs(ratio - np.round(ratio)) * d.min() <= tol_mm):
                k = int(np.argmax(d))
                raise SeriesAssemblyError(
                    where, f"missing slice(s): gap of {d[k]:.4f} mm between {pos[k]:.4f} and {pos[k + 1]:.4f} mm, regular spacing {d.min():.4f} mm", "ImagePositionPatient"
                )
            raise SeriesAssemblyError(where, f"non-uniform slice spacing ({d.min():.4f}–{d.max():.4f} mm)", "ImagePositionPatient")
    else:
        ds = recs[0][3]
        p = recs[0][2]
        if "SpacingBetweenSlices" in ds:
            step, origin = get_float(ds, p, "SpacingBetweenSlices", positive=True), "SpacingBetweenSlices"
        elif "SliceThickness" in ds:
            step, origin = get_float(ds, p, "SliceThickness", positive=True), "SliceThickness"
        else:
            step, origin = 1.0, "a default (neither SpacingBetweenSlices nor SliceThickness is present)"
        warnings.append(f"single-slice series: slice spacing {step} mm taken from {origin}")

    vol = np.empty((cols0, rows0, len(recs)), dtype=np.float64)
    for k, (_, _, p, ds) in enumerate(recs):
        if get_str(ds, p, "Modality") == "CT":  # Type 1 in the CT Image module: never assume an identity rescale
            require(ds, p, "RescaleSlope")
            require(ds, p, "RescaleIntercept")
        if ds.get("RealWorldValueMappingSequence"):  # maps *stored* values (used by our MR output)
            vol[:, :, k] = real_world_values(ds, p, pixel_values(ds, p, rescale=False))[0].T
        else:
            vol[:, :, k] = pixel_values(ds, p)[0].T
    affine = np.eye(4)
    affine[:3, 0] = r_dir * ps0[1]  # column index i moves along the row direction by the column spacing
    affine[:3, 1] = c_dir * ps0[0]  # row index j moves along the column direction by the row spacing
    affine[:3, 2] = normal * step
    affine[:3, 3] = ipps[0]
    headers = []
    for _, _, _, ds in recs:
        if "PixelData" in ds:
            del ds.PixelData
        headers.append(ds)
    return SeriesVolume(vol, affine, headers, [r[2] for r in recs], warnings)
