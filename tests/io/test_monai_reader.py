"""NMReconReader: our NM RECON outputs (and vendor-style NM RECON files) read back in MONAI with activity values and
the right affine; SimpleITK and dcm2niix place the voxels where we do (neither applies the Real World Value Mapping).
"""

from __future__ import annotations

import shutil
import subprocess
import warnings

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from monai_diffrecon.errors import DicomError
from monai_diffrecon.io import Derivation, NMReconReader, lps_to_ras, write_nm_recon

from .dicomtools import need

SHAPE = (5, 4, 3)  # (X, Y, Z): every axis a different length, so a swapped axis cannot pass
CORNERS = np.array([[i, j, k, 1.0] for i in (0, SHAPE[0] - 1) for j in (0, SHAPE[1] - 1) for k in (0, SHAPE[2] - 1)]).T


def _oblique_affine_lps() -> np.ndarray:
    """Rotated, anisotropic (2, 3, 4.5 mm) grid: index (i, j, k) → LPS mm."""
    a = np.eye(4)
    a[:3, :3] = Rotation.from_euler("xyz", [10, -20, 30], degrees=True).as_matrix() @ np.diag([2.0, 3.0, 4.5])
    a[:3, 3] = [-10.0, 20.0, 30.0]
    return a


def _load(path, **kwargs):
    from monai.transforms import LoadImage

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MONAI's optional-codec notices
        return LoadImage(image_only=True, **kwargs)([str(p) for p in path] if isinstance(path, list) else str(path))


def _quantisation_ok(got, want, step) -> bool:
    """Within half a quantisation step, plus float32 rounding of the returned values."""
    return np.abs(np.asarray(got, np.float64) - want).max() <= step / 2 * (1 + 1e-9) + np.abs(want).max() * 2.0**-23


@pytest.fixture(scope="module", params=["uint16", "int16"])
def recon(request, tmp_path_factory):
    """A tiny NM RECON file written by write_nm_recon (int16: negative values, as in a posterior-std series)."""
    import pydicom

    vol = np.random.default_rng(3).uniform(0.0, 1000.0, SHAPE)
    if request.param == "int16":
        vol -= 300.0
    aff = _oblique_affine_lps()
    f = write_nm_recon(vol, aff, None, tmp_path_factory.mktemp("recon"), Derivation("test"))[0]
    step = float(pydicom.dcmread(f).RealWorldValueMappingSequence[0].RealWorldValueSlope)
    return {"file": f, "vol": vol, "affine_lps": aff, "step": step}


def test_loadimage_returns_activity_and_the_ras_affine(recon):
    img = _load(recon["file"], reader=NMReconReader())
    assert tuple(img.shape) == SHAPE and str(img.dtype) == "torch.float32"
    assert _quantisation_ok(img.numpy(), recon["vol"], recon["step"])
    err = (img.affine.numpy() - lps_to_ras(recon["affine_lps"])) @ CORNERS
    assert np.abs(err).max() <= 1e-3  # world coordinates of the 8 corner voxels, mm
    m = img.meta
    assert m["space"] == "RAS" and tuple(m["spatial_shape"]) == SHAPE and np.isnan(m["original_channel_dim"])
    np.testing.assert_allclose(m["original_affine"], img.affine.numpy())
    np.testing.assert_allclose(m["spacing"], [2.0, 3.0, 4.5], atol=1e-9)
    assert m["units"] == "{counts}" and m["modality"] == "NM" and m["series_instance_uid"]


