"""Crash safety of series writes (RELIABILITY T7) and the PHI canary (T13)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pydicom
import pytest

from monai_diffrecon.errors import DiffReconError
from monai_diffrecon.io import Derivation, read_ct_series, read_nm_projections, write_derived_series, write_nifti
from monai_diffrecon.io.dicom_write import StudyInfo, write_ct_series

WRITER = """
import sys, numpy as np
from monai_diffrecon.io import write_derived_series, Derivation
vol = np.random.default_rng(0).random((32, 32, 300))
print("ready", flush=True)
write_derived_series(vol, None, sys.argv[1], "MR", Derivation("crash test"), affine_lps=np.eye(4))
print("done", flush=True)
"""


def _visible_series(out):
    return [p for p in out.iterdir() if not p.name.startswith(".")] if out.exists() else []


def _partial_count(out):
    if not out.exists():
        return -1
    hidden = [p for p in out.iterdir() if p.name.startswith(".") and p.is_dir()]
    return max((len(list(h.glob("*.dcm"))) for h in hidden), default=-1)


def test_kill_9_never_leaves_a_visible_partial_series(tmp_path):
    """SIGKILL at chosen points of a 300-file series write (by files already written, and by time): a visible
    series is always complete."""
    mid_write = 0
    for i, trigger in enumerate([1, 50, 150, 280, 0.0, 3.0]):
        out = tmp_path / f"out{i}"
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(out)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        if isinstance(trigger, int):  # wait until the staged folder holds `trigger` files
            deadline = time.time() + 60
            while _partial_count(out) < trigger and proc.poll() is None and time.time() < deadline:
                time.sleep(0.002)
        else:
            time.sleep(trigger)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        visible = _visible_series(out)
        if _partial_count(out) >= 0 and not visible:
            mid_write += 1
        for series in visible:  # a series folder holds DICOM files only (no manifest): complete means all 300 of them
            files = sorted(series.iterdir())
            assert [p.name for p in files] == [f"IM_{k:05d}.dcm" for k in range(1, 301)]
            assert all(p.is_file() and pydicom.dcmread(p).pixel_array.shape == (32, 32) for p in files)
    assert mid_write >= 3  # the kills really landed inside writes


def test_phi_canary_never_reaches_logs_errors_or_sidecars(tmp_path, caplog):
    canary = ("CANARY^SECRET", "CANARY123", "19000101")
    study = StudyInfo(patient_name=canary[0], patient_id=canary[1], birth_date=canary[2])
    aff = np.diag([2.0, 2.0, 3.0, 1.0])
    files = write_ct_series(np.zeros((6, 6, 3)), aff, tmp_path / "ct", study, "1.2.3")
    logging.getLogger().setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    messages = []
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        ct = read_ct_series(files[0].parent)
        src = ct.meta["dicom_source"]
        out = write_derived_series(ct[0].numpy(), src, tmp_path / "out", "MR", Derivation("canary"), affine_lps=ct.meta["affine_lps"])
        nii = write_nifti(ct[0].numpy(), ct.meta["affine_lps"], tmp_path / "x.nii.gz")
        # corrupt inputs that carry the canary: the errors must not quote it
        bad = pydicom.dcmread(files[0])
        bad.PixelSpacing = [float("nan"), 1.0]
        bad.save_as(files[0])
        for call in (lambda: read_ct_series(files[0].parent), lambda: read_nm_projections(files[1])):
            try:
                call()
            except DiffReconError as e:
                messages.append(str(e))
        messages += [str(w.message) for w in ws]
    assert len(messages) >= 2
    text = "\n".join(messages + [r.getMessage() for r in caplog.records])
    written = sorted((tmp_path / "out").rglob("*"))
    assert out[0] in written and all(p.suffix == ".dcm" for p in written if p.is_file())  # the series folder: DICOM only
    text += "\n".join(str(p.relative_to(tmp_path)) for p in written)  # folder and file names are no sidecar either
    text += nii.read_bytes().decode("latin-1")
    for c in canary:
        assert c not in text
    # the derived DICOM itself keeps the patient module (that is where PHI belongs)
    assert pydicom.dcmread(out[0]).PatientName == canary[0]
