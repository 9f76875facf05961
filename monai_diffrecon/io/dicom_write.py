"""DICOM writers: derived reconstruction series (NM RECON TOMO, MR) and the simulated acquisitions (NM TOMO, CT).

Every file written here passes ``dciodvfy`` with no errors (tests check each one) and every series passes
``dcentvfy``. Choices:

* **Derived SPECT** → NM Image Storage, one multi-frame file, ``ImageType = DERIVED\\PRIMARY\\RECON TOMO\\EMISSION``,
  frames = transverse slices (``FrameIncrementPointer = SliceVector``), geometry in the Detector Information
  Sequence (``ImagePositionPatient`` of the first slice, ``ImageOrientationPatient``) plus
  ``SpacingBetweenSlices``.
* **Derived MR** → classic MR Image Storage, one file per slice. Classic MR has no Modality LUT, so stored values are
  unsigned 16-bit and the mapping to real values is carried by the Real World Value Mapping Sequence (accepted by
  the validators, unlike Rescale Slope in MR/NM, which makes the SOP class "standard extended").
* **Quantisation** (:func:`quantize`): NaN/Inf rejected before anything is written; if all values are ≥ 0 the
  stored type is uint16, else int16 — negatives are kept, zero stays zero; the slope is chosen so the largest
  magnitude uses the full range and the stored values never wrap. Real world value = stored × slope + intercept
  (FD, exact); max error ≤ slope / 2.
* **Lineage**: Patient and Study modules copied verbatim (with ``SpecificCharacterSet``), StudyInstanceUID and
  FrameOfReferenceUID kept, new SeriesInstanceUID/SOPInstanceUIDs, ``SourceImageSequence`` and
  ``ReferencedSeriesSequence`` listing every source instance, ``DerivationDescription`` naming the method, the
  model's sha256 and key parameters, ``ContributingEquipmentSequence`` naming this software.
* **UID policy** (:class:`UIDFactory`): UIDs are derived deterministically (SHA-512 via
  ``pydicom.uid.generate_uid(entropy_srcs=…)``, pydicom's registered root) from the source SOP Instance UIDs, the
  software version, the method/parameters string and a caller-supplied seed: the same input, seed, version and
  parameters give the same UIDs (idempotent re-runs overwrite, not duplicate); anything different gives new UIDs.
* **Files**: written by :func:`monai_diffrecon.io.staging.staged_directory` into a folder named from the modality
  and a hash (never from tag values) that holds DICOM files only (PACS import tools walk it); an existing folder of
  that name is replaced only when it holds nothing but the same series (same deterministic SeriesInstanceUID).
"""

from __future__ import annotations

import datetime
import functools
import hashlib
from collections.abc import Sequence as Seq
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from monai_diffrecon import __version__
from monai_diffrecon.errors import OutputError, ShapeError
from monai_diffrecon.io.staging import staged_directory

__all__ = [
    "NM_IMAGE_STORAGE",
    "CT_IMAGE_STORAGE",
    "MR_IMAGE_STORAGE",
    "DicomSource",
    "UIDFactory",
    "Derivation",
    "quantize",
    "write_nm_recon",
    "write_mr_series",
    "write_ct_series",
    "write_nm_tomo",
    "SECONDARY_CAPTURE_STORAGE",
    "write_secondary_capture",
]

NM_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.20"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
SOFTWARE = "monai_diffrecon"

# attributes copied verbatim from the source: Patient, Clinical Trial Subject, General Study, Patient Study
_PATIENT_STUDY_KEYWORDS = [
    "SpecificCharacterSet",
    "PatientName", "PatientID", "IssuerOfPatientID", "TypeOfPatientID", "PatientBirthDate", "PatientBirthTime",
    "PatientSex", "OtherPatientIDsSequence", "OtherPatientNames", "EthnicGroup", "PatientComments",
    "PatientIdentityRemoved", "DeidentificationMethod", "DeidentificationMethodCodeSequence",
    "PatientSpeciesDescription", "PatientBreedDescription", "ResponsiblePerson", "ResponsibleOrganization",
    "StudyInstanceUID", "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber",
    "IssuerOfAccessionNumberSequence", "StudyDescription", "PhysiciansOfRecord", "NameOfPhysiciansReadingStudy",
    "RequestingServiceCodeSequence", "ProcedureCodeSequence", "AdmittingDiagnosesDescription", "PatientAge",
    "PatientSize", "PatientWeight", "Occupation", "AdditionalPatientHistory",
    "ClinicalTrialSponsorName", "ClinicalTrialProtocolID", "ClinicalTrialProtocolName", "ClinicalTrialSiteID",
    "ClinicalTrialSiteName", "ClinicalTrialSubjectID", "ClinicalTrialSubjectReadingID",
]


