"""Security of configs, weights and patient data: bundles only from the project or a trusted path (tested in
tests/workflows/test_bundle_configs.py), weights sha256-verified and unpickled with ``weights_only=True`` only, a
malicious pickle is refused, and no patient identifier reaches logs, exceptions, NIfTI files or JSON sidecars."""

from __future__ import annotations

import gzip
import hashlib
import json
import pickle
import re
from pathlib import Path

import pydicom
import pytest

from monai_diffrecon.errors import DicomError, WeightsError
from tests.conftest import case_dirs, spect_tiny_weights

ROOT = Path(__file__).resolve().parents[1]
CANARY = {"PatientName": "CANARYZEBRA^QUOKKA", "PatientID": "CANARY7741ID", "PatientBirthDate": "19010203"}
NEEDLES = [b"CANARYZEBRA", b"QUOKKA", b"CANARY7741ID", b"19010203", b"1901-02-03"]


def test_every_torch_load_uses_weights_only():
    offenders = []
    for p in list((ROOT / "monai_diffrecon").rglob("*.py")) + list((ROOT / "benchmarks").rglob("*.py")) + list((ROOT / "apps").rglob("*.py")):
        for i, line in enumerate(p.read_text().splitlines(), 1):
            if re.search(r"\btorch\.load\(", line) and "weights_only=True" not in line:
                offenders.append(f"{p.relative_to(ROOT)}:{i}")
    assert not offenders, offenders


class _Evil:
    def __reduce__(self):
        return (Path.touch, (Path("/tmp/diffrecon_pwned"),))


def test_malicious_pickle_as_bundle_weights_is_refused(tmp_path):
    from monai_diffrecon.networks import diffusion_unet, load_verified

    bad = tmp_path / "model.pt"
    with open(bad, "wb") as f:
        pickle.dump({"w": _Evil()}, f)
    Path("/tmp/diffrecon_pwned").unlink(missing_ok=True)
    with pytest.raises(WeightsError, match="not a plain state dict"):
        load_verified(diffusion_unet(2, 1, size="tiny"), bad, hashlib.sha256(bad.read_bytes()).hexdigest())
    with pytest.raises(WeightsError, match="sha256"):
        load_verified(diffusion_unet(2, 1, size="tiny"), bad, "0" * 64)
    assert not Path("/tmp/diffrecon_pwned").exists()


LOGGING_CONF = """[loggers]
keys=root
[handlers]
keys=file,console
[formatters]
keys=f
[logger_root]
level=DEBUG
handlers=file,console
[handler_file]
class=FileHandler
level=DEBUG
formatter=f
args=('{log}',)
[handler_console]
class=StreamHandler
level=DEBUG
formatter=f
args=(sys.stderr,)
[formatter_f]
format=%(asctime)s %(name)s %(levelname)s %(message)s
"""


def _canary_study(tmp_path_factory):
    from monai_diffrecon.data.spect_study import simulate_spect_study

    st = simulate_spect_study(tmp_path_factory.mktemp("phi"), seed=5, size=32, voxel_mm=12.0, views=16, total_counts=2e5)
    root = st.nm_file.parent.parent
    for f in root.rglob("*.dcm"):
        ds = pydicom.dcmread(f)
        for k, v in CANARY.items():
            setattr(ds, k, v)
        ds.save_as(f)
    return root


def test_phi_canary_never_leaves_the_dicom(tmp_path_factory, tmp_path, capfd):

    study = _canary_study(tmp_path_factory)
    w, _ = spect_tiny_weights(tmp_path / "tiny.pt")
    import logging

    # earlier tests may have detached loggers from the root (MONAI's get_logger sets propagate=False with its own
    # handler): route every logger to the root handlers of the DEBUG config below for this test, then restore
    saved = {}
    for name in list(logging.root.manager.loggerDict):
        lg = logging.getLogger(name)
        if isinstance(lg, logging.Logger):
            saved[name] = (lg.disabled, lg.propagate)
            lg.disabled, lg.propagate = False, True
    try:
        _run_canary(study, w, tmp_path, capfd)
    finally:
        for name, (d, p) in saved.items():
            logging.getLogger(name).disabled, logging.getLogger(name).propagate = d, p


def _run_canary(study, w, tmp_path, capfd):
    from monai_diffrecon.bundles import run_bundle

    log = tmp_path / "debug.log"
    conf = tmp_path / "logging.conf"
    conf.write_text(LOGGING_CONF.format(log=log))
    out = tmp_path / "out"
    sets = {"model_path": str(w), "model_sha256": hashlib.sha256(w.read_bytes()).hexdigest(), "network_def#size": "tiny",
            "inferer#init_iterations": 1, "num_steps": 1, "num_samples": 2}
    run_bundle("spect_cardiac_diffusion", input_dir=str(study), output_dir=str(out), logging_file=str(conf), **sets)
    # input errors about the patient (one CT slice of another patient; then the whole CT) must not quote identifiers
    cts = [p for p in study.rglob("*.dcm") if pydicom.dcmread(p, stop_before_pixels=True).Modality == "CT"]
    errors = []
    for batch in (cts[:1], cts[1:]):
        for ct in batch:
            other = pydicom.dcmread(ct)
            other.PatientID = "CANARY7741IDX"
            other.save_as(ct)
        with pytest.raises(DicomError) as err:
            run_bundle("spect_cardiac_diffusion", input_dir=str(study), output_dir=str(tmp_path / "o2"), logging_file=str(conf), **sets)
        errors.append(str(err.value))
    assert "differs within the series" in errors[0] and "differ in PatientID" in errors[1]
    captured = capfd.readouterr()
    texts = {"stdout": captured.out.encode(), "stderr": captured.err.encode(), "debug log": log.read_bytes(), "exceptions": " ".join(errors).encode()}
    assert log.stat().st_size > 0
    for f in out.rglob("*"):
        if f.is_file() and f.suffix != ".dcm" and "dicom" not in f.parts:
            data = f.read_bytes()
            texts[str(f.relative_to(out))] = gzip.decompress(data) if f.name.endswith(".gz") else data
    assert any(k.endswith("recon.nii.gz") for k in texts) and any(k.endswith("metrics.json") for k in texts)
    assert "summary.json" in texts and "manifest.json" in texts  # the run's JSON sidecars at the output root
    hits = [(k, n.decode()) for k, v in texts.items() for n in NEEDLES if n in v]
    assert hits == []
    # the derived DICOM series itself carries the patient (it belongs to the study): the canary is there
    (case,) = case_dirs(out)
    dcm = next((case / "dicom").rglob("*.dcm"))
    assert str(pydicom.dcmread(dcm).PatientID) == CANARY["PatientID"]
    json.loads((case / "metrics.json").read_text())
