"""The SPECT bundle's clinical read-out (issue 23, item 4): the polar map as a DICOM Secondary Capture in the study."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from monai_diffrecon.errors import OutputError, ShapeError
from monai_diffrecon.io.dicom_write import SECONDARY_CAPTURE_STORAGE, Derivation, DicomSource, write_secondary_capture

from .io.dicomtools import dciodvfy_errors


def _rgb(rows=40, cols=60):
    r = np.arange(rows * cols * 3, dtype=np.int64).reshape(rows, cols, 3) % 256
    return r.astype(np.uint8)


def test_secondary_capture_is_valid_lands_in_the_source_study_and_round_trips_its_pixels(study, tmp_path):
    hdr = pydicom.dcmread(study.nm_file, stop_before_pixels=True)
    src = DicomSource.from_datasets([hdr], study.nm_file)
    img = _rgb(41, 63)  # odd sizes: the pixel data must still be padded to an even length
    (f,) = write_secondary_capture(img, src, tmp_path, Derivation("polar map", {"seed": 0}))
    assert dciodvfy_errors(f) == []
    ds = pydicom.dcmread(f)
    assert ds.SOPClassUID == SECONDARY_CAPTURE_STORAGE and ds.StudyInstanceUID == hdr.StudyInstanceUID
    assert ds.PatientID == hdr.PatientID and ds.SeriesInstanceUID != hdr.SeriesInstanceUID
    assert ds.SourceImageSequence[0].ReferencedSOPInstanceUID == hdr.SOPInstanceUID
    assert np.array_equal(ds.pixel_array, img)
    (again,) = write_secondary_capture(img, src, tmp_path, Derivation("polar map", {"seed": 0}))
    assert again == f and pydicom.dcmread(again).SOPInstanceUID == ds.SOPInstanceUID  # idempotent re-run


def test_secondary_capture_rejects_bad_pictures(tmp_path):
    with pytest.raises(ShapeError):
        write_secondary_capture(np.zeros((4, 4)), None, tmp_path, Derivation("x"))
    with pytest.raises(OutputError):
        write_secondary_capture(np.full((4, 4, 3), 300.0), None, tmp_path, Derivation("x"))
    (f,) = write_secondary_capture(np.full((4, 4, 3), 7.0), None, tmp_path, Derivation("x"))  # no source: a new study
    assert dciodvfy_errors(f) == [] and pydicom.dcmread(f).pixel_array.max() == 7


def test_read_polar_maps_scores_every_volume_on_the_same_segments_and_the_picture_has_them_side_by_side():
    from monai_diffrecon.data.spect_phantom import cardiac_phantom
    from monai_diffrecon.metrics.polar_map import aha17_labels, bullseye_rgb, polar_map, read_polar_maps, summed_score

    ph = cardiac_phantom((64,) * 3, 6.0, defect=True)
    lab = aha17_labels(ph["myocardium"])
    read = read_polar_maps({"a": ph["activity"], "b": 2.0 * ph["activity"]}, lab)
    pm = polar_map(ph["activity"], lab)
    assert [s["percent"] for s in read["a"]["segments"]] == [round(float(v), 2) for v in pm]  # scale-free: a == b
    assert read["a"] == read["b"] and read["a"]["summed_score"] == summed_score(pm) >= 6
    one, two = bullseye_rgb({"a": pm}), bullseye_rgb({"a": pm, "b": pm})
    assert one.dtype == np.uint8 and one.shape[2] == 3 and two.shape[1] > 1.5 * one.shape[1] - 100


def test_the_read_out_brings_a_flipped_grid_into_the_lps_frame_first():
    """The same patient stored with the X axis reversed (negative affine column) reads the same polar map."""
    import torch

    from monai_diffrecon.data.spect_phantom import cardiac_phantom
    from monai_diffrecon.physics.blur import Blur, gaussian_kernel
    from monai_diffrecon.workflows.spect import SPECTReconstruction, _lps_frame

    ph = cardiac_phantom((64,) * 3, 6.0, defect=True, generator=torch.Generator().manual_seed(2))
    vol = Blur(gaussian_kernel((1.0,) * 3, size=(7,) * 3, dtype=torch.float64))(ph["activity"].double()[None, None])[0, 0]
    aff = np.diag([6.0, 6.0, 6.0, 1.0])
    flipped = aff.copy()
    flipped[0, 0] = -6.0
    assert _lps_frame(aff)[0] == (False, False, False) and _lps_frame(flipped)[0] == (True, False, False)
    assert _lps_frame(aff[[1, 0, 2, 3]])[2] is False  # permuted axes: read as stored, flagged
    wf = SPECTReconstruction.__new__(SPECTReconstruction)  # readout() uses no constructor state
    a, _ = wf.readout({"mean": vol, "osem": None, "truth": None, "affine": aff})
    b, _ = wf.readout({"mean": torch.flip(vol, [0]), "osem": None, "truth": None, "affine": flipped})
    assert a is not None and b is not None and b["geometry"]["flipped_axes"] == [True, False, False]
    assert a["maps"] == b["maps"]
    none, why = wf.readout({"mean": torch.zeros(16, 16, 16), "osem": None, "truth": None, "affine": aff})
    assert none is None and "ours" in why
