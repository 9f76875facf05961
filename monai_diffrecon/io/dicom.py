"""DICOM readers for reconstruction: NM TOMO projections, CT series (HU), and CT → μ-map on the SPECT grid.

NM projection geometry (PyTomography's reading of NM TOMO files, which agrees with the DICOM definition —
PS3.3 C.8.4.10: *zero degrees is at the patient's back; viewed from the feet, angles increase counter-clockwise,
from the back towards the patient's left*):

* Frames are split by ``FrameIncrementPointer`` vectors (EnergyWindowVector, DetectorVector, RotationVector,
  AngularViewVector; a missing vector means one value).
* DICOM angle of view ``v`` of detector ``d``: ``α = StartAngle_d ± v·AngularStep`` (``+`` for
  ``RotationDirection = CC``, ``−`` for ``CW``); ``StartAngle_d`` from ``DetectorInformationSequence[d]``, else
  ``RotationInformationSequence[0]``. Projector angle: ``θ = (α + 180) mod 360`` (θ = 0: camera anterior, see
  :class:`~monai_diffrecon.physics.SPECTProjector`). Views are sorted by θ.
* Frame pixel ``(row, col)`` → detector bin ``col`` (towards the patient's left in an anterior view) and axial row
  ``Rows − 1 − row`` (row 0 is the head end). Bin pitch = ``PixelSpacing[1]`` (column spacing), axial pitch =
  ``PixelSpacing[0]``.
* Radii: ``DetectorInformationSequence[d].RadialPosition`` (one per view, or one for all), else
  ``RotationInformationSequence``'s; absent ⇒ ``radii_mm`` is ``None`` (a PSF model then cannot be built).
* Reconstruction grid ``(X, X, Z)`` with ``X = Columns``, ``Z = Rows``, LPS affine ``diag(dx, dx, dz)`` and origin
  from ``DetectorInformationSequence[0].ImagePositionPatient`` ``(Sx, Sy, Sz)``: if ``Sy == 0`` the x/y origin is
  shifted by half the field of view, ``Sx −= (C−1)/2·dx``, ``Sy −= (C−1)/2·dx + TableHeight``; then
  ``Sz −= (Rows − 1)·dz`` (the first axial slice is the lowest). PyTomography uses ``Rows`` where we use
  ``Columns`` for the half-FOV shift (identical for square frames, the usual case).
* Counts honour ``RescaleSlope``/``RescaleIntercept`` when present (PyTomography ignores them, issue #232).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from monai_diffrecon.errors import DicomError
from monai_diffrecon.io.dicom_guard import get_float, get_floats, get_int, get_str, get_strs, get_tags, pixel_values, read_dataset, real_world_values
from monai_diffrecon.io.dicom_write import NM_IMAGE_STORAGE, DicomSource, EnergyWindow
from monai_diffrecon.io.series import SeriesVolume, assemble_series

__all__ = [
    "NMProjections",
    "read_nm_projections",
    "read_ct_series",
    "hu_to_mu",
    "mu_to_hu",
    "resample_to_grid",
    "ct_to_mu_on_grid",
    "ct_hu_on_grid",
    "estimate_scatter",
    "lps_to_ras",
    "TC99M_KEV",
    "read_nm_recon",
]

TC99M_KEV = 140.5
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def lps_to_ras(affine: np.ndarray) -> np.ndarray:
    """LPS ↔ RAS (the same matrix both ways): flips the first two world axes."""
    return _LPS_TO_RAS @ np.asarray(affine, dtype=np.float64)


@dataclass
class NMProjections:
    """SPECT projections in the projector's layout.

    Attributes:
        counts: float32 ``(1, 1, V, X, Z)`` photopeak counts (views sorted by angle).
        angles_deg: ``(V,)`` projector angles (see module doc for the mapping from DICOM).
        radii_mm: ``(V,)`` collimator-face distances, or ``None`` if the file has no RadialPosition.
        pixel_spacing_mm: ``(bin pitch, axial pitch)``.
        affine: ``4×4`` LPS affine of the reconstruction grid ``(X, X, Z)``.
        source: lineage (header without pixels, SOP/series UIDs).
        windows: every energy window in the file; ``window`` is the index used for ``counts``.
        other_windows: counts of the other windows (e.g. scatter), same layout, keyed by window name.
        dicom_angles_deg: the DICOM detector angles ``α`` of the sorted views.
        warnings: accepted oddities.
    """

    counts: torch.Tensor
    angles_deg: torch.Tensor
    radii_mm: torch.Tensor | None
    pixel_spacing_mm: tuple[float, float]
    affine: np.ndarray
    source: DicomSource
    windows: list[EnergyWindow]
    window: int
    other_windows: dict[str, torch.Tensor] = field(default_factory=dict)
    dicom_angles_deg: torch.Tensor | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def object_shape(self) -> tuple[int, int, int]:
        _, _, _, X, Z = self.counts.shape
        return (X, X, Z)

    @property
    def voxel_size_mm(self) -> tuple[float, float, float]:
        sx, sz = self.pixel_spacing_mm
        return (sx, sx, sz)


def _seq(ds, path, keyword: str, required: bool = True):
    from pydicom.dataset import Dataset

    if keyword not in ds or ds[keyword].value is None or (ds[keyword].VR == "SQ" and len(ds[keyword].value) == 0):
        if required:
            raise DicomError(path, "required sequence missing or empty", keyword)
        return []
    if ds[keyword].VR != "SQ" or not all(isinstance(it, Dataset) for it in ds[keyword].value):
        raise DicomError(path, "expected a sequence of items", keyword)
    return list(ds[keyword].value)


def _vector(ds, path, keyword: str, n_frames: int, fip: list[int], tag: int) -> np.ndarray:
    if tag not in fip:
        return np.ones(n_frames, dtype=np.int64)
    vals = get_floats(ds, path, keyword)
    if len(vals) != n_frames:
        raise DicomError(path, f"has {len(vals)} values for {n_frames} frames", keyword)
    arr = np.asarray(vals)
    if np.any(arr < 1) or np.any(arr != np.round(arr)):
        raise DicomError(path, "values must be positive integers", keyword)
    return arr.astype(np.int64)


def _choose_window(windows: list[EnergyWindow], energy_window: int | str | None, path) -> int:
    if energy_window is not None:
        if isinstance(energy_window, int):
            if not 1 <= energy_window <= len(windows):
                raise DicomError(path, f"energy_window {energy_window} not in 1..{len(windows)}", "EnergyWindowInformationSequence")
            return energy_window - 1
        names = [w.name.upper() for w in windows]
        if energy_window.upper() not in names:
            raise DicomError(path, f"no energy window named {energy_window!r} (have {names})", "EnergyWindowName")
        return names.index(energy_window.upper())
    if len(windows) == 1:
        return 0
    named = [i for i, w in enumerate(windows) if any(k in w.name.upper() for k in ("EM", "PEAK", "PHOTO")) and "SC" not in w.name.upper()]
    if len(named) == 1:
        return named[0]
    tc = [i for i, w in enumerate(windows) if w.lower_kev <= TC99M_KEV <= w.upper_kev]
    if len(tc) == 1:
        return tc[0]
    raise DicomError(path, f"cannot tell the photopeak among {[w.name for w in windows]}; pass energy_window", "EnergyWindowInformationSequence")


def read_nm_projections(path: str | Path | bytes, energy_window: int | str | None = None) -> NMProjections:
    """Read a SPECT TOMO acquisition (NM Image Storage, multi-frame) into the projector's layout.

    Args:
        path: the NM file (or its bytes).
        energy_window: 1-based index or name of the window to reconstruct; default: the photopeak (a window named
            EM/PEAK/PHOTO…, else the one containing 140.5 keV, else the only one).

    Raises:
        DicomError: unreadable file, not an NM TOMO acquisition, or missing/contradictory geometry (the tag is named).
    """
    ds = read_dataset(path)
    if isinstance(path, (bytes, bytearray)):
        path = "<bytes>"
    if get_str(ds, path, "SOPClassUID") != NM_IMAGE_STORAGE:
        raise DicomError(path, "not NM Image Storage", "SOPClassUID")
    itype = [v.upper() for v in get_strs(ds, path, "ImageType")]
    if len(itype) < 3 or itype[2] not in ("TOMO",):
        kind = itype[2] if len(itype) > 2 else "?"
        raise DicomError(path, f"ImageType value 3 is {kind!r}; expected TOMO projections (not RECON TOMO/STATIC/GATED)", "ImageType")
    n_frames = get_int(ds, path, "NumberOfFrames", 1)
    fip = get_tags(ds, path, "FrameIncrementPointer")
    pix = pixel_values(ds, path)  # (frames, rows, cols), rescaled
    n_rows, n_cols = pix.shape[1:]
    ew = _vector(ds, path, "EnergyWindowVector", n_frames, fip, 0x00540010)
    dv = _vector(ds, path, "DetectorVector", n_frames, fip, 0x00540020)
    rv = _vector(ds, path, "RotationVector", n_frames, fip, 0x00540050)
    av = _vector(ds, path, "AngularViewVector", n_frames, fip, 0x00540090)
    if rv.max() > 1:
        raise DicomError(path, "more than one rotation per file is not supported", "RotationVector")

    win_items = _seq(ds, path, "EnergyWindowInformationSequence")
    windows = []
    for i, it in enumerate(win_items):
        rng = _seq(it, path, "EnergyWindowRangeSequence", required=False)
        lo = get_float(rng[0], path, "EnergyWindowLowerLimit", default=float("nan")) if rng else float("nan")
        hi = get_float(rng[0], path, "EnergyWindowUpperLimit", default=float("nan")) if rng else float("nan")
        windows.append(EnergyWindow(get_str(it, path, "EnergyWindowName", default=f"W{i + 1}"), lo, hi))
    n_win = get_int(ds, path, "NumberOfEnergyWindows", 1, default=len(windows))
    if n_win != len(windows) or ew.max() > len(windows):
        raise DicomError(path, f"{n_win} windows declared, {len(windows)} described, vector refers to {ew.max()}", "NumberOfEnergyWindows")
    w_sel = _choose_window(windows, energy_window, path)

    det_items = _seq(ds, path, "DetectorInformationSequence")
    rot_items = _seq(ds, path, "RotationInformationSequence")
    n_det = get_int(ds, path, "NumberOfDetectors", 1, default=len(det_items))
    if n_det != len(det_items) or dv.max() > n_det:
        raise DicomError(path, f"{n_det} detectors declared, {len(det_items)} described, vector refers to {dv.max()}", "NumberOfDetectors")
    rot = rot_items[0]
    step = get_float(rot, path, "AngularStep")
    direction = get_str(rot, path, "RotationDirection").upper()
    if direction not in ("CW", "CC", "CCW"):
        raise DicomError(path, f"RotationDirection {direction!r} is neither CW nor CC", "RotationDirection")
    sign = -1.0 if direction == "CW" else 1.0
    n_views = get_int(rot, path, "NumberOfFramesInRotation", 1)
    ps = get_floats(ds, path, "PixelSpacing", 2, positive=True)
    dz, dx = ps[0], ps[1]

    warnings: list[str] = []
    angles, radii, frames_idx = [], [], []
    if n_det > 1 and not all("StartAngle" in d for d in det_items):
        raise DicomError(path, f"{n_det} detectors but not every DetectorInformationSequence item has a StartAngle: the heads' angles are ambiguous", "StartAngle")
    for d in range(n_det):
        det = det_items[d]
        start = get_float(det, path, "StartAngle") if "StartAngle" in det else get_float(rot, path, "StartAngle")
        rsrc = det if "RadialPosition" in det else (rot_items[min(d, len(rot_items) - 1)] if "RadialPosition" in rot_items[min(d, len(rot_items) - 1)] else None)
        if rsrc is not None:
            rp = get_floats(rsrc, path, "RadialPosition", positive=True)
            if len(rp) == 1:
                rp = rp * n_views
            if len(rp) != n_views:
                raise DicomError(path, f"detector {d + 1}: {len(rp)} radial positions for {n_views} views", "RadialPosition")
        else:
            rp = [float("nan")] * n_views
        for v in range(n_views):
            sel = np.nonzero((ew == w_sel + 1) & (dv == d + 1) & (av == v + 1))[0]
            if sel.size != 1:
                raise DicomError(path, f"window {w_sel + 1}, detector {d + 1}, view {v + 1}: {sel.size} frames", "AngularViewVector")
            frames_idx.append(int(sel[0]))
            angles.append((start + sign * v * step) % 360.0)
            radii.append(rp[v])
    if len(frames_idx) != int(np.sum(ew == w_sel + 1)):
        raise DicomError(path, "frames of the chosen window are not all covered by detectors × views", "NumberOfFramesInRotation")
    alpha = np.asarray(angles)
    theta = (alpha + 180.0) % 360.0
    order = np.argsort(theta, kind="stable")
    rad = np.asarray(radii)[order]
    if np.isnan(rad).any():
        warnings.append("no RadialPosition: radii_mm is None (collimator response cannot be modelled)")
        radii_t = None
    else:
        radii_t = torch.from_numpy(rad)

    def layout(w: int) -> torch.Tensor:
        idx = []
        for d in range(n_det):
            for v in range(n_views):
                sel = np.nonzero((ew == w + 1) & (dv == d + 1) & (av == v + 1))[0]
                if sel.size != 1:
                    raise DicomError(path, f"window {w + 1}: frame layout incomplete", "EnergyWindowVector")
                idx.append(int(sel[0]))
        f = pix[np.asarray(idx)[order]]  # (V, rows, cols)
        return torch.from_numpy(np.ascontiguousarray(f[:, ::-1, :].transpose(0, 2, 1))).float()[None, None]

    counts = layout(w_sel)
    if bool((counts < 0).any()):
        raise DicomError(path, "negative counts after rescale", "RescaleIntercept")
    others = {windows[w].name: layout(w) for w in range(len(windows)) if w != w_sel}

    ipp = get_floats(det_items[0], path, "ImagePositionPatient", 3)
    sx, sy, sz = ipp
    if sy == 0:
        sx -= (n_cols - 1) / 2 * dx
        sy -= (n_cols - 1) / 2 * dx
        sy -= get_float(rot, path, "TableHeight", default=0.0)
    sz -= (n_rows - 1) * dz
    affine = np.diag([dx, dx, dz, 1.0])
    affine[:3, 3] = [sx, sy, sz]
    header = ds.copy()
    if "PixelData" in header:
        del header.PixelData
    src = DicomSource(header, [(get_str(ds, path, "SOPClassUID"), get_str(ds, path, "SOPInstanceUID"), get_str(ds, path, "SeriesInstanceUID"))],
                      get_str(ds, path, "FrameOfReferenceUID", default="") or None)
    return NMProjections(counts, torch.from_numpy(theta[order]), radii_t, (dx, dz), affine, src, windows, w_sel, others,
                         torch.from_numpy(alpha[order]), warnings)


def read_nm_recon(path: str | Path) -> tuple[np.ndarray, np.ndarray, object]:
    """Read an NM RECON TOMO multi-frame file → ``(volume (X, Y, Z) float64, affine LPS, header)``.

    Real world value mapping is applied; slices are placed at ``IPP + k·SpacingBetweenSlices·(row × col)``.
    """
    ds = read_dataset(path)
    if get_str(ds, path, "SOPClassUID") != NM_IMAGE_STORAGE:
        raise DicomError(path, "not NM Image Storage", "SOPClassUID")
    itype = [v.upper() for v in get_strs(ds, path, "ImageType")]
    if len(itype) < 3 or itype[2] != "RECON TOMO":
        raise DicomError(path, "ImageType value 3 is not RECON TOMO", "ImageType")
    pix = real_world_values(ds, path, pixel_values(ds, path, rescale=False))  # (Z, rows, cols)
    det = _seq(ds, path, "DetectorInformationSequence")[0]
    iop = np.asarray(get_floats(det, path, "ImageOrientationPatient", 6))
    ipp = np.asarray(get_floats(det, path, "ImagePositionPatient", 3))
    ps = get_floats(ds, path, "PixelSpacing", 2, positive=True)
    dz = get_float(ds, path, "SpacingBetweenSlices", positive=True)
    r, c = iop[:3], iop[3:]
    aff = np.eye(4)
    aff[:3, 0], aff[:3, 1], aff[:3, 2], aff[:3, 3] = r * ps[1], c * ps[0], np.cross(r, c) * dz, ipp
    header = ds.copy()
    del header.PixelData
    return np.ascontiguousarray(pix.transpose(2, 1, 0)), aff, header


def read_ct_series(folder: str | Path, series_uid: str | None = None, tol_mm: float = 1e-3):
    """CT series → ``MetaTensor (1, X, Y, Z)`` in HU with a RAS affine (MONAI convention, ``meta["space"] = "RAS"``).

    Strict assembly (:func:`monai_diffrecon.io.series.assemble_series`). The LPS affine, the lineage and the
    assembly warnings are in ``meta["affine_lps"]``, ``meta["dicom_source"]``, ``meta["warnings"]``.
    """
    vol = assemble_series(folder, series_uid=series_uid, tol_mm=tol_mm, modality="CT")
    return series_to_metatensor(vol, folder)


def series_to_metatensor(vol: SeriesVolume, where: object):
    from monai.data import MetaTensor

    ras = lps_to_ras(vol.affine)
    meta = {
        "space": "RAS",
        "filename_or_obj": str(where),
        "affine_lps": vol.affine,
        "warnings": list(vol.warnings),
        "dicom_source": DicomSource.from_datasets(vol.datasets),
        "series_instance_uid": vol.series_uid,
    }
    return MetaTensor(torch.from_numpy(vol.values).float()[None], affine=torch.from_numpy(ras), meta=meta)


# --------------------------------------------------------------------------------------------- HU → μ at 140 keV
#: Bilinear HU → μ model for ⁹⁹ᵐTc (140.5 keV) from a 120 kVp CT. Below 0 HU a water–air mixture:
#: μ = μ_w (1 + HU/1000). Above 0 HU a water–cortical-bone mixture: μ = μ_w + HU·(μ_b − μ_w)/HU_b with
#: μ_w = 0.154 cm⁻¹ and μ_b = 0.284 cm⁻¹ (NIST XCOM water and ICRU cortical bone, ρ = 1.92 g/cm³, at 140 keV) and
#: HU_b = 1228 (cortical bone at the ≈ 70 keV effective energy of a 120 kVp spectrum). Slope above 0: 1.06e-4 cm⁻¹/HU.
HU_MU_MODEL = {"mu_water": 0.154, "mu_bone": 0.284, "hu_bone": 1228.0, "kvp": 120.0, "energy_kev": TC99M_KEV}


def hu_to_mu(hu: torch.Tensor | np.ndarray, model: dict = HU_MU_MODEL):
    """μ (cm⁻¹) at 140.5 keV from HU (bilinear, see :data:`HU_MU_MODEL`); values below −1000 HU give 0."""
    t = torch.as_tensor(hu, dtype=torch.float64, device=hu.device if isinstance(hu, torch.Tensor) else "cpu")
    mw, mb, hb = model["mu_water"], model["mu_bone"], model["hu_bone"]
    mu = torch.where(t <= 0, mw * (1 + t / 1000.0), mw + t * (mb - mw) / hb)
    return mu.clamp_min(0.0)


def mu_to_hu(mu: torch.Tensor | np.ndarray, model: dict = HU_MU_MODEL):
    """Inverse of :func:`hu_to_mu` (used by the phantom to synthesise its CT)."""
    m = torch.as_tensor(mu, dtype=torch.float64, device=mu.device if isinstance(mu, torch.Tensor) else "cpu")
    mw, mb, hb = model["mu_water"], model["mu_bone"], model["hu_bone"]
    return torch.where(m <= mw, 1000.0 * (m / mw - 1), (m - mw) * hb / (mb - mw))


def resample_to_grid(values: np.ndarray, affine_lps: np.ndarray, target_affine_lps: np.ndarray, target_shape, default: float, linear: bool = True) -> np.ndarray:
    """Resample an ``(X, Y, Z)`` volume onto another grid (SimpleITK, both affines index → LPS mm)."""
    import SimpleITK as sitk

    def to_image(arr, aff):
        img = sitk.GetImageFromArray(np.ascontiguousarray(np.asarray(arr, dtype=np.float64).transpose(2, 1, 0)))
        a = np.asarray(aff, dtype=np.float64)
        sp = np.linalg.norm(a[:3, :3], axis=0)
        img.SetSpacing(tuple(float(s) for s in sp))
        img.SetOrigin(tuple(float(o) for o in a[:3, 3]))
        img.SetDirection(tuple(float(v) for v in (a[:3, :3] / sp).flatten()))
        return img

    src = to_image(values, affine_lps)
    ref = to_image(np.zeros(tuple(target_shape)), target_affine_lps)
    out = sitk.Resample(src, ref, sitk.Transform(), sitk.sitkLinear if linear else sitk.sitkNearestNeighbor, float(default), sitk.sitkFloat64)
    return sitk.GetArrayFromImage(out).transpose(2, 1, 0)


def ct_hu_on_grid(ct, nm: NMProjections) -> torch.Tensor:
    """The CT image in HU (float32 ``(X, X, Z)``) on the SPECT reconstruction grid of ``nm``.

    The CT ``MetaTensor (1, X', Y', Z')`` in HU (:func:`read_ct_series`) is resampled with SimpleITK (linear) onto
    ``nm.affine``'s grid; voxels outside the CT's field of view are air, −1000 HU.
    """
    hu = ct[0].numpy() if hasattr(ct, "numpy") else np.asarray(ct)[0]
    aff = np.asarray(ct.meta["affine_lps"]) if hasattr(ct, "meta") and "affine_lps" in ct.meta else lps_to_ras(np.asarray(ct.affine))
    return torch.from_numpy(resample_to_grid(hu, aff, nm.affine, nm.object_shape, default=-1000.0)).float()


def ct_to_mu_on_grid(ct, nm: NMProjections, model: dict = HU_MU_MODEL) -> torch.Tensor:
    """μ-map (cm⁻¹, float32 ``(X, X, Z)``) on the SPECT reconstruction grid from a CT ``MetaTensor`` in HU.

    The CT is resampled (:func:`ct_hu_on_grid`: linear, air = −1000 HU outside its field of view) onto ``nm.affine``'s
    grid, then converted with :func:`hu_to_mu`.
    """
    return hu_to_mu(ct_hu_on_grid(ct, nm), model).float()


def estimate_scatter(nm: NMProjections, method: str = "auto", sigma_bins: float = 1.0) -> tuple[torch.Tensor | None, str]:
    """Scatter estimate (expected photopeak scatter counts) from the file's scatter windows, for OSEM's additive term.

    The windows are told apart by their keV ranges relative to the photopeak ``nm.windows[nm.window]`` (not by their
    names): narrow windows ending / starting within 1 keV of the photopeak's edges are the triple-energy-window pair
    (TEW, Ogawa et al. 1991, IEEE TMI 10); a window entirely below the photopeak otherwise is a dual-energy-window
    window (DEW, Jaszczak et al. 1984, J Nucl Med 25, ``k = 0.5``, the widest if several). ``auto``: TEW when the
    lower and upper windows exist, else DEW with a lower window, else no estimate. See
    :func:`monai_diffrecon.physics.scatter.estimate_from_windows`; the estimate is smoothed with a Gaussian of
    ``sigma_bins`` along bins and rows and is ≥ 0.

    Args:
        nm: projections read by :func:`read_nm_projections` (its ``other_windows`` hold the window counts).
        method: ``"auto"``, ``"tew"``, ``"dew"`` or ``"none"``.
        sigma_bins: smoothing σ in detector bins / rows.

    Returns:
        ``(estimate, method)``: float32 ``(1, 1, V, X, Z)`` like ``nm.counts`` (or ``None``) and ``"tew"``,
        ``"dew"`` or ``"none"``.

    Raises:
        DicomError: a window without an energy range, a window overlapping the photopeak, or (for an explicit
            ``method``) the windows it needs are missing.
    """
    from monai_diffrecon.errors import InvalidValueError
    from monai_diffrecon.physics.scatter import estimate_from_windows

    where = nm.source.header.get("SOPInstanceUID", "<NM projections>") if nm.source is not None else "<NM projections>"
    if method not in ("auto", "tew", "dew", "none"):
        raise InvalidValueError(f"method: 'auto', 'tew', 'dew' or 'none', got {method!r}")
    if method == "none":
        return None, "none"
    others = [w for i, w in enumerate(nm.windows) if i != nm.window]
    if not others:
        if method != "auto":
            raise DicomError(where, f"scatter method {method!r} needs scatter windows; the file has only the photopeak", "EnergyWindowInformationSequence")
        return None, "none"
    peak = nm.windows[nm.window]
    for w in [peak, *others]:
        if not (np.isfinite(w.lower_kev) and np.isfinite(w.upper_kev)) or not 0 < w.lower_kev < w.upper_kev:
            raise DicomError(where, f"energy window {w.name!r} has no valid keV range ({w.lower_kev}–{w.upper_kev})", "EnergyWindowRangeSequence")
        if w is not peak and w.lower_kev < peak.upper_kev - 1e-3 and w.upper_kev > peak.lower_kev + 1e-3:
            raise DicomError(where, f"energy window {w.name!r} ({w.lower_kev}–{w.upper_kev} keV) overlaps the photopeak {peak.name!r} "
                             f"({peak.lower_kev}–{peak.upper_kev} keV)", "EnergyWindowRangeSequence")
    if len({w.name for w in others}) != len(others) or any(w.name not in nm.other_windows for w in others):
        raise DicomError(where, "energy window names are not unique, so the scatter windows' frames are ambiguous", "EnergyWindowName")
    try:
        est, used = estimate_from_windows(nm.other_windows, others, peak, method, sigma_bins)
    except InvalidValueError as e:
        raise DicomError(where, str(e), "EnergyWindowInformationSequence") from e
    return (None if est is None else est.float()), used
