"""Every bundle in ``bundles/``: metadata passes MONAI's schema, the network matches ``network_data_format``, the
shipped weights match their recorded sha256, and ``ConfigWorkflow`` runs inference and one training iteration
with tiny overrides (the CI smoke tests the issue asks for)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
import torch

from monai_diffrecon.bundles import BUNDLES_DIR, bundle_path, list_bundles, net_forward_args, run_bundle
from monai_diffrecon.errors import InvalidValueError
from tests.conftest import case_dirs, spect_tiny_weights

from ..io.dicomtools import dciodvfy_errors

SCHEMA = Path(__file__).with_name("meta_schema_20240725.json")  # verbatim copy of MONAI's published schema
SCHEMA_MD5 = "a9865bb93fde816eeb34b5690b1898e4"
BUNDLES = list_bundles()


def _sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_bundles_are_found_and_outside_paths_need_trust(tmp_path):
    assert "spect_cardiac_diffusion" in BUNDLES
    fake = tmp_path / "evil"
    (fake / "configs").mkdir(parents=True)
    (fake / "configs" / "metadata.json").write_text("{}")
    with pytest.raises(InvalidValueError, match="trust_config"):
        bundle_path(fake)
    assert bundle_path(fake, trust_config=True) == fake.resolve()
    with pytest.raises(InvalidValueError, match="not found"):
        bundle_path("no_such_bundle")


@pytest.mark.parametrize("name", BUNDLES)
def test_metadata_passes_monai_schema(name, tmp_path):
    from monai.bundle import verify_metadata

    verify_metadata(meta_file=str(BUNDLES_DIR / name / "configs" / "metadata.json"), filepath=str(SCHEMA), hash_val=SCHEMA_MD5)
    broken = json.loads((BUNDLES_DIR / name / "configs" / "metadata.json").read_text())
    del broken["authors"]
    (tmp_path / "m.json").write_text(json.dumps(broken))
    with pytest.raises(ValueError, match="authors"):
        verify_metadata(meta_file=str(tmp_path / "m.json"), filepath=str(SCHEMA), hash_val=SCHEMA_MD5)


@pytest.mark.parametrize("name", BUNDLES)
def test_network_matches_network_data_format(name):
    from monai.bundle import verify_net_in_out

    root = BUNDLES_DIR / name / "configs"
    extra = net_forward_args(json.loads((root / "metadata.json").read_text()))
    verify_net_in_out(net_id="network_def", meta_file=str(root / "metadata.json"), config_file=str(root / "inference.json"),
                      device="cpu", extra_forward_args=extra)


@pytest.mark.parametrize("name", BUNDLES)
def test_bundle_layout_weights_and_targets(name):
    root = BUNDLES_DIR / name
    for f in ("configs/metadata.json", "configs/inference.json", "configs/train.json", "configs/evaluate.json",
              "configs/multi_gpu_train.json", "docs/README.md", "LICENSE", "models/model.pt"):
        assert (root / f).is_file(), f"{name}: missing {f}"
    meta = json.loads((root / "configs/metadata.json").read_text())
    model = root / "models" / "model.pt"
    assert model.stat().st_size <= 25 * 2**20
    assert meta["model_sha256"] == _sha256(model), "models/model.pt does not match metadata model_sha256"
    sd = torch.load(model, map_location="cpu", weights_only=True)
    assert all(torch.isfinite(v).all() for v in sd.values() if v.is_floating_point())
    readme = (root / "docs/README.md").read_text()
    for heading in ("# Model Overview", "## Data", "## Training configuration", "## Performance", "## MONAI Bundle Commands",
                    "## References", "# License"):
        assert heading in readme, f"{name}: docs/README.md lacks {heading!r}"
    for cfg in (root / "configs").glob("*.json"):  # every _target_ fully qualified (importable module path)
        text = cfg.read_text()
        for tgt in __import__("re").findall(r'"_target_":\s*"([^"]+)"', text):
            assert "." in tgt, f"{cfg.name}: _target_ {tgt!r} is not fully qualified"


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    """A random tiny network in place of the shipped weights: the smoke tests exercise the configs, not the model."""
    return spect_tiny_weights(tmp_path_factory.mktemp("w") / "tiny.pt")


def _targets(node):
    if isinstance(node, dict):
        if isinstance(node.get("_target_"), str):
            yield node["_target_"]
        for v in node.values():
            yield from _targets(v)
    elif isinstance(node, list):
        for v in node:
            yield from _targets(v)


@pytest.mark.parametrize("name", BUNDLES)
def test_config_targets_name_no_module(name):
    """A ``_target_`` that is also an importable module path resolves to the *module* under Python 3.12's
    ``pydoc.locate`` (seen on the GPU machine: ``monai_diffrecon.networks.diffusion_unet`` was the module
    ``diffusion_unet.py``, not the function), so every target must be a callable that no module shadows."""
    import importlib.util
    import pydoc

    for f in sorted((bundle_path(name) / "configs").glob("*.json")):
        for target in _targets(json.loads(f.read_text())):
            if target.startswith("$") or target.startswith("@"):
                continue
            try:
                spec = importlib.util.find_spec(target)
            except ModuleNotFoundError:
                spec = None
            assert spec is None, f"{f.name}: _target_ {target} is also a module"
            obj = pydoc.locate(target)
            assert callable(obj), f"{f.name}: _target_ {target} does not resolve to a callable"


def test_spect_inference_config_workflow_dicom_in_dicom_out(study, tiny_weights, tmp_path):
    p, sha = tiny_weights
    out = tmp_path / "out"
    metrics = run_bundle("spect_cardiac_diffusion", input_dir=str(study.nm_file.parent.parent), output_dir=str(out),
                         model_path=str(p), model_sha256=sha, **{"network_def#size": "tiny"}, num_steps=2, num_samples=2,
                         progress=False, **{"inferer#init_iterations": 2})
    assert metrics[0]["nfe"] == 4
    (out,) = case_dirs(out)
    names = {q.name for q in out.iterdir()}
    assert {"dicom", "recon.nii.gz", "std.nii.gz", "osem.nii.gz", "recon.png", "metrics.json"} <= names
    recon = sorted((out / "dicom").iterdir())[0]
    assert dciodvfy_errors(recon / "IM_00001.dcm") == []
    assert pydicom.dcmread(recon / "IM_00001.dcm").ImageType[0] == "DERIVED"
    # the clinical read-out (issue 23, item 4), on the automatic geometry (the tiny random network's volume has no
    # plausible ventricle, the OSEM has)
    assert {"polar_map.png", "polar_map.json"} <= names and "polar_map_skipped" not in metrics[0]
    (sc,) = (out / "dicom").glob("SC_POLARMAP_*/IM_00001.dcm")
    assert dciodvfy_errors(sc) == [] and pydicom.dcmread(sc).SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
    read = json.loads((out / "polar_map.json").read_text())
    assert set(read["segments_of"]) == {"ours", "OSEM"} and read["geometry"]["from"] in ("ours", "OSEM")


def test_spect_inference_refuses_wrong_weights(study, tiny_weights, tmp_path):
    p, _ = tiny_weights
    with pytest.raises(Exception, match="sha256"):
        run_bundle("spect_cardiac_diffusion", input_dir=str(study.nm_file.parent.parent), output_dir=str(tmp_path / "o"),
                   model_path=str(p), model_sha256="0" * 64, **{"network_def#size": "tiny"}, num_steps=1, progress=False)
    assert not (tmp_path / "o").exists()


def test_spect_phantom_target_option_runs_with_its_own_weights_and_settings(study, tmp_path):
    """The v1 phantom-target network stays as a labelled second option (issue 23): ``--config
    inference_phantom_target`` reads it over inference.json with its own weights (sha256 checked), condition and
    sampler settings, and none of the default's dose-adaptive rules."""
    from monai_diffrecon.bundles import bundle_inferer

    smp = bundle_inferer("spect_cardiac_diffusion", config="inference_phantom_target")
    assert smp.neighbours == 1 and smp.z_context == () and not smp.ct_channel and smp.t_start == 300 and not smp.adaptive
    assert smp.prior.parameterization.prediction == "epsilon"
    out = tmp_path / "v1"
    metrics = run_bundle("spect_cardiac_diffusion", "inference_phantom_target", input_dir=str(study.nm_file.parent.parent),
                         output_dir=str(out), num_steps=1, progress=False, **{"inferer#init_iterations": 1})
    assert metrics[0]["nfe"] == 1 and (case_dirs(out)[0] / "recon.nii.gz").is_file()