@dataclass
class DicomSource:
    """What a derived series inherits and references.

    Attributes:
        header: a source instance's data set (pixel data not needed) to copy Patient/Study modules from; ``None``
            for raw-data sources (k-space) — a new study is then created with empty patient attributes.
        instances: ``[(SOPClassUID, SOPInstanceUID, SeriesInstanceUID)]`` of every source instance.
        frame_of_reference_uid: kept in the derived series (new one if ``None``).
    """

    header: object | None
    instances: list[tuple[str, str, str]] = field(default_factory=list)
    frame_of_reference_uid: str | None = None

    @classmethod
    def from_datasets(cls, datasets: Seq, path: object = "<series>") -> DicomSource:
        from monai_diffrecon.io.dicom_guard import get_str

        ds0 = datasets[0]
        inst = [tuple(get_str(d, path, k) for k in ("SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID")) for d in datasets]
        return cls(ds0, inst, get_str(ds0, path, "FrameOfReferenceUID", default="") or None)

    def merged(self, other: DicomSource) -> DicomSource:
        """Same study, more referenced instances (e.g. projections + the CT used for attenuation)."""
        return DicomSource(self.header, self.instances + other.instances, self.frame_of_reference_uid)


@dataclass
class Derivation:
    """How the image was derived (goes into DerivationDescription / ContributingEquipment)."""

    method: str
    parameters: dict = field(default_factory=dict)
    model_sha256: str | None = None

    def description(self) -> str:
        parts = [f"{self.method} ({SOFTWARE} {__version__})"]
        if self.model_sha256:
            parts.append(f"model sha256 {self.model_sha256}")
        if self.parameters:
            parts.append(", ".join(f"{k}={v}" for k, v in sorted(self.parameters.items())))
        text = "; ".join(parts)
        return text if len(text) <= 1024 else text[:1021] + "..."  # ST: at most 1024 characters


class UIDFactory:
    """Deterministic UIDs from (source UIDs, software version, derivation, seed, role)."""

    def __init__(self, *parts: object) -> None:
        self._base = [f"{SOFTWARE}-{__version__}"] + [str(p) for p in parts]

    def __call__(self, *role: object) -> str:
        from pydicom.uid import generate_uid

        return str(generate_uid(entropy_srcs=self._base + [str(r) for r in role]))

    def tag(self) -> str:
        return hashlib.sha256("|".join(self._base).encode()).hexdigest()[:12]


def quantize(values: np.ndarray, what: str = "image") -> tuple[np.ndarray, float, float]:
    """Map real values to 16-bit integers: ``value ≈ stored · slope + intercept`` (intercept 0).

    Returns:
        ``(stored, slope, intercept)``; ``stored`` is uint16 if all values are ≥ 0 else int16.

    Raises:
        OutputError: NaN or Inf in ``values`` (nothing is written).
    """
    v = np.asarray(values, dtype=np.float64)
    if not np.isfinite(v).all():
        raise OutputError(f"{what}: contains NaN or Inf; refusing to write")
    vmin, vmax = (float(v.min()), float(v.max())) if v.size else (0.0, 0.0)
    signed = vmin < 0
    top = 32767 if signed else 65535
    mag = max(abs(vmin), abs(vmax))
    slope = mag / top if mag > 0 else 1.0
    q = np.rint(v / slope)
    q = np.clip(q, -top if signed else 0, top)  # rounding can only touch the end of the range
    return q.astype(np.int16 if signed else np.uint16), slope, 0.0


def _now() -> tuple[str, str]:
    t = datetime.datetime.now()
    return t.strftime("%Y%m%d"), t.strftime("%H%M%S")


@functools.lru_cache(maxsize=1024)
def _series_now(series_uid: str) -> tuple[str, str]:
    """SeriesDate/SeriesTime fixed at the first instance written for ``series_uid``: a series attribute must be equal
    in every instance (dcentvfy flags a series whose writing crossed a second boundary otherwise)."""
    return _now()


def _code(value: str, scheme: str, meaning: str):
    from pydicom.dataset import Dataset

    c = Dataset()
    c.CodeValue, c.CodingSchemeDesignator, c.CodeMeaning = value, scheme, meaning
    return c


