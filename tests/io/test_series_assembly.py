"""Strict series assembly (RELIABILITY T3): every case either rejected with a typed error or accepted correctly."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from monai_diffrecon.errors import DicomError, SeriesAssemblyError
from monai_diffrecon.io import assemble_series, read_ct_series
from monai_diffrecon.io.dicom_write import StudyInfo, write_ct_series

from .dicomtools import dciodvfy_errors

SPACING = 5.0


def _series(folder, seed=0, shape=(10, 8, 6), affine=None, series_number=2):
    rng = np.random.default_rng(seed)
    hu = rng.integers(-1000, 1500, size=shape).astype(float)
    if affine is None:
        affine = np.diag([0.7, 0.8, SPACING, 1.0])
        affine[:3, 3] = [-100.0, -80.0, -20.0]
    files = write_ct_series(hu, affine, folder, StudyInfo(seed=seed), "1.2.3.4.5", series_number=series_number)
    return hu, affine, files


def _edit(path, **attrs):
    ds = pydicom.dcmread(path)
    for k, v in attrs.items():
        setattr(ds, k, v)
    ds.save_as(path)


def test_reference_series_reads_exactly(tmp_path):
    hu, aff, files = _series(tmp_path)
    v = assemble_series(files[0].parent, modality="CT")
    np.testing.assert_array_equal(v.values, hu)
    np.testing.assert_allclose(v.affine, aff, atol=1e-9)
    assert v.spacing == pytest.approx((0.7, 0.8, SPACING))
    assert dciodvfy_errors(files[0]) == []


def test_two_series_in_one_folder_are_never_merged(tmp_path):
    _, _, a = _series(tmp_path / "x", seed=0)
    _, _, b = _series(tmp_path / "y", seed=1)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for f in a + b:
        shutil.copy(f, mixed / f"{f.parent.name}_{f.name}")
    with pytest.raises(SeriesAssemblyError, match="2 series"):
        assemble_series(mixed)
    uid = pydicom.dcmread(a[0]).SeriesInstanceUID
    assert assemble_series(mixed, series_uid=uid).values.shape == (10, 8, 6)


def test_missing_slice_is_reported_not_misspaced(tmp_path):
    _, _, files = _series(tmp_path)
    files[3].unlink()
    with pytest.raises(SeriesAssemblyError, match="missing slice") as e:
        assemble_series(files[0].parent)
    assert e.value.tag == "ImagePositionPatient"


def test_duplicate_position_is_rejected(tmp_path):
    _, _, files = _series(tmp_path)
    ipp = pydicom.dcmread(files[2]).ImagePositionPatient
    _edit(files[3], ImagePositionPatient=ipp)
    with pytest.raises(SeriesAssemblyError, match="duplicate"):
        assemble_series(files[0].parent)


def test_reversed_and_shuffled_order_assembles_identically(tmp_path):
    hu, aff, files = _series(tmp_path)
    names = [f.name for f in files]
    for f in files:
        f.rename(f.with_name("tmp_" + f.name))
    for f, n in zip(sorted(files[0].parent.glob("tmp_*")), reversed(names)):
        f.rename(f.with_name(n))
    v = assemble_series(files[0].parent)
    np.testing.assert_array_equal(v.values, hu)
    np.testing.assert_allclose(v.affine, aff, atol=1e-9)


def test_oblique_orientation_is_carried_by_the_affine(tmp_path):
    c, s = math.cos(0.3), math.sin(0.3)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]]) @ np.array([[1, 0, 0], [0, math.cos(0.2), -math.sin(0.2)], [0, math.sin(0.2), math.cos(0.2)]])
    aff = np.eye(4)
    aff[:3, :3] = rot @ np.diag([0.7, 0.8, SPACING])
    aff[:3, 3] = [10.0, -5.0, 3.0]
    hu, _, files = _series(tmp_path, affine=aff)
    v = assemble_series(files[0].parent)
    np.testing.assert_allclose(v.affine, aff, atol=1e-5)
    np.testing.assert_array_equal(v.values, hu)


def test_gantry_tilt_is_rejected_with_the_angle(tmp_path):
    _, _, files = _series(tmp_path)
    for k, f in enumerate(files):
        ds = pydicom.dcmread(f)
        x, y, z = (float(t) for t in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y + k * SPACING * math.tan(math.radians(20)), z]
        ds.save_as(f)
    with pytest.raises(SeriesAssemblyError, match=r"gantry tilt ≈ 20\.00°"):
        assemble_series(files[0].parent)


def test_non_uniform_spacing_is_rejected(tmp_path):
    _, _, files = _series(tmp_path)
    ds = pydicom.dcmread(files[4])
    x, y, z = (float(t) for t in ds.ImagePositionPatient)
    _edit(files[4], ImagePositionPatient=[x, y, z + 1.3])
    with pytest.raises(SeriesAssemblyError, match="non-uniform"):
        assemble_series(files[0].parent)


def test_spacing_tolerance_is_1e3_mm(tmp_path):
    _, _, files = _series(tmp_path)
    ds = pydicom.dcmread(files[4])
    x, y, z = (float(t) for t in ds.ImagePositionPatient)
    _edit(files[4], ImagePositionPatient=[x, y, z + 0.0004])
    assemble_series(files[0].parent)  # within tolerance
    _edit(files[4], ImagePositionPatient=[x, y, z + 0.002])
    with pytest.raises(SeriesAssemblyError):
        assemble_series(files[0].parent)


def test_mixed_sizes_and_orientations_are_rejected(tmp_path):
    _, _, files = _series(tmp_path / "a")
    _, _, other = _series(tmp_path / "b", shape=(10, 9, 6))
    ds = pydicom.dcmread(other[2])
    ds.SeriesInstanceUID = pydicom.dcmread(files[0]).SeriesInstanceUID
    ds.save_as(files[2])
    with pytest.raises(SeriesAssemblyError, match="Rows/Columns"):
        assemble_series(files[0].parent)
    _, _, files = _series(tmp_path / "c")
    _edit(files[1], ImageOrientationPatient=[1, 0, 0, 0, 0.9998, 0.02])
    with pytest.raises(SeriesAssemblyError, match="orientation"):
        assemble_series(files[0].parent)


@pytest.mark.parametrize("kw, value", [("PatientID", "SOMEONE-ELSE"), ("StudyInstanceUID", "1.2.3.4.5"), ("FrameOfReferenceUID", "1.2.3.4.6")])
def test_a_slice_of_another_patient_study_or_frame_is_rejected(kw, value, tmp_path):
    _, _, files = _series(tmp_path / "a")
    _edit(files[3], **{kw: value})
    with pytest.raises(SeriesAssemblyError, match=f"{kw} differs within the series") as e:
        assemble_series(files[0].parent)
    assert value not in str(e.value)


def test_non_dicom_files_are_skipped_with_a_warning(tmp_path):
    hu, _, files = _series(tmp_path)
    (files[0].parent / "README.txt").write_text("notes")
    v = assemble_series(files[0].parent)
    assert any("README.txt" in w for w in v.warnings)
    np.testing.assert_array_equal(v.values, hu)


def test_real_single_slice_ct_from_pydicom(tmp_path):
    f = get_testdata_file("CT_small.dcm")
    shutil.copy(f, tmp_path / "ct.dcm")
    ct = read_ct_series(tmp_path)
    ds = pydicom.dcmread(f)
    assert ct.shape == (1, 128, 128, 1)
    expected = ds.pixel_array.astype(float).T * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_allclose(ct[0, :, :, 0].numpy(), expected)
    assert any("single-slice" in w for w in ct.meta["warnings"])
    # the affine is RAS (MONAI convention): first voxel at the DICOM position with x, y negated
    ipp = [float(t) for t in ds.ImagePositionPatient]
    np.testing.assert_allclose(ct.affine[:3, 3].numpy(), [-ipp[0], -ipp[1], ipp[2]], atol=1e-4)


def test_ct_without_rescale_is_rejected(tmp_path):
    _, _, files = _series(tmp_path)
    ds = pydicom.dcmread(files[0])
    del ds.RescaleIntercept
    ds.save_as(files[0])
    with pytest.raises(DicomError, match="RescaleIntercept"):
        assemble_series(files[0].parent)


def test_empty_folder_and_wrong_modality(tmp_path):
    with pytest.raises(SeriesAssemblyError, match="no DICOM"):
        assemble_series(tmp_path)
    _, _, files = _series(tmp_path / "s")
    with pytest.raises(SeriesAssemblyError, match="Modality"):
        assemble_series(files[0].parent, modality="MR")