def test_spect_monai_bundle_cli_runs_inference(study, tiny_weights, tmp_path):
    """The documented ``python -m monai.bundle run`` command line works on the same configs."""
    p, sha = tiny_weights
    root = BUNDLES_DIR / "spect_cardiac_diffusion"
    out = tmp_path / "cli"
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(root / "configs/inference.json"),
           "--meta_file", str(root / "configs/metadata.json"), "--bundle_root", str(root),
           "--input_dir", str(study.nm_file.parent.parent), "--output_dir", str(out), "--model_path", str(p),
           "--model_sha256", sha, "--network_def#size", "tiny", "--num_steps", "1", "--progress", "False",
           "--inferer#init_iterations", "1"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    (case,) = case_dirs(out)
    assert (case / "recon.nii.gz").is_file() and (case / "recon.png").is_file()


def test_spect_train_config_one_iteration(tmp_path):
    out = tmp_path / "train"
    run_bundle("spect_cardiac_diffusion", "train", output_dir=str(out), n_volumes=1, n_val_volumes=1, max_iterations=1,
               batch_size=2, progress=False, **{"network_def#size": "tiny", "cohort#size": 16, "cohort#voxel_mm": 24.0,
                                                "cohort#views": 8, "val_cohort#size": 16, "val_cohort#voxel_mm": 24.0,
                                                "val_cohort#views": 8, "validation#n_batches": 1})
    assert (out / "model.pt").is_file()
    assert json.loads((out / "validation.json").read_text())["validation_eps_mse"] > 0


