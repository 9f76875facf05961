"""Diff-Unfolding's bundle (``bundles/mri_multicoil_unfolding``) through MONAI's ConfigWorkflow with tiny random
networks: one training iteration of ``train.json`` (clean-image cohort + ESPIRiT maps → random operators), inference
on generated k-space (DICOM / NIfTI / PNG out), the ``monai.bundle`` command line, and the bundle's configured sampler
(σ_y, CG iterations) on an acquisition normalised like the workflow does, with ESPIRiT maps. The network/sampler-level
checks (closed form at identity blocks, operator swap with birdcage maps, trainer gradients) are in
``tests/networks/test_unfolding.py``."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pydicom
import pytest
import torch

from monai_diffrecon.bundles import BUNDLES_DIR, run_bundle
from monai_diffrecon.data.mri_sim import mr_phantom, write_mri_dataset
from tests.conftest import case_dirs

from ..io.dicomtools import dciodvfy_errors

NAME = "mri_multicoil_unfolding"
ROOT = BUNDLES_DIR / NAME
TINY = {"network_def#size": "tiny"}
SMALL = {"center_lines": 12, "calib_size": 12, "progress": False, **TINY}


def _tiny_network():
    from monai_diffrecon.diffusion import make_scheduler
    from monai_diffrecon.networks import unfolded_denoiser

    return unfolded_denoiser(make_scheduler().alphas_cumprod, channels=2, num_unroll=3, size="tiny")


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    torch.manual_seed(0)
    p = tmp_path_factory.mktemp("w") / "tiny.pt"
    torch.save(_tiny_network().state_dict(), p)
    return str(p), hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def kspace_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("kspace")
    g = torch.Generator().manual_seed(0)
    write_mri_dataset(d, [(f"phantom{i}", mr_phantom(48, g)) for i in range(2)], "test", coils=4, acceleration=4, center_lines=12,
                      noise_sigma=0.01, seed=1)
    return d


def test_train_config_one_iteration_and_weights_fit_inference(tmp_path):
    out = tmp_path / "train"
    res = run_bundle(NAME, "train", output_dir=str(out), n_slices=2, size=32, max_iterations=1, batch_size=2, progress=False,
                     **TINY, **{"batches#center_lines": [8, 6]})
    assert res["iteration"] == 1 and np.isfinite(res["loss"])
    clean = torch.load(out / "mri_clean.pt", weights_only=True)
    maps = torch.load(out / "mri_train.pt", weights_only=True)["maps"]
    assert clean["images"].shape == (2, 1, 32, 32) and clean["images"].is_complex() and maps.shape[:1] == (2,)
    # the trained weights load into inference.json's network (same architecture ids in both configs)
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_meta(str(ROOT / "configs" / "metadata.json"))
    parser.read_config(str(ROOT / "configs" / "inference.json"))
    parser.update({"bundle_root": str(ROOT), "model_path": str(out / "model.pt"), "model_sha256": hashlib.sha256((out / "model.pt").read_bytes()).hexdigest(),
                   **TINY})
    net = parser.get_parsed_content("network")
    assert not net.training and float(net.log_rho.exp().min()) > 0


def test_inference_writes_dicom_nifti_png(kspace_dir, tiny_weights, tmp_path):
    path, sha = tiny_weights
    out = tmp_path / "out"
    metrics = run_bundle(NAME, input_dir=str(kspace_dir), output_dir=str(out), model_path=path, model_sha256=sha, num_steps=2, num_samples=2,
                         **SMALL)
    assert len(metrics) == 2 and all(m["nfe"] == 4 for m in metrics)  # 2 samples × 2 steps, one slice per file
    assert all(np.isfinite(m["ours_psnr"]) and "zero_filled_psnr" in m for m in metrics)
    case = case_dirs(out)[0]
    assert {"dicom", "recon.nii.gz", "std.nii.gz", "zero_filled.nii.gz", "recon.png", "metrics.json"} <= {p.name for p in case.iterdir()}
    f = next(next((case / "dicom").iterdir()).iterdir())
    assert dciodvfy_errors(f) == []
    ds = pydicom.dcmread(f)
    assert ds.Modality == "MR" and ds.ImageType[0] == "DERIVED" and sha in ds.DerivationDescription
    assert "Diff-Unfolding" in ds.DerivationDescription
    import nibabel as nib

    assert nib.load(case / "recon.nii.gz").shape[:2] == (48, 48)
    assert json.loads((out / "summary.json").read_text())["n_cases"] == 2


def test_monai_bundle_cli_overrides_num_steps(kspace_dir, tiny_weights, tmp_path):
    path, sha = tiny_weights
    out = tmp_path / "cli"
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(ROOT / "configs/inference.json"),
           "--meta_file", str(ROOT / "configs/metadata.json"), "--bundle_root", str(ROOT), "--input_dir", str(kspace_dir),
           "--output_dir", str(out), "--model_path", path, "--model_sha256", sha, "--network_def#size", "tiny", "--num_steps", "1",
           "--center_lines", "12", "--calib_size", "12", "--progress", "False"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    first, second = case_dirs(out)
    assert json.loads((first / "metrics.json").read_text())["nfe"] == 1
    assert (second / "recon.png").is_file()


def test_bundle_sampler_swaps_operators_and_stays_data_consistent(tiny_weights):
    """The bundle's configured inferer (σ_y, CG iterations) with ESPIRiT maps (not unitary) on k-space normalised as
    the workflow does: another mask gives another reconstruction, and the acquired lines are fitted to the noise."""
    from monai.bundle import ConfigParser

    from monai_diffrecon.data.mri_sim import simulate_multicoil
    from monai_diffrecon.modalities.mri import acs_scale
    from monai_diffrecon.physics import MultiCoilMRI, equispaced_mask, estimate_coil_maps, random_lines_mask

    path, sha = tiny_weights
    parser = ConfigParser()
    parser.read_meta(str(ROOT / "configs" / "metadata.json"))
    parser.read_config(str(ROOT / "configs" / "inference.json"))
    parser.update({"bundle_root": str(ROOT), "model_path": path, "model_sha256": sha, "num_steps": 3, **TINY})
    inferer = parser.get_parsed_content("inferer")
    sigma = 0.01
    g = torch.Generator().manual_seed(3)
    smp = simulate_multicoil(mr_phantom(48, g)[None], 4, 4.0, 12, "random", 0.0, g)
    full = smp.kspace_full
    maps = estimate_coil_maps(full, calib_size=12).to(torch.complex64)
    outs = []
    for mask in (random_lines_mask(48, 4, 12, generator=g), equispaced_mask(48, 6, 12)):
        noise = torch.complex(torch.randn(full.shape, generator=g), torch.randn(full.shape, generator=g))
        y = mask * (full + sigma * noise)
        c = acs_scale(y, maps, mask)
        A = MultiCoilMRI(maps, mask)
        out = inferer(y / c, A, generator=torch.Generator().manual_seed(0), progress=False)
        assert out.nfe == 3 and out.mean.shape == (1, 1, 48, 48) and out.mean.is_complex()
        r = mask * (A(out.mean) - y / c)
        rms = float(r.abs().pow(2).sum() / (2 * (mask.expand_as(r) > 0).sum())) ** 0.5  # per real component
        assert rms < 2 * sigma / c, (rms, sigma / c)
        outs.append(out.mean * c)
    assert (outs[0] - outs[1]).abs().max() > 1e-3 * outs[0].abs().max()
