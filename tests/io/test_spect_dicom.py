"""SPECT/CT DICOM round trip: simulated study → readers → reconstruction → derived series → validators → re-read."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from monai_diffrecon.errors import DicomError, InvalidValueError, OutputError
from monai_diffrecon.io import (
    Derivation,
    DicomSource,
    ct_to_mu_on_grid,
    lps_to_ras,
    read_ct_series,
    read_nm_projections,
    read_nm_recon,
    write_derived_series,
    write_nifti,
)
from monai_diffrecon.physics import LEHR, SPECTProjector
from monai_diffrecon.recon import osem

from .dicomtools import dcentvfy_errors, dciodvfy_errors, need


def test_nm_projections_read_back_exactly(study):
    nm = read_nm_projections(study.nm_file)
    assert nm.counts.shape == (1, 1, 32, 32, 32)
    assert torch.equal(nm.counts, study.counts)
    torch.testing.assert_close(nm.angles_deg, study.angles_deg, rtol=0, atol=1e-9)
    torch.testing.assert_close(nm.radii_mm, study.radii_mm, rtol=0, atol=1e-6)
    np.testing.assert_allclose(nm.affine, study.affine_lps, atol=1e-6)
    assert [w.name for w in nm.windows] == ["EM", "LSC", "USC"] and nm.window == 0  # LSC/USC: not the photopeak
    assert set(nm.other_windows) == {"LSC", "USC"}
    assert [(w.lower_kev, w.upper_kev) for w in nm.windows] == [(126.45, 154.55), (120.0, 126.45), (154.55, 161.0)]
    assert torch.equal(nm.other_windows["LSC"], study.window_counts["LSC"])
    assert nm.pixel_spacing_mm == (12.0, 12.0)
    # DICOM angles: head 1 from 0° counter-clockwise, head 2 opposed; projector angle = DICOM + 180
    torch.testing.assert_close((nm.dicom_angles_deg + 180) % 360, nm.angles_deg)


def test_energy_window_selection(study):
    sc = read_nm_projections(study.nm_file, energy_window="LSC")
    assert sc.window == 1 and "EM" in sc.other_windows
    assert torch.equal(read_nm_projections(study.nm_file, energy_window=2).counts, sc.counts)
    with pytest.raises(DicomError, match="no energy window named"):
        read_nm_projections(study.nm_file, energy_window="XX")
    with pytest.raises(DicomError, match="energy_window 4"):
        read_nm_projections(study.nm_file, energy_window=4)


def test_ct_series_to_mu_on_spect_grid(study):
    ct = read_ct_series(study.ct_folder)
    assert ct.meta["space"] == "RAS" and ct.shape[0] == 1
    nm = read_nm_projections(study.nm_file)
    mu = ct_to_mu_on_grid(ct, nm)
    assert mu.shape == study.mu.shape
    body = study.mu > 0
    # partial-volume differences at edges only: mean error small, interior exact to the HU quantisation
    assert float((mu - study.mu).abs().mean()) < 0.005
    interior = torch.from_numpy(np.asarray(body)) & (study.mu == 0.154)
    assert float((mu - study.mu)[interior].abs().median()) < 1e-3


def test_projector_from_nm_reproduces_the_simulation(study):
    nm = read_nm_projections(study.nm_file)
    P = SPECTProjector.from_nm(nm, study.mu, LEHR)
    y = P(study.activity[None, None]).double()
    y = y * study.counts_per_unit  # the expected primary; the photopeak adds the scatter on top
    torch.testing.assert_close(y.float(), study.primary, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(study.primary + study.scatter, study.expected)


@pytest.fixture(scope="module")
def derived(study, tmp_path_factory):
    nm = read_nm_projections(study.nm_file)
    ct = read_ct_series(study.ct_folder)
    mu = ct_to_mu_on_grid(ct, nm)
    rec = osem(SPECTProjector.from_nm(nm, mu, LEHR), nm.counts, 2, 8)[0, 0]
    src = nm.source.merged(ct.meta["dicom_source"])
    out = tmp_path_factory.mktemp("derived")
    deriv = Derivation("OSEM", {"iterations": 2, "subsets": 8}, model_sha256="0" * 64)
    files = write_derived_series(rec.numpy(), src, out, "NM", deriv, affine_lps=nm.affine, seed=7)
    return {"nm": nm, "ct": ct, "rec": rec.numpy().astype(np.float64), "files": files, "src": src, "out": out, "deriv": deriv}


def test_every_written_file_passes_dciodvfy(study, derived):
    for f in [study.nm_file, *sorted(study.ct_folder.glob("*.dcm")), *derived["files"]]:
        assert dciodvfy_errors(f) == [], f


def test_dcentvfy_accepts_the_whole_study(study, derived):
    files = [study.nm_file, *sorted(study.ct_folder.glob("*.dcm")), *derived["files"]]
    assert dcentvfy_errors(files) == []


def test_derived_series_round_trip_values_geometry_and_lineage(study, derived):
    vol, aff, hdr = read_nm_recon(derived["files"][0])
    step = float(hdr.RealWorldValueMappingSequence[0].RealWorldValueSlope)
    assert np.abs(vol - derived["rec"]).max() <= step / 2 * (1 + 1e-9)
    # world coordinates of every voxel corner of the grid: ≤ 1e-3 mm
    corners = np.array([[i, j, k, 1] for i in (0, 31) for j in (0, 31) for k in (0, 31)], dtype=float).T
    assert np.abs((aff - derived["nm"].affine) @ corners).max() <= 1e-3
    src_hdr = derived["nm"].source.header
    assert hdr.StudyInstanceUID == src_hdr.StudyInstanceUID
    assert hdr.FrameOfReferenceUID == src_hdr.FrameOfReferenceUID
    assert hdr.SeriesInstanceUID != src_hdr.SeriesInstanceUID
    assert hdr.PatientName == src_hdr.PatientName and hdr.PatientID == src_hdr.PatientID
    assert hdr.SpecificCharacterSet == src_hdr.SpecificCharacterSet
    assert list(hdr.ImageType) == ["DERIVED", "PRIMARY", "RECON TOMO", "EMISSION"]
    refs = {it.ReferencedSOPInstanceUID for it in hdr.SourceImageSequence}
    assert refs == {i[1] for i in derived["src"].instances}
    assert {s.SeriesInstanceUID for s in hdr.ReferencedSeriesSequence} == {i[2] for i in derived["src"].instances}
    assert "OSEM" in hdr.DerivationDescription and "0" * 64 in hdr.DerivationDescription
    assert hdr.ContributingEquipmentSequence[0].Manufacturer == "monai_diffrecon"
    # the series folder holds exactly the written DICOM files (no manifest.json: PACS import tools walk the folder)
    assert sorted(derived["files"][0].parent.iterdir()) == sorted(derived["files"])


def test_output_is_idempotent_and_uid_policy_is_deterministic(derived, tmp_path):
    again = write_derived_series(derived["rec"], derived["src"], tmp_path, "NM", derived["deriv"], affine_lps=derived["nm"].affine, seed=7)
    a, _, ha = read_nm_recon(derived["files"][0])
    b, _, hb = read_nm_recon(again[0])
    assert np.array_equal(a, b)
    assert (ha.SeriesInstanceUID, ha.SOPInstanceUID) == (hb.SeriesInstanceUID, hb.SOPInstanceUID)
    assert again[0].parent.name == derived["files"][0].parent.name
    other = write_derived_series(derived["rec"], derived["src"], tmp_path, "NM", derived["deriv"], affine_lps=derived["nm"].affine, seed=8)
    _, _, hc = read_nm_recon(other[0])
    assert hc.SeriesInstanceUID != ha.SeriesInstanceUID


def test_uncertainty_series_with_negative_values(derived, tmp_path):
    std = derived["rec"] - 0.3 * derived["rec"].max()  # deliberately negative in places
    files = write_derived_series(std, derived["src"], tmp_path, "NM", Derivation("posterior std"), affine_lps=derived["nm"].affine, role="std", description="posterior std")
    assert dciodvfy_errors(files[0]) == []
    v, _, hdr = read_nm_recon(files[0])
    assert v.min() < 0
    step = float(hdr.RealWorldValueMappingSequence[0].RealWorldValueSlope)
    assert np.abs(v - std).max() <= step / 2 * (1 + 1e-9)
    assert "STD" in files[0].parent.name


def test_writer_rejects_nan_and_writes_nothing(derived, tmp_path):
    bad = derived["rec"].copy()
    bad[3, 4, 5] = np.nan
    with pytest.raises(OutputError, match="NaN"):
        write_derived_series(bad, derived["src"], tmp_path, "NM", affine_lps=derived["nm"].affine)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OutputError):
        write_nifti(bad, derived["nm"].affine, tmp_path / "x.nii.gz")
    assert list(tmp_path.iterdir()) == []


def test_no_integer_wraparound_at_the_range_limits(derived, tmp_path):
    v = np.zeros((4, 4, 3))
    v[0, 0, 0], v[1, 1, 1], v[2, 2, 2] = 65535.49, 1e-3, 32767.0
    f = write_derived_series(v, None, tmp_path, "NM", affine_lps=np.eye(4))
    r, _, h = read_nm_recon(f[0])
    step = float(h.RealWorldValueMappingSequence[0].RealWorldValueSlope)
    assert np.abs(r - v).max() <= step / 2 * (1 + 1e-9)
    assert r.max() == pytest.approx(65535.49, rel=1e-6)


def test_nifti_has_the_same_geometry_as_the_dicom(derived, tmp_path):
    import nibabel as nib

    vol, aff, _ = read_nm_recon(derived["files"][0])
    p = write_nifti(vol, aff, tmp_path / "recon.nii.gz")
    img = nib.load(p)
    np.testing.assert_allclose(img.affine, lps_to_ras(aff), atol=1e-4)
    np.testing.assert_allclose(np.asarray(img.dataobj), vol.astype(np.float32))


def test_dcm2niix_agrees_with_our_geometry(derived, tmp_path):
    import subprocess

    import nibabel as nib

    exe = need("dcm2niix")
    subprocess.run([exe, "-o", str(tmp_path), "-f", "out", "-z", "n", str(derived["files"][0].parent)], capture_output=True, check=True)
    img = nib.load(tmp_path / "out.nii")
    n = np.asarray(img.dataobj).astype(float).squeeze()
    ours, aff, _ = read_nm_recon(derived["files"][0])
    idx = np.stack(np.meshgrid(*[np.arange(s) for s in n.shape], indexing="ij"), -1).reshape(-1, 3)
    world = img.affine @ np.c_[idx, np.ones(len(idx))].T
    mine = np.linalg.inv(lps_to_ras(aff)) @ world
    assert np.abs(mine[:3] - np.rint(mine[:3])).max() < 1e-3  # voxel centres coincide
    oi = np.rint(mine[:3]).astype(int)
    assert np.corrcoef(ours[oi[0], oi[1], oi[2]], n[idx[:, 0], idx[:, 1], idx[:, 2]])[0, 1] > 0.999999


def test_psf_needs_radial_positions(study):
    nm = read_nm_projections(study.nm_file)
    nm.radii_mm = None
    with pytest.raises(InvalidValueError, match="RadialPosition"):
        SPECTProjector.from_nm(nm, None, LEHR)


def test_read_rejects_reconstructions_and_other_modalities(derived, study):
    with pytest.raises(DicomError, match="TOMO projections"):
        read_nm_projections(derived["files"][0])
    with pytest.raises(DicomError, match="SOPClassUID"):
        read_nm_projections(sorted(study.ct_folder.glob("*.dcm"))[0])


@pytest.mark.parametrize("name", ["chrH31.dcm", "chrRuss.dcm", "chrGreek.dcm", "chrFrenMulti.dcm", "chrX1.dcm"])
def test_patient_module_with_pydicom_charset_files_is_copied_verbatim(name, derived, tmp_path):
    import pydicom
    from pydicom.data import get_charset_files

    src_ds = pydicom.dcmread(get_charset_files(name)[0])
    src = DicomSource(src_ds, [(str(src_ds.SOPClassUID), str(src_ds.SOPInstanceUID), str(src_ds.SeriesInstanceUID))])
    files = write_derived_series(derived["rec"], src, tmp_path, "NM", Derivation("charset"), affine_lps=derived["nm"].affine)
    assert dciodvfy_errors(files[0]) == []
    out = pydicom.dcmread(files[0])
    assert out.SpecificCharacterSet == src_ds.SpecificCharacterSet
    assert str(out.PatientName) == str(src_ds.PatientName)
    assert out.StudyInstanceUID == src_ds.StudyInstanceUID


def test_series_time_is_fixed_per_series_even_across_a_clock_tick(monkeypatch):
    from monai_diffrecon.io import dicom_write as dw

    ticks = iter(range(100))
    monkeypatch.setattr(dw, "_now", lambda: ("20260101", f"{next(ticks):06d}"))
    dw._series_now.cache_clear()
    a, b, c = dw._series_now("1.2.3"), dw._series_now("1.2.3"), dw._series_now("1.2.4")
    dw._series_now.cache_clear()
    assert a == b and a != c