def test_series_folder_dotted_name_loadimaged_lps_and_channels(recon, tmp_path):
    from monai.transforms import LoadImaged

    ref = _load(recon["file"], reader=NMReconReader())
    folder = tmp_path / "series"
    folder.mkdir()
    shutil.copy(recon["file"], folder / "IM_00001.dcm")
    (folder / "manifest.json").write_text("{}")  # non-DICOM files in a series folder are ignored
    (folder / "README").write_text("not DICOM")
    by_name = _load(folder, reader="monai_diffrecon.io.NMReconReader")  # MONAI locates a dotted class path
    assert np.array_equal(by_name.numpy(), ref.numpy()) and np.allclose(by_name.affine, ref.affine)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = LoadImaged("img", reader=NMReconReader(affine_lps_to_ras=False))({"img": str(recon["file"])})
    assert d["img"].meta["space"] == "LPS"
    assert np.abs((d["img"].affine.numpy() - recon["affine_lps"]) @ CORNERS).max() <= 1e-3
    both = _load([recon["file"], folder], reader=NMReconReader())
    assert tuple(both.shape) == (2, *SHAPE) and both.meta["original_channel_dim"] == 0
    (folder / "IM_00002.dcm").write_bytes(recon["file"].read_bytes())
    with pytest.raises(DicomError, match="holds 2 DICOM files"):
        NMReconReader().read(folder)


def test_simpleitk_agrees_on_geometry_and_ignores_the_value_mapping(recon):
    import SimpleITK as sitk

    ours = _load(recon["file"], reader=NMReconReader(affine_lps_to_ras=False))
    a = ours.affine.numpy()
    img = sitk.ReadImage(str(recon["file"]))
    spacing = np.linalg.norm(a[:3, :3], axis=0)
    assert img.GetSize() == SHAPE
    np.testing.assert_allclose(img.GetOrigin(), a[:3, 3], atol=1e-4)
    np.testing.assert_allclose(img.GetSpacing(), spacing, atol=1e-6)
    np.testing.assert_allclose(np.reshape(img.GetDirection(), (3, 3)), a[:3, :3] / spacing, atol=1e-6)
    stored = sitk.GetArrayFromImage(img).transpose(2, 1, 0).astype(np.float64)  # SimpleITK arrays are (Z, Y, X)
    # SimpleITK 2.5 returns stored integers (the RWVM is ignored): ours = stored · slope, voxel for voxel
    assert not np.allclose(stored, ours.numpy(), atol=recon["step"])
    np.testing.assert_allclose(stored * recon["step"], ours.numpy(), rtol=1e-6, atol=1e-6)


def test_dcm2niix_places_every_voxel_where_we_do(recon, tmp_path):
    import nibabel as nib

    exe = need("dcm2niix")
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(recon["file"], src)
    cmd = [exe, "-o", str(tmp_path), "-f", "out", "-z", "n", str(src)]
    subprocess.run(cmd, capture_output=True, check=True, timeout=120)
    nii = nib.load(tmp_path / "out.nii")
    n = np.asarray(nii.dataobj, dtype=np.float64).squeeze()  # raw values; scl_slope applied below
    ours = _load(recon["file"], reader=NMReconReader())
    idx = np.stack(np.meshgrid(*[np.arange(s) for s in n.shape], indexing="ij"), -1).reshape(-1, 3)
    mine = np.linalg.inv(ours.affine.numpy()) @ nii.affine @ np.c_[idx, np.ones(len(idx))].T
    assert np.abs(mine[:3] - np.rint(mine[:3])).max() < 1e-3  # voxel centres coincide (dcm2niix flips the rows)
    oi = np.rint(mine[:3]).astype(int)
    got = ours.numpy().astype(np.float64)[oi[0], oi[1], oi[2]]
    slope, inter = float(nii.header["scl_slope"]), float(nii.header["scl_inter"])
    if not np.isfinite(slope) or slope == 0:  # NIfTI: scl_slope 0 or NaN means no scaling
        slope, inter = 1.0, 0.0
    theirs = n[idx[:, 0], idx[:, 1], idx[:, 2]] * slope + inter
    if not np.allclose(theirs, got, atol=recon["step"]):  # dcm2niix v1.0.20220720: NM RWVM ignored, stored values
        np.testing.assert_allclose(theirs * recon["step"], got, rtol=1e-6, atol=1e-6)