def _base(sop_class: str, sop_uid: str, source: DicomSource | None, uids: UIDFactory, modality: str,
          series_uid: str, series_number: int, description: str, for_uid: str):
    """File meta, SOP common, Patient/Study (copied), General Series/Equipment, Frame of Reference."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID

    ds = Dataset()
    fm = FileMetaDataset()
    fm.MediaStorageSOPClassUID = sop_class
    fm.MediaStorageSOPInstanceUID = sop_uid
    fm.TransferSyntaxUID = ExplicitVRLittleEndian
    fm.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    fm.ImplementationVersionName = f"DIFFRECON_{__version__}"[:16]
    ds.file_meta = fm
    hdr = None if source is None else source.header
    if hdr is not None:
        for kw in _PATIENT_STUDY_KEYWORDS:
            if kw in hdr:
                ds[kw] = hdr[kw]
    if "SpecificCharacterSet" not in ds:
        ds.SpecificCharacterSet = "ISO_IR 192"
    for kw in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "ReferringPhysicianName", "StudyID", "AccessionNumber", "StudyDate", "StudyTime"):
        if kw not in ds:
            setattr(ds, kw, "")
    if "StudyInstanceUID" not in ds:
        ds.StudyInstanceUID = uids("study")
    date, time_ = _now()
    series_date, series_time = _series_now(series_uid)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.Modality = modality
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.SeriesDescription = description[:64]
    ds.SeriesDate, ds.SeriesTime = series_date, series_time
    ds.ContentDate, ds.ContentTime = date, time_
    ds.FrameOfReferenceUID = for_uid
    ds.PositionReferenceIndicator = ""
    ds.Manufacturer = SOFTWARE
    ds.ManufacturerModelName = SOFTWARE
    ds.SoftwareVersions = __version__
    if modality in ("CT", "MR"):  # NM/PET carry the patient orientation as codes instead
        ds.PatientPosition = "" if hdr is None else str(hdr.get("PatientPosition", ""))
    return ds


def _lineage(ds, source: DicomSource | None, derivation: Derivation) -> None:
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ds.DerivationDescription = derivation.description()
    eq = Dataset()
    eq.Manufacturer = SOFTWARE
    eq.ManufacturerModelName = SOFTWARE
    eq.SoftwareVersions = __version__
    eq.ContributionDateTime = datetime.datetime.now().strftime("%Y%m%d%H%M%S")
    eq.ContributionDescription = derivation.method[:64]
    eq.PurposeOfReferenceCodeSequence = Sequence([_code("109103", "DCM", "Modifying Equipment")])
    ds.ContributingEquipmentSequence = Sequence([eq])
    if source is None or not source.instances:
        return
    src_items = []
    by_series: dict[str, list] = {}
    for cls_uid, inst_uid, ser_uid in source.instances:
        it = Dataset()
        it.ReferencedSOPClassUID, it.ReferencedSOPInstanceUID = cls_uid, inst_uid
        src_items.append(it)
        by_series.setdefault(ser_uid, []).append((cls_uid, inst_uid))
    ds.SourceImageSequence = Sequence(src_items)
    series_items = []
    for ser_uid, insts in by_series.items():
        s = Dataset()
        s.SeriesInstanceUID = ser_uid
        refs = []
        for cls_uid, inst_uid in insts:
            r = Dataset()
            r.ReferencedSOPClassUID, r.ReferencedSOPInstanceUID = cls_uid, inst_uid
            refs.append(r)
        s.ReferencedInstanceSequence = Sequence(refs)
        series_items.append(s)
    ds.ReferencedSeriesSequence = Sequence(series_items)


def _pixel_module(ds, stored: np.ndarray, rows: int, cols: int) -> None:
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1 if stored.dtype == np.int16 else 0
    ds.PixelData = np.ascontiguousarray(stored).astype(stored.dtype.newbyteorder("<")).tobytes()


def _rwvm(ds, slope: float, intercept: float, stored: np.ndarray, units: tuple[str, str, str], label: str) -> None:
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    rw = Dataset()
    if stored.dtype == np.int16:
        rw.RealWorldValueFirstValueMapped, rw.RealWorldValueLastValueMapped = -32768, 32767
    else:
        rw.RealWorldValueFirstValueMapped, rw.RealWorldValueLastValueMapped = 0, 65535
    rw.RealWorldValueIntercept = float(intercept)
    rw.RealWorldValueSlope = float(slope)
    rw.LUTExplanation = label[:64]
    rw.LUTLabel = label[:16].upper().replace(" ", "_")
    rw.MeasurementUnitsCodeSequence = Sequence([_code(*units)])
    ds.RealWorldValueMappingSequence = Sequence([rw])
    fix_vrs(ds)


def fix_vrs(ds) -> None:
    """``RealWorldValueFirst/LastValueMapped`` are US or SS depending on the pixel representation."""
    for item in ds.get("RealWorldValueMappingSequence", []):
        vr = "SS" if ds.get("PixelRepresentation", 0) == 1 else "US"
        for kw in ("RealWorldValueFirstValueMapped", "RealWorldValueLastValueMapped"):
            if kw in item:
                item[kw].VR = vr


def _geometry(affine_lps: np.ndarray) -> tuple[list[float], list[float], list[float], float, np.ndarray, bool]:
    """(IOP, PixelSpacing [row, col], IPP of voxel 0, slice spacing, normal, flip_z) of an (X, Y, Z) volume."""
    a = np.asarray(affine_lps, dtype=np.float64)
    cx, cy, cz = (np.linalg.norm(a[:3, i]) for i in range(3))
    if min(cx, cy, cz) <= 0:
        raise ShapeError("affine: degenerate voxel axes")
    r_dir, c_dir = a[:3, 0] / cx, a[:3, 1] / cy
    if abs(r_dir @ c_dir) > 1e-6:
        raise ShapeError("affine: the in-plane axes are not orthogonal")
    normal = np.cross(r_dir, c_dir)
    z_dir = a[:3, 2] / cz
    cosang = float(normal @ z_dir)
    if abs(abs(cosang) - 1) > 1e-6:
        raise ShapeError("affine: the slice axis is not perpendicular to the slice plane (sheared volume)")
    flip = cosang < 0
    return [*r_dir.tolist(), *c_dir.tolist()], [cy, cx], a[:3, 3].tolist(), cz, normal, flip


def _oriented(volume: np.ndarray, affine_lps: np.ndarray):
    """Validated float64 ``(X, Y, Z)`` volume with its slice geometry; slices reordered so the stack runs along
    +row×col. Returns ``(vol, iop, pixel_spacing, ipp, dz, normal)``."""
    vol = np.asarray(volume, dtype=np.float64)
    if vol.ndim != 3:
        raise ShapeError(f"volume: expected (X, Y, Z), got {vol.shape}")
    iop, ps, ipp, dz, normal, flip = _geometry(affine_lps)
    if flip:
        ipp = (np.asarray(ipp) + (vol.shape[2] - 1) * dz * (-normal)).tolist()
        vol = vol[:, :, ::-1]
    return vol, iop, ps, ipp, dz, normal


@dataclass
class _Derived:
    vol: np.ndarray
    stored: np.ndarray
    slope: float
    intercept: float
    iop: list
    ps: list
    ipp: list
    dz: float
    normal: np.ndarray
    uids: UIDFactory
    series_uid: str
    for_uid: str


def _prepare_derived(volume, affine_lps, source: DicomSource | None, derivation: Derivation, seed: int, role: str) -> _Derived:
    """Shared first half of the derived-series writers: geometry, quantisation and the UID policy."""
    vol, iop, ps, ipp, dz, normal = _oriented(volume, affine_lps)
    stored, slope, intercept = quantize(vol, "volume")
    src_ids = [i[1] for i in source.instances] if source else []
    uids = UIDFactory(*src_ids, derivation.description(), seed, role)
    for_uid = (source.frame_of_reference_uid if source else None) or uids("frame-of-reference")
    return _Derived(vol, stored, slope, intercept, iop, ps, ipp, dz, normal, uids, uids("series"), for_uid)


def _ds_list(vals: Seq[float]) -> list[str]:
    from pydicom.valuerep import format_number_as_ds

    return [format_number_as_ds(float(v)) for v in vals]


def _same_series(uid: str):
    """Ownership test for an existing series folder: every entry is a DICOM file of series ``uid`` (the deterministic
    UID policy gives a re-run with the same inputs, seed, version and parameters the same UID)."""

    def owned(folder: Path) -> bool:
        from monai_diffrecon.errors import DicomError
        from monai_diffrecon.io.dicom_guard import get_str, read_dataset

        try:
            entries = list(folder.iterdir())
            return all(p.is_file() and not p.is_symlink() and p.suffix == ".dcm"
                       and get_str(read_dataset(p, stop_before_pixels=True), p, "SeriesInstanceUID") == uid for p in entries)
        except (OSError, DicomError):
            return False

    return owned


def _save_series(out_dir: str | Path, folder: str, datasets: list) -> list[Path]:
    """Write ``datasets`` into ``out_dir/folder`` (DICOM files only) through a staged folder; returns the files. An
    existing folder of that name is replaced only if it holds nothing but this very series (an idempotent re-run)."""
    final = Path(out_dir) / folder
    with staged_directory(final, overwrite=True, manifest=False, owned=_same_series(str(datasets[0].SeriesInstanceUID))) as tmp:
        for i, ds in enumerate(datasets, start=1):
            ds.save_as(tmp / f"IM_{i:05d}.dcm", enforce_file_format=True)
    return [final / f"IM_{i:05d}.dcm" for i in range(1, len(datasets) + 1)]


def write_nm_recon(
    volume: np.ndarray,
    affine_lps: np.ndarray,
    source: DicomSource | None,
    out_dir: str | Path,
    derivation: Derivation,
    seed: int = 0,
    description: str = "SPECT reconstruction",
    series_number: int = 901,
    units: tuple[str, str, str] = ("{counts}", "UCUM", "Counts"),
    role: str = "recon",
) -> list[Path]:
    """Write an ``(X, Y, Z)`` SPECT volume as one NM RECON TOMO multi-frame file (see module doc)."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    g = _prepare_derived(volume, affine_lps, source, derivation, seed, role)
    vol, stored, slope, intercept, iop, ps, ipp, dz, uids = g.vol, g.stored, g.slope, g.intercept, g.iop, g.ps, g.ipp, g.dz, g.uids
    ds = _base(NM_IMAGE_STORAGE, uids("instance", 1), source, uids, "NM", g.series_uid, series_number, description, g.for_uid)
    hdr = None if source is None else source.header
    ds.InstanceNumber = 1
    ds.ImageType = ["DERIVED", "PRIMARY", "RECON TOMO", "EMISSION"]
    ds.BodyPartExamined = str(hdr.get("BodyPartExamined", "")) if hdr is not None and hdr.get("BodyPartExamined") else "HEART"
    X, Y, Z = vol.shape
    frames = np.transpose(stored, (2, 1, 0))  # (Z, rows = Y, cols = X)
    _pixel_module(ds, frames, Y, X)
    ds.NumberOfFrames = Z
    ds.PixelSpacing = _ds_list(ps)
    ds.FrameIncrementPointer = [0x00540080]
    ds.SliceVector = list(range(1, Z + 1))
    ds.NumberOfSlices = Z
    ds.NumberOfEnergyWindows = 1
    ds.NumberOfDetectors = 1
    ds.NumberOfRotations = 1
    ds.CountsAccumulated = ""
    ds.PatientOrientationCodeSequence = Sequence()
    ds.PatientGantryRelationshipCodeSequence = Sequence()
    copied = {kw: hdr[kw] for kw in ("EnergyWindowInformationSequence", "RadiopharmaceuticalInformationSequence") if hdr is not None and kw in hdr}
    ds.EnergyWindowInformationSequence = copied.get("EnergyWindowInformationSequence", Sequence())
    ds.RadiopharmaceuticalInformationSequence = copied.get("RadiopharmaceuticalInformationSequence", Sequence())
    det = Dataset()
    src_det = hdr.get("DetectorInformationSequence") if hdr is not None else None
    det.CollimatorType = str(src_det[0].get("CollimatorType", "")) if src_det else ""
    det.ImagePositionPatient = _ds_list(ipp)
    det.ImageOrientationPatient = _ds_list(iop)
    ds.DetectorInformationSequence = Sequence([det])
    ds.RotationInformationSequence = Sequence()
    ds.SpacingBetweenSlices = _ds_list([dz])[0]
    ds.SliceThickness = _ds_list([dz])[0]
    _rwvm(ds, slope, intercept, stored, units, "reconstructed activity")
    _lineage(ds, source, derivation)
    folder = f"NM_{role.upper()}_{uids.tag()}"
    return _save_series(out_dir, folder, [ds])