def test_spect_evaluate_config_on_held_out_studies(tiny_weights, tmp_path):
    p, sha = tiny_weights
    out = tmp_path / "eval"
    metrics = run_bundle("spect_cardiac_diffusion", "evaluate", output_dir=str(out), model_path=str(p), model_sha256=sha,
                         n_studies=2, study_size=32, num_steps=1, progress=False,
                         **{"network_def#size": "tiny", "datalist#views": 16, "datalist#total_counts": 4e5, "inferer#init_iterations": 1})
    assert len(metrics) == 2 and all("ours_psnr_heart" in m and "osem_psnr_heart" in m for m in metrics)
    assert metrics[0]["dose_fraction"] == 0.05
    summary = json.loads((out / "cases" / "summary.json").read_text())
    assert summary["n_cases"] == 2 and set(summary["metrics"]["ours_psnr_heart"]) == {"mean", "std", "ci95"}
    assert "ours - osem: psnr_heart" in summary["metrics"]["paired_differences"]
    cases = case_dirs(out / "cases")
    assert len(cases) == 2 and all(c.is_dir() for c in cases)
    assert sorted(q.name for q in (out / "cases").iterdir()) == sorted([c.name for c in cases] + ["manifest.json", "summary.json"])


def test_cli_lists_and_verifies_bundles(capsys, tmp_path):
    from monai_diffrecon.cli import main

    assert main(["bundles"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in BUNDLES)
    assert main(["verify", "spect_cardiac_diffusion", "--schema", str(SCHEMA)]) == 0
    assert '"weights": "ok"' in capsys.readouterr().out
    assert main(["verify", "spect_cardiac_diffusion"]) == 0  # default: the schema copy shipped with the package
    assert '"metadata": "ok"' in capsys.readouterr().out
    missing = tmp_path / "no_schema.json"
    assert main(["verify", "spect_cardiac_diffusion", "--schema", str(missing)]) == 1  # no local schema: reported, not crashed
    assert "no such schema file" in capsys.readouterr().out and not missing.exists()
