"""Corruption corpus for the DICOM readers (RELIABILITY T1).

Each mutant is a valid fixture damaged in one way; each is fed to the reader of its fixture and classified:

* ``rejected`` — a :class:`~monai_diffrecon.errors.DiffReconError` (good);
* ``same`` — accepted and every output (values, geometry) equals the unmutated truth (good: the damage did not
  matter, e.g. a truncated trailing padding element or a dropped optional attribute);
* ``flagged`` — accepted with a recorded warning, output differs (the reader told the user);
* ``silent`` — accepted, output differs, no warning (**bug**);
* ``crash`` — any other exception (**bug**).

Mutation families (as named in the test plan): truncation, transfer-syntax swap, dropped geometry/pixel tags,
VR corruption, length corruption, Rows/Columns/NumberOfFrames bombs, NaN/0/inf rescale slope, short/long pixel
data, bad character set, non-finite geometry values, and — on a multi-file CT series — duplicate positions,
missing slices and shifted slices. Random choices come from ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

import io
import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from monai_diffrecon.errors import DiffReconError

__all__ = ["Fixture", "run_corpus", "default_fixtures", "CorpusResult"]

TS = {
    "implicit": "1.2.840.10008.1.2",
    "explicit": "1.2.840.10008.1.2.1",
    "deflated": "1.2.840.10008.1.2.1.99",
    "bigendian": "1.2.840.10008.1.2.2",
    "jpeg": "1.2.840.10008.1.2.4.50",
    "rle": "1.2.840.10008.1.2.5",
    "bogus": "1.2.3.4",
}


@dataclass
class Fixture:
    """A valid input, the reader to apply, and the attributes worth dropping.

    ``read(path) -> (outputs: dict[str, np.ndarray], warnings: list[str])``; for series fixtures ``path`` is a folder.
    """

    name: str
    files: list[Path]
    read: Callable
    drop_keywords: list[str]
    series: bool = False


@dataclass
class CorpusResult:
    counts: Counter = field(default_factory=Counter)
    by_family: dict = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)  # "family fixture: detail" for crash/silent
    flagged: list[str] = field(default_factory=list)
    same: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _body_offset(data: bytes) -> int:
    pos = 132
    while pos + 8 <= len(data) and struct.unpack_from("<H", data, pos)[0] == 0x0002:
        vr = data[pos + 4 : pos + 6]
        if vr in (b"OB", b"OW", b"UN", b"UT", b"SQ", b"UC", b"UR"):
            pos += 12 + struct.unpack_from("<I", data, pos + 8)[0]
        else:
            pos += 8 + struct.unpack_from("<H", data, pos + 6)[0]
    return pos


def _top_level_elements(data: bytes) -> list[tuple[int, bytes, int]]:
    """(offset, VR, header size) of the top-level elements of an explicit-VR little-endian body."""
    out = []
    pos = _body_offset(data)
    while pos + 8 <= len(data):
        vr = data[pos + 4 : pos + 6]
        if vr in (b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"):
            length, hdr = struct.unpack_from("<I", data, pos + 8)[0], 12
        else:
            length, hdr = struct.unpack_from("<H", data, pos + 6)[0], 8
        out.append((pos, vr, hdr))
        if length == 0xFFFFFFFF:
            break  # undefined-length sequence: stop listing here
        pos += hdr + length
    return out


def _rewrite(path: Path, out: Path, edit: Callable) -> None:
    import warnings

    import pydicom

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the mutations are invalid on purpose
        ds = pydicom.dcmread(path)
        edit(ds)
        ds.save_as(out, enforce_file_format=False)


def _swap_ts(data: bytes, uid: str) -> bytes:
    import pydicom
    from pydicom.filewriter import write_file_meta_info

    body = _body_offset(data)
    meta = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).file_meta
    meta.TransferSyntaxUID = uid
    buf = pydicom.filebase.DicomBytesIO()
    write_file_meta_info(buf, meta, enforce_standard=True)
    return data[:128] + b"DICM" + buf.getvalue() + data[body:]


def _mutants(fx: Fixture, rng: np.random.Generator, n: int, tmp: Path):
    """Yield ``(family, detail, target)`` with the mutated file (or series folder) written under ``tmp``."""
    families = ["truncate", "ts_swap", "drop_tag", "vr", "length", "bomb", "rescale", "pixel_length", "charset", "geometry_value"]
    if fx.series:
        families = ["duplicate_position", "missing_slice", "shifted_slice", "truncate", "drop_tag"]
    for i in range(n):
        fam = families[i % len(families)]
        src = fx.files[int(rng.integers(len(fx.files)))] if fx.series else fx.files[0]
        data = src.read_bytes()
        work = tmp / f"m{i}"
        work.mkdir()
        if fx.series:
            for f in fx.files:
                (work / f.name).write_bytes(f.read_bytes())
            dst, target = work / src.name, work
        else:
            dst = target = work / "f.dcm"
        detail = ""
        if fam == "truncate":
            cut = int(rng.integers(0, len(data)))
            dst.write_bytes(data[:cut])
            detail = f"cut at {cut}/{len(data)}"
        elif fam == "ts_swap":
            key = list(TS)[int(rng.integers(len(TS)))]
            dst.write_bytes(_swap_ts(data, TS[key]))
            detail = key
        elif fam == "drop_tag":
            kw = fx.drop_keywords[int(rng.integers(len(fx.drop_keywords)))]
            _rewrite(src, dst, lambda ds, kw=kw: _drop(ds, kw))
            detail = kw
        elif fam in ("vr", "length"):
            elems = _top_level_elements(data)
            pos, vr, hdr = elems[int(rng.integers(len(elems)))]
            b = bytearray(data)
            if fam == "vr":
                new = bytes(rng.choice(list(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ\x00\xff"), 2).tolist())
                b[pos + 4 : pos + 6] = new
                detail = f"{vr!r}->{new!r} at {pos}"
            else:
                off, fmt = (pos + 8, "<I") if hdr == 12 else (pos + 6, "<H")
                old = struct.unpack_from(fmt, b, off)[0]
                delta = int(rng.choice([-4, -2, -1, 1, 2, 4, 1000, -1000, 0x7FFF]))
                new_len = max(0, min(old + delta, 0xFFFFFFFE if fmt == "<I" else 0xFFFF))
                struct.pack_into(fmt, b, off, new_len)
                detail = f"length {old}->{new_len} at {pos}"
            dst.write_bytes(bytes(b))
        elif fam == "bomb":
            kw = ["Rows", "Columns", "NumberOfFrames"][int(rng.integers(3))]
            val = int(rng.choice([0, 65535, 40000] + ([2**31 - 1, 10**6] if kw == "NumberOfFrames" else [])))
            _rewrite(src, dst, lambda ds, kw=kw, val=val: setattr(ds, kw, val if kw != "NumberOfFrames" else str(val)))
            detail = f"{kw}={val}"
        elif fam == "rescale":
            val = ["NaN", "0", "inf", "-inf", "1e400", "abc"][int(rng.integers(6))]
            _rewrite(src, dst, lambda ds, val=val: _set_raw(ds, "RescaleSlope", "DS", val))
            detail = val
        elif fam == "pixel_length":
            k = int(rng.choice([-64, -2, 2, 64, 4096]))
            _rewrite(src, dst, lambda ds, k=k: setattr(ds, "PixelData", ds.PixelData[:k] if k < 0 else ds.PixelData + b"\0" * k))
            detail = f"{k:+d} bytes"
        elif fam == "charset":
            val = ["ISO_IR 999", "GB99999", "\\\\", "ISO 2022 IR 6\\ISO 2022 IR 999", "utf-8"][int(rng.integers(5))]
            _rewrite(src, dst, lambda ds, val=val: _set_raw(ds, "SpecificCharacterSet", "CS", val))
            detail = val
        elif fam == "geometry_value":
            kw, val = [("PixelSpacing", "NaN\\1"), ("PixelSpacing", "0\\1"), ("PixelSpacing", "-1\\-1"), ("PixelSpacing", "1"),
                       ("ImageOrientationPatient", "1\\0\\0\\0\\0\\0"), ("ImagePositionPatient", "inf\\0\\0")][int(rng.integers(6))]
            _rewrite(src, dst, lambda ds, kw=kw, val=val: _set_raw(ds, kw, "DS", val, deep=True))
            detail = f"{kw}={val}"
        elif fam == "duplicate_position":
            other = fx.files[(fx.files.index(src) + 1) % len(fx.files)]
            import pydicom

            ipp = pydicom.dcmread(other).ImagePositionPatient
            _rewrite(src, dst, lambda ds, ipp=ipp: setattr(ds, "ImagePositionPatient", ipp))
            detail = f"{src.name} at {other.name}'s position"
        elif fam == "missing_slice":
            victim = fx.files[1 + int(rng.integers(len(fx.files) - 2))]
            (work / victim.name).unlink()
            detail = victim.name
        elif fam == "shifted_slice":
            d = float(rng.choice([0.002, 0.5, 2.5, -1.0]))
            axis = int(rng.integers(3))

            def shift(ds, d=d, axis=axis):
                p = [float(t) for t in ds.ImagePositionPatient]
                p[axis] += d
                ds.ImagePositionPatient = p

            _rewrite(src, dst, shift)
            detail = f"{src.name} axis {axis} {d:+g} mm"
        yield fam, detail, target


def _set_raw(ds, kw: str, vr: str, val: str, deep: bool = False) -> None:
    from pydicom.datadict import tag_for_keyword
    from pydicom.dataelem import RawDataElement

    tag = tag_for_keyword(kw)
    raw = val.encode("latin-1")
    if len(raw) % 2:
        raw += b" "
    targets = [ds]
    if deep:
        for seq_kw in ("DetectorInformationSequence",):
            targets += list(ds.get(seq_kw, []))
    hit = False
    for t in targets:
        if kw in t or t is ds and not deep:
            t[tag] = RawDataElement(tag, vr, len(raw), raw, 0, False, True)
            hit = True
    if not hit:
        ds[tag] = RawDataElement(tag, vr, len(raw), raw, 0, False, True)


def _drop(ds, kw: str) -> None:
    if kw in ds:
        del ds[kw]
    for item in ds.get("DetectorInformationSequence", []):
        if kw in item:
            del item[kw]
    for item in ds.get("RotationInformationSequence", []):
        if kw in item:
            del item[kw]


def _equal(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for k in a:
        x, y = a[k], b[k]
        if x is None or y is None:
            if x is not y:
                return False
            continue
        x, y = np.asarray(x), np.asarray(y)
        if x.shape != y.shape or not np.allclose(x, y, rtol=0, atol=1e-6, equal_nan=False):
            return False
    return True


def run_corpus(fixtures: list[Fixture], per_fixture: int, tmp: Path, seed: int = 0) -> CorpusResult:
    """Generate ``per_fixture`` mutants per fixture, run the readers, classify (see module doc)."""
    import warnings

    res = CorpusResult()
    rng = np.random.default_rng(seed)
    for fx in fixtures:
        truth, _ = fx.read(fx.files[0].parent if fx.series else fx.files[0])
        base = tmp / fx.name
        base.mkdir(parents=True)
        for fam, detail, target in _mutants(fx, rng, per_fixture, base):
            fam_counts = res.by_family.setdefault(fam, Counter())
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    out, warns = fx.read(target)
            except DiffReconError:
                outcome = "rejected"
            except Exception as e:  # noqa: BLE001 - classifying crashes is the point
                outcome = "crash"
                res.failures.append(f"crash {fam} {fx.name}: {detail}: {type(e).__name__}: {str(e)[:120]}")
            else:
                if _equal(out, truth):
                    outcome = "same"
                    res.same.append(f"same {fam} {fx.name}: {detail}")
                elif warns:
                    outcome = "flagged"
                    res.flagged.append(f"flagged {fam} {fx.name}: {detail}: {warns[-1][:100]}")
                else:
                    outcome = "silent"
                    res.failures.append(f"silent {fam} {fx.name}: {detail}")
            res.counts[outcome] += 1
            fam_counts[outcome] += 1
    return res


def default_fixtures(work: Path) -> list[Fixture]:
    """CT (pydicom CT_small), MR (pydicom MR_small), NM TOMO (simulated, 2 heads, 2 windows) and a 5-slice CT series."""
    import shutil

    from pydicom.data import get_testdata_file

    from monai_diffrecon.data.spect_study import simulate_spect_study
    from monai_diffrecon.io.dicom import read_nm_projections
    from monai_diffrecon.io.dicom_write import StudyInfo, write_ct_series
    from monai_diffrecon.io.series import assemble_series

    work.mkdir(parents=True, exist_ok=True)
    fixtures = []

    def read_series(p):
        v = assemble_series([p] if Path(p).is_file() else p)
        return {"values": v.values, "affine": v.affine}, v.warnings

    for name in ("CT_small.dcm", "MR_small.dcm"):
        dst = work / name
        shutil.copy(get_testdata_file(name), dst)
        fixtures.append(Fixture(name.split("_")[0].lower(), [dst], read_series,
                                ["ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows", "Columns", "BitsAllocated",
                                 "BitsStored", "HighBit", "PixelRepresentation", "PixelData", "RescaleSlope", "RescaleIntercept",
                                 "SeriesInstanceUID", "SliceThickness", "SamplesPerPixel", "Modality"]))
    st = simulate_spect_study(work / "nm", seed=11, size=16, voxel_mm=24.0, views=8, total_counts=2e4)

    def read_nm(p):
        nm = read_nm_projections(p)
        return {"counts": nm.counts.numpy(), "angles": nm.angles_deg.numpy(), "radii": None if nm.radii_mm is None else nm.radii_mm.numpy(),
                "affine": nm.affine}, nm.warnings

    fixtures.append(Fixture("nm", [st.nm_file], read_nm,
                            ["NumberOfFrames", "FrameIncrementPointer", "EnergyWindowVector", "DetectorVector", "AngularViewVector",
                             "EnergyWindowInformationSequence", "DetectorInformationSequence", "RotationInformationSequence",
                             "StartAngle", "AngularStep", "RotationDirection", "NumberOfFramesInRotation", "RadialPosition",
                             "PixelSpacing", "ImagePositionPatient", "ImageType", "SOPClassUID", "PixelData", "Rows"]))
    aff = np.diag([2.0, 2.0, 3.0, 1.0])
    aff[:3, 3] = [-10.0, -12.0, 5.0]
    hu = np.random.default_rng(5).integers(-1000, 1000, size=(8, 6, 5)).astype(float)
    files = write_ct_series(hu, aff, work / "ctseries", StudyInfo(seed=5), "1.2.3.4")
    fixtures.append(Fixture("ct_series", files, read_series, ["ImagePositionPatient", "ImageOrientationPatient", "SeriesInstanceUID", "PixelData"], series=True))
    return fixtures