def write_mr_series(
    volume: np.ndarray,
    affine_lps: np.ndarray,
    source: DicomSource | None,
    out_dir: str | Path,
    derivation: Derivation,
    seed: int = 0,
    description: str = "MR reconstruction",
    series_number: int = 902,
    role: str = "recon",
    body_part: str | None = None,
) -> list[Path]:
    """Write a real ``(X, Y, Z)`` MR volume (e.g. magnitude) as classic MR slices with RWVM scaling.

    ``body_part``: BodyPartExamined when there is no source header to copy it from (raw k-space input)."""
    g = _prepare_derived(volume, affine_lps, source, derivation, seed, role)
    vol, stored, slope, intercept, iop, ps, ipp, dz, normal, uids = g.vol, g.stored, g.slope, g.intercept, g.iop, g.ps, g.ipp, g.dz, g.normal, g.uids
    series_uid, for_uid = g.series_uid, g.for_uid
    hdr = None if source is None else source.header
    out = []
    X, Y, Z = vol.shape
    for k in range(Z):
        ds = _base(MR_IMAGE_STORAGE, uids("instance", k + 1), source, uids, "MR", series_uid, series_number, description, for_uid)
        ds.InstanceNumber = k + 1
        ds.ImageType = ["DERIVED", "PRIMARY", "OTHER"]
        if hdr is not None and hdr.get("BodyPartExamined"):
            ds.BodyPartExamined = str(hdr.BodyPartExamined)
        elif body_part:
            ds.BodyPartExamined = body_part
        ds.ScanningSequence = "RM"
        ds.SequenceVariant = "NONE"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "2D" if Z == 1 else "3D"
        ds.EchoTime = ""
        ds.EchoTrainLength = ""
        ds.RepetitionTime = ""
        ds.ImageOrientationPatient = _ds_list(iop)
        pos = np.asarray(ipp) + k * dz * normal
        ds.ImagePositionPatient = _ds_list(pos)
        ds.SliceLocation = _ds_list([float(pos @ normal)])[0]
        ds.PixelSpacing = _ds_list(ps)
        ds.SliceThickness = _ds_list([dz])[0]
        ds.SpacingBetweenSlices = _ds_list([dz])[0]
        _pixel_module(ds, stored[:, :, k].T, Y, X)
        _rwvm(ds, slope, intercept, stored, ("1", "UCUM", "no units"), "image intensity")
        _lineage(ds, source, derivation)
        out.append(ds)
    return _save_series(out_dir, f"MR_{role.upper()}_{uids.tag()}", out)


