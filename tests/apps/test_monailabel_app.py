"""The MONAI Label app (apps/monailabel): its infer task returns the bundle's float reconstruction, equal to a direct
bundle run. In the project environment the task runs against a stand-in of MONAI Label's interface (monailabel does not
import beside pydicom 3); the server test starts the real server from its own environment (.venv-monailabel, built by
``make monailabel-env``) on 127.0.0.1, posts the study to ``/infer/<bundle>`` over HTTP and compares the returned NIfTI.
Without that environment the server test is skipped, unless ``DIFFRECON_REQUIRE_MONAILABEL=1`` (set by ``.ci/run`` and
``make monailabel-test``), where it fails."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from monai_diffrecon.bundles import run_bundle
from tests.conftest import spect_tiny_weights

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "apps" / "monailabel"
ML_ENV = ROOT / ".venv-monailabel"
DIFFRECON = Path(sys.executable).parent / "diffrecon"
REQUIRE_ML = os.environ.get("DIFFRECON_REQUIRE_MONAILABEL", "") not in ("", "0")


@pytest.fixture(scope="module")
def app_lib():
    """The app's ``lib.infer`` imported as MONAI Label imports it (``apps/monailabel`` on sys.path), then unloaded."""
    saved = {m: sys.modules.pop(m) for m in [m for m in sys.modules if m == "lib" or m.startswith("lib.")]}
    sys.path.insert(0, str(APP))
    try:
        import lib.infer

        yield lib.infer
    finally:
        sys.path.remove(str(APP))
        for m in [m for m in sys.modules if m == "lib" or m.startswith("lib.")]:
            del sys.modules[m]
        sys.modules.update(saved)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, study, app_lib):

    w, sha = spect_tiny_weights(tmp_path_factory.mktemp("w") / "tiny.pt")
    sets = {"model_path": str(w), "model_sha256": sha, "network_def#size": "tiny",
            "inferer#init_iterations": 1}
    ref = tmp_path_factory.mktemp("ref") / "out"
    run_bundle("spect_cardiac_diffusion", input_dir=str(study.nm_file.parent.parent), output_dir=str(ref), num_steps=1, seed=3,
               progress=False, **sets)
    return sets, np.asarray(nib.load(app_lib.case_dir(ref) / "recon.nii.gz").dataobj)


def test_case_dir_reads_both_output_layouts(app_lib, tmp_path):
    """One folder per case (``summary.json`` names it) and the older single-study layout (the study straight in OUT)."""
    flat = tmp_path / "flat"
    flat.mkdir()
    assert app_lib.case_dir(flat) == flat
    (flat / "summary.json").write_text(json.dumps({"n_cases": 2, "nfe": {"mean": 1, "std": 0}}))  # old multi-case summary
    assert app_lib.case_dir(flat) == flat
    per_case = tmp_path / "per_case"
    per_case.mkdir()
    summary = {"n_cases": 1, "cases": [{"case": "study", "input": "/x/study", "output": "study", "status": "ok",
                                        "metrics": {"nfe": 1}}]}
    (per_case / "summary.json").write_text(json.dumps(summary))
    assert app_lib.case_dir(per_case) == per_case / "study"
    assert app_lib.case_metrics(summary) == [{"nfe": 1}]
    assert app_lib.case_metrics({"bundle": "b", "cases": [{"nfe": 1}]}) == [{"nfe": 1}]  # old --json: the metrics themselves


def test_infer_task_returns_the_float_reconstruction(tiny, study, app_lib):
    if not DIFFRECON.exists():
        pytest.skip("diffrecon entry point not installed next to the interpreter")
    sets, ref = tiny
    task = app_lib.ReconstructionInfer("spect_cardiac_diffusion", "SPECT", str(DIFFRECON))
    assert task.is_valid() and task.info()["type"] == "others" and task.info()["labels"] == []
    path, result = task({"image": str(study.nm_file.parent.parent), "steps": 1, "seed": 3, "set": sets})
    img = nib.load(path)
    assert img.get_data_dtype() == np.float32  # a reconstruction, not a uint8 label map
    np.testing.assert_array_equal(np.asarray(img.dataobj), ref)
    assert result["dicom"] and Path(result["dicom"]).is_dir() and result["metrics"][0]["nfe"] == 1
    assert Path(path).is_relative_to(result["work_dir"])
    shutil.rmtree(result["work_dir"])
    with pytest.raises(RuntimeError, match="DicomError"):
        task({"image": str(study.nm_file.parent.parent / "nope"), "steps": 1, "set": sets})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_monailabel_server_round_trip(tiny, study, tmp_path):
    if not (ML_ENV / "bin" / "monailabel").exists():
        msg = f"MONAI Label's own environment is not installed ({ML_ENV}/bin/monailabel missing; run make monailabel-env)"
        if REQUIRE_ML:
            pytest.fail(msg + " and DIFFRECON_REQUIRE_MONAILABEL is set")
        pytest.skip(msg)
    sets, ref = tiny
    port = _free_port()
    studies = tmp_path / "studies"
    studies.mkdir()
    log = open(tmp_path / "server.log", "w")
    env = dict(os.environ, PYTHONPATH="", MONAI_LABEL_INFER_CONCURRENCY="-1", MONAILABEL_PYEXE=str(ML_ENV / "bin" / "python"),
               PATH=f"{ML_ENV / 'bin'}:{os.environ['PATH']}")
    server = subprocess.Popen([str(ML_ENV / "bin" / "monailabel"), "start_server", "--app", str(APP), "--studies", str(studies),
                               "--host", "127.0.0.1", "--port", str(port), "--conf", "diffrecon_bin", str(DIFFRECON),
                               "--conf", "bundles", "spect_cardiac_diffusion"], stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                info = json.loads(urllib.request.urlopen(f"{base}/info/", timeout=5).read())
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
                time.sleep(1)
        else:
            pytest.fail("server did not start: " + (tmp_path / "server.log").read_text()[-3000:])
        assert info["models"]["spect_cardiac_diffusion"]["type"] == "others"
        params = json.dumps({"steps": 1, "seed": 3, "set": sets})
        q = urllib.parse.urlencode({"image": str(study.nm_file.parent.parent), "output": "image"})
        req = urllib.request.Request(f"{base}/infer/spect_cardiac_diffusion?{q}", data=urllib.parse.urlencode({"params": params}).encode(),
                                     method="POST")
        body = urllib.request.urlopen(req, timeout=600).read()
        got = tmp_path / "got.nii.gz"
        got.write_bytes(body)
        np.testing.assert_array_equal(np.asarray(nib.load(got).dataobj), ref)
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
