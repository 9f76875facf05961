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