# --------------------------------------------------------------------------------------------------------------
# Simulated acquisitions (the built-in demo study): NM TOMO projections and a CT series.


@dataclass
class StudyInfo:
    """Patient/study identity for simulated data (defaults are obviously synthetic)."""

    patient_name: str = "SIMULATED^PHANTOM"
    patient_id: str = "SIM0001"
    birth_date: str = ""
    sex: str = "O"
    study_description: str = "Simulated myocardial perfusion SPECT/CT"
    study_date: str = "20260101"
    study_time: str = "120000"
    seed: int = 0

    def header(self, uids: UIDFactory | None = None):
        """Patient/study header shared by every series of the simulated study (the study UID depends only on the
        patient and the seed, so the NM and CT series land in the same study)."""
        from pydicom.dataset import Dataset

        h = Dataset()
        h.SpecificCharacterSet = "ISO_IR 192"
        h.PatientName, h.PatientID, h.PatientBirthDate, h.PatientSex = self.patient_name, self.patient_id, self.birth_date, self.sex
        h.StudyInstanceUID = UIDFactory("study", self.seed, self.patient_id)("study")
        h.StudyDate, h.StudyTime, h.StudyDescription = self.study_date, self.study_time, self.study_description
        h.StudyID, h.AccessionNumber, h.ReferringPhysicianName = "1", "", ""
        h.PatientPosition = "FFS"
        return h