def test_plain_monai_loadimage_gets_the_units_wrong(recon):
    """Why the reader exists: MONAI's own DICOM readers ignore the RWVM (and PydicomReader also misses the NM
    geometry in the Detector Information Sequence and returns an identity affine)."""
    plain = _load(recon["file"])
    assert abs(float(plain.abs().max()) - np.abs(recon["vol"]).max()) > 100 * recon["step"]
    assert float(plain.abs().max()) == pytest.approx(np.abs(recon["vol"]).max() / recon["step"], abs=1)


# ---------------------------------------------------------------------------------------------------------------
# Vendor-style NM RECON TOMO: multi-frame NM Image Storage with the geometry in DetectorInformationSequence[0]


def _vendor_file(path, stored, iop, ipp, pixel_spacing, spacing=None, thickness=None, rwvm=None, rescale=None,
                 mutate=None):
    """Write ``stored`` (frames, rows, cols) uint16 as a vendor-style NM RECON TOMO file (no top-level IPP/IOP)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    nm = "1.2.840.10008.5.1.4.1.1.20"
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.TransferSyntaxUID = nm, ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.SOPClassUID, ds.Modality = nm, "NM"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "RECON TOMO", "EMISSION"]
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = generate_uid(), generate_uid(), generate_uid()
    z, rows, cols = stored.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.Rows, ds.Columns = 1, "MONOCHROME2", rows, cols
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.NumberOfFrames, ds.NumberOfSlices = z, z
    ds.FrameIncrementPointer = [0x00540080]
    ds.SliceVector = list(range(1, z + 1))
    ds.PixelSpacing = [f"{v:g}" for v in pixel_spacing]
    if spacing is not None:
        ds.SpacingBetweenSlices = f"{spacing:g}"
    if thickness is not None:
        ds.SliceThickness = f"{thickness:g}"
    det = Dataset()
    det.ImageOrientationPatient = [f"{v:.10g}" for v in iop]
    det.ImagePositionPatient = [f"{v:.10g}" for v in ipp]
    ds.DetectorInformationSequence = Sequence([det])
    if rwvm is not None:
        rw = Dataset()
        rw.RealWorldValueFirstValueMapped, rw.RealWorldValueLastValueMapped = 0, 65535
        rw.RealWorldValueSlope, rw.RealWorldValueIntercept = rwvm
        rw.LUTExplanation, rw.LUTLabel = "activity concentration", "BQML"
        unit = Dataset()
        unit.CodeValue, unit.CodingSchemeDesignator, unit.CodeMeaning = "Bq/ml", "UCUM", "Becquerels/milliliter"
        rw.MeasurementUnitsCodeSequence = Sequence([unit])
        ds.RealWorldValueMappingSequence = Sequence([rw])
    if rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = (f"{v:g}" for v in rescale)
    ds.PixelData = np.ascontiguousarray(stored, dtype="<u2").tobytes()
    if mutate is not None:
        mutate(ds)
    ds.save_as(path, enforce_file_format=True)
    return path


_OBLIQUE_IOP = [*Rotation.from_euler("z", 25, degrees=True).as_matrix()[:, 0],
                *Rotation.from_euler("z", 25, degrees=True).as_matrix()[:, 1]]
VENDOR_CASES = {
    # name: (IOP, SpacingBetweenSlices, SliceThickness, RWVM (slope, intercept), Rescale (slope, intercept))
    "oblique, RWVM with intercept": (_OBLIQUE_IOP, 3.3, None, (0.25, -12.5), None),
    "GE-style negative spacing (stacked in front)": ([1, 0, 0, 0, 1, 0], -4.42, 4.42, (0.5, 0.0), None),
    "SliceThickness only, Rescale only": ([1, 0, 0, 0, 0, -1], None, 2.5, None, (0.125, 3.0)),
    "RWVM wins over Rescale": ([0, 1, 0, 0, 0, -1], 2.0, None, (2.0, 1.0), (7.0, 0.0)),
}


@pytest.mark.parametrize("case", list(VENDOR_CASES))
def test_vendor_style_nm_recon_reads_back(case, tmp_path):
    iop, spacing, thickness, rwvm, rescale = VENDOR_CASES[case]
    stored = np.random.default_rng(1).integers(0, 4000, (SHAPE[2], SHAPE[1], SHAPE[0])).astype(np.uint16)
    ipp, ps = np.array([-120.5, 80.25, 301.0]), (3.5, 2.25)  # PixelSpacing = (between rows, between columns)
    f = _vendor_file(tmp_path / "nm.dcm", stored, iop, ipp, ps, spacing, thickness, rwvm, rescale)
    img = _load(f, reader=NMReconReader())
    slope, inter = rwvm if rwvm is not None else rescale
    assert tuple(img.shape) == SHAPE
    np.testing.assert_allclose(img.numpy(), stored.transpose(2, 1, 0) * slope + inter, rtol=1e-6)
    # the standard's formula, written out: p + i·Δcol·r + j·Δrow·c + k·s·(r × c)  (PS3.3 C.8.4.15)
    r, c, s = np.asarray(iop[:3], float), np.asarray(iop[3:], float), spacing if spacing is not None else thickness
    want = np.array([ipp + i * ps[1] * r + j * ps[0] * c + k * s * np.cross(r, c) for i, j, k, _ in CORNERS.T])
    got = (lps_to_ras(img.affine.numpy()) @ CORNERS)[:3].T  # back to LPS
    assert np.abs(got - want).max() <= 1e-3
    assert img.meta["units"] == ("Bq/ml" if rwvm is not None else "")


def _drop_iop(ds):
    del ds.DetectorInformationSequence[0].ImageOrientationPatient


def _set(keyword, value, item=None):
    def mutate(ds):
        setattr(ds if item is None else ds[item][0], keyword, value)

    return mutate


BAD = {
    "no ImageOrientationPatient anywhere": (_drop_iop, "ImageOrientationPatient"),
    "sheared orientation": (
        _set("ImageOrientationPatient", ["1", "0", "0", "0.5", "1", "0"], "DetectorInformationSequence"),
        "ImageOrientationPatient",
    ),
    "projections, not a reconstruction": (_set("ImageType", ["ORIGINAL", "PRIMARY", "TOMO", "EMISSION"]), "ImageType"),
    "CT, not NM": (_set("SOPClassUID", "1.2.840.10008.5.1.4.1.1.2"), "SOPClassUID"),
    "zero slice spacing": (_set("SpacingBetweenSlices", "0"), "SpacingBetweenSlices"),
    "frames out of slice order": (_set("SliceVector", [3, 2, 1]), "SliceVector"),
    "gated frames": (_set("FrameIncrementPointer", [0x00540070, 0x00540080]), "FrameIncrementPointer"),
    "zero RWVM slope": (_set("RealWorldValueSlope", 0.0, "RealWorldValueMappingSequence"), "RealWorldValueSlope"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_a_dicom_error_naming_file_and_tag(case, tmp_path):
    from monai.transforms import LoadImage

    mutate, tag = BAD[case]
    stored = np.ones((3, 4, 5), np.uint16)
    f = _vendor_file(tmp_path / "bad.dcm", stored, [1, 0, 0, 0, 1, 0], [0, 0, 0], (2, 2), 2.0, None, (1.0, 0.0),
                     mutate=mutate)
    with pytest.raises(DicomError) as e:  # reader given at call time: MONAI does not fall back to its own readers
        LoadImage(image_only=True)(str(f), reader=NMReconReader())
    assert e.value.tag == tag and e.value.path == str(f)


def test_truncated_file_and_empty_folder_are_dicom_errors(recon, tmp_path):
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(recon["file"].read_bytes()[:-7])
    with pytest.raises(DicomError, match="cut.dcm"):
        NMReconReader().read(cut)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "manifest.json").write_text("{}")
    with pytest.raises(DicomError, match="holds 0 DICOM files"):
        NMReconReader().read(tmp_path / "empty")