def write_ct_series(
    hu: np.ndarray,
    affine_lps: np.ndarray,
    out_dir: str | Path,
    study: StudyInfo,
    frame_of_reference_uid: str,
    kvp: float = 120.0,
    series_number: int = 2,
) -> list[Path]:
    """Write an ``(X, Y, Z)`` HU volume as an axial CT Image Storage series (int16, RescaleIntercept −1024)."""
    from pydicom.valuerep import format_number_as_ds

    vol, iop, ps, ipp, dz, normal = _oriented(hu, affine_lps)
    if not np.isfinite(vol).all():
        raise OutputError("hu: contains NaN or Inf; refusing to write")
    stored = np.rint(vol + 1024.0)
    if stored.min() < -32768 or stored.max() > 32767:
        raise OutputError("hu: values outside what int16 with intercept −1024 can hold")
    stored = stored.astype(np.int16)
    uids = UIDFactory("ct", study.seed, study.patient_id)
    hdr = study.header(uids)
    src = DicomSource(hdr, [], frame_of_reference_uid)
    series_uid = uids("ct-series")
    X, Y, Z = vol.shape
    out = []
    for k in range(Z):
        ds = _base(CT_IMAGE_STORAGE, uids("ct-instance", k + 1), src, uids, "CT", series_uid, series_number, "CT for attenuation correction", frame_of_reference_uid)
        ds.InstanceNumber = k + 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.BodyPartExamined = "CHEST"
        ds.KVP = format_number_as_ds(kvp)
        ds.AcquisitionNumber = 1
        ds.ImageOrientationPatient = _ds_list(iop)
        pos = np.asarray(ipp) + k * dz * normal
        ds.ImagePositionPatient = _ds_list(pos)
        ds.SliceLocation = _ds_list([float(pos @ normal)])[0]
        ds.PixelSpacing = _ds_list(ps)
        ds.SliceThickness = _ds_list([dz])[0]
        ds.RescaleIntercept = "-1024"
        ds.RescaleSlope = "1"
        ds.RescaleType = "HU"
        _pixel_module(ds, stored[:, :, k].T, Y, X)
        out.append(ds)
    return _save_series(out_dir, f"CT_{uids.tag()}", out)


@dataclass
class EnergyWindow:
    name: str
    lower_kev: float
    upper_kev: float


def write_nm_tomo(
    counts: np.ndarray,
    start_angle_deg: float,
    angular_step_deg: float,
    rotation_direction: str,
    radii_mm: np.ndarray,
    pixel_spacing_mm: tuple[float, float],
    image_position_patient: Seq[float],
    out_dir: str | Path,
    study: StudyInfo,
    frame_of_reference_uid: str,
    windows: Seq[EnergyWindow] = (EnergyWindow("EM", 126.45, 154.55),),
    detectors: int = 1,
    frame_duration_ms: int = 20000,
    series_number: int = 1,
) -> list[Path]:
    """Write a TOMO acquisition as one NM Image Storage multi-frame file.

    Args:
        counts: ``(W, D, V, rows, cols)`` integer counts: energy window, detector, view per detector, frame rows
            (head → feet) and columns (see :func:`monai_diffrecon.io.dicom.read_nm_projections` for the axes).
        start_angle_deg, angular_step_deg, rotation_direction: DICOM angles of detector 1 (CW / CC); detector
            ``d`` starts at ``start + d·360/D`` (opposed heads for D = 2).
        radii_mm: ``(D, V)`` radial positions.
        image_position_patient: the Detector Information Sequence's ImagePositionPatient (same for all heads).
    """
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    c = np.asarray(counts)
    if c.ndim != 5:
        raise ShapeError(f"counts: expected (W, D, V, rows, cols), got {c.shape}")
    if not np.isfinite(c).all() or c.min() < 0 or c.max() > 65535 or np.any(c != np.rint(c)):
        raise OutputError("counts: must be integers in [0, 65535]")
    W, D, V, R, C = c.shape
    if detectors != D or len(windows) != W:
        raise ShapeError("counts: window/detector axes do not match `windows` / `detectors`")
    uids = UIDFactory("nm", study.seed, study.patient_id)
    hdr = study.header(uids)
    src = DicomSource(hdr, [], frame_of_reference_uid)
    ds = _base(NM_IMAGE_STORAGE, uids("nm-instance"), src, uids, "NM", uids("nm-series"), series_number, "SPECT TOMO acquisition", frame_of_reference_uid)
    ds.InstanceNumber = 1
    ds.ImageType = ["ORIGINAL", "PRIMARY", "TOMO", "EMISSION"]
    ds.BodyPartExamined = "HEART"
    frames = c.reshape(W * D * V, R, C).astype(np.uint16)
    _pixel_module(ds, frames, R, C)
    ds.NumberOfFrames = W * D * V
    ds.PixelSpacing = _ds_list(pixel_spacing_mm)
    ds.FrameIncrementPointer = [0x00540010, 0x00540020, 0x00540050, 0x00540090]
    ds.EnergyWindowVector = [w + 1 for w in range(W) for _ in range(D * V)]
    ds.DetectorVector = [d + 1 for _ in range(W) for d in range(D) for _ in range(V)]
    ds.RotationVector = [1] * (W * D * V)
    ds.AngularViewVector = [v + 1 for _ in range(W) for _ in range(D) for v in range(V)]
    ds.NumberOfEnergyWindows = W
    ds.NumberOfDetectors = D
    ds.NumberOfRotations = 1
    ds.CountsAccumulated = int(c.sum()) if c.sum() < 2**31 else ""
    ds.PatientOrientationCodeSequence = Sequence()
    ds.PatientGantryRelationshipCodeSequence = Sequence()
    ew = []
    for w in windows:
        item = Dataset()
        rng = Dataset()
        rng.EnergyWindowLowerLimit = _ds_list([w.lower_kev])[0]
        rng.EnergyWindowUpperLimit = _ds_list([w.upper_kev])[0]
        item.EnergyWindowRangeSequence = Sequence([rng])
        item.EnergyWindowName = w.name
        ew.append(item)
    ds.EnergyWindowInformationSequence = Sequence(ew)
    rp = Dataset()
    rp.Radiopharmaceutical = "Tc99m tetrofosmin"
    rp.RadionuclideCodeSequence = Sequence()
    ds.RadiopharmaceuticalInformationSequence = Sequence([rp])
    dets = []
    for d in range(D):
        it = Dataset()
        it.CollimatorGridName = "LEHR"
        it.CollimatorType = "PARA"
        it.ImagePositionPatient = _ds_list(image_position_patient)
        it.ImageOrientationPatient = _ds_list([1, 0, 0, 0, 0, -1])
        it.StartAngle = _ds_list([(start_angle_deg + d * 360.0 / D) % 360.0])[0]
        it.RadialPosition = _ds_list(np.asarray(radii_mm)[d])
        dets.append(it)
    ds.DetectorInformationSequence = Sequence(dets)
    rot = Dataset()
    rot.StartAngle = _ds_list([start_angle_deg % 360.0])[0]
    rot.AngularStep = _ds_list([angular_step_deg])[0]
    rot.RotationDirection = rotation_direction
    rot.ScanArc = _ds_list([abs(angular_step_deg) * V])[0]
    rot.ActualFrameDuration = frame_duration_ms
    rot.NumberOfFramesInRotation = V
    rot.TableTraverse = "0"
    rot.TableHeight = "0"
    ds.RotationInformationSequence = Sequence([rot])
    ds.TypeOfDetectorMotion = "STEP AND SHOOT"
    return _save_series(out_dir, f"NM_TOMO_{uids.tag()}", [ds])


# --------------------------------------------------------------------------------------------------------------
# Derived pictures for PACS display: the polar map as a Secondary Capture image.

SECONDARY_CAPTURE_STORAGE = "1.2.840.10008.5.1.4.1.1.7"


def write_secondary_capture(
    rgb: np.ndarray,
    source: DicomSource | None,
    out_dir: str | Path,
    derivation: Derivation,
    seed: int = 0,
    description: str = "Polar map (AHA 17-segment)",
    series_number: int = 904,
    role: str = "polarmap",
) -> list[Path]:
    """Write an ``(rows, columns, 3)`` uint8 RGB picture (e.g. the bull's-eye figure) as one Secondary Capture Image
    Storage instance (SOP class 1.2.840.10008.5.1.4.1.1.7) in the source's study, so a PACS displays it next to the
    reconstruction.

    Modules: Patient/Study copied from ``source`` (as for the derived NM series), General Series (Modality ``OT``,
    a new deterministic SeriesInstanceUID), General Equipment, SC Equipment (ConversionType ``WSD``: workstation),
    General Image (``ImageType = DERIVED\\SECONDARY``, lineage: DerivationDescription, SourceImageSequence,
    ReferencedSeriesSequence, ContributingEquipmentSequence), Image Pixel (8-bit RGB, pixel-interleaved), SOP Common.
    No Frame of Reference (a picture has no patient geometry); ``BurnedInAnnotation = NO`` (the picture carries no
    patient identifiers). UIDs follow :class:`UIDFactory` (same source, derivation, seed and role → same UIDs).

    Raises:
        ShapeError: ``rgb`` is not ``(rows, columns, 3)`` or is empty. OutputError: not uint8-representable.
    """
    img = np.asarray(rgb)
    if img.ndim != 3 or img.shape[2] != 3 or img.shape[0] < 1 or img.shape[1] < 1:
        raise ShapeError(f"rgb: expected (rows, columns, 3), got {img.shape}")
    if img.shape[0] > 65535 or img.shape[1] > 65535:
        raise ShapeError(f"rgb: at most 65535 rows and columns, got {img.shape[:2]}")
    if img.dtype != np.uint8:
        if not np.isfinite(img).all() or img.min() < 0 or img.max() > 255:
            raise OutputError("rgb: values must be finite and in [0, 255]")
        img = np.rint(img).astype(np.uint8)
    src_ids = [i[1] for i in source.instances] if source else []
    uids = UIDFactory(*src_ids, derivation.description(), seed, role)
    ds = _base(SECONDARY_CAPTURE_STORAGE, uids("instance", 1), source, uids, "OT", uids("series"), series_number, description, "")
    del ds.FrameOfReferenceUID, ds.PositionReferenceIndicator  # not part of the SC Image IOD
    ds.ConversionType = "WSD"
    hdr = None if source is None else source.header
    ds.BodyPartExamined = str(hdr.get("BodyPartExamined", "")) if hdr is not None and hdr.get("BodyPartExamined") else "HEART"
    ds.InstanceNumber = 1
    ds.PatientOrientation = ""
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.BurnedInAnnotation = "NO"
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = int(img.shape[0]), int(img.shape[1])
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = np.ascontiguousarray(img).tobytes()  # an even length is padded by pydicom when odd
    _lineage(ds, source, derivation)
    return _save_series(out_dir, f"SC_{role.upper()}_{uids.tag()}", [ds])
