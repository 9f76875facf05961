"""MRI bundles end to end on tiny generated k-space (random tiny networks: this checks the wiring, the outputs and the
bad-input handling, not the quality — benchmarks/results/mri.md has the measured quality)."""

from __future__ import annotations

import hashlib
import json

import h5py
import numpy as np
import pydicom
import pytest
import torch

from monai_diffrecon.bundles import run_bundle
from monai_diffrecon.data.mri_sim import mr_phantom, write_mri_dataset
from monai_diffrecon.errors import KSpaceError
from monai_diffrecon.networks import diffusion_unet
from tests.conftest import case_dirs

from ..io.dicomtools import dciodvfy_errors

SMALL = {"center_lines": 12, "calib_size": 12, "progress": False, "network_def#size": "tiny"}


@pytest.fixture(scope="module")
def kspace_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("kspace")
    g = torch.Generator().manual_seed(0)
    imgs = [(f"phantom{i}", mr_phantom(48, g)) for i in range(2)]
    write_mri_dataset(d, imgs, "test", coils=4, acceleration=4, center_lines=12, noise_sigma=0.01, seed=1)
    return d


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    torch.manual_seed(0)
    p = tmp_path_factory.mktemp("w") / "tiny.pt"
    torch.save(diffusion_unet(2, 2, size="tiny").state_dict(), p)
    return str(p), hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.mark.parametrize("bundle, extra, nfe", [("mri_multicoil_msm", {"num_steps": 2, "loops": 2, "mask_acceleration": 4.0}, 4),
                                                ("mri_multicoil_selfdb", {"num_steps": 2}, 2)])
def test_bundle_inference_writes_dicom_nifti_png_per_file(bundle, extra, nfe, kspace_dir, tiny_weights, tmp_path):
    path, sha = tiny_weights
    out = tmp_path / "out"
    metrics = run_bundle(bundle, input_dir=str(kspace_dir), output_dir=str(out), model_path=path, model_sha256=sha, num_samples=2,
                         **SMALL, **extra)
    assert len(metrics) == 2 and all(m["nfe"] == 2 * nfe for m in metrics)  # 2 samples × NFE, one slice per file
    assert all("ours_psnr" in m and "zero_filled_psnr" in m for m in metrics)
    cases = case_dirs(out)
    assert sorted(c.name for c in cases) == sorted(p.stem for p in kspace_dir.glob("*.h5"))  # one folder per k-space file
    assert sorted(p.name for p in out.iterdir()) == sorted([c.name for c in cases] + ["manifest.json", "summary.json"])
    case = cases[0]
    assert {"dicom", "recon.nii.gz", "std.nii.gz", "zero_filled.nii.gz", "recon.png", "metrics.json"} <= {p.name for p in case.iterdir()}
    series = next((case / "dicom").iterdir())
    f = next(series.iterdir())
    assert dciodvfy_errors(f) == []
    ds = pydicom.dcmread(f)
    assert ds.Modality == "MR" and ds.ImageType[0] == "DERIVED" and sha in ds.DerivationDescription
    import nibabel as nib

    assert nib.load(case / "recon.nii.gz").shape[:2] == (48, 48)


def test_retrospective_acceleration_needs_fully_sampled_data(kspace_dir, tiny_weights, tmp_path):
    path, sha = tiny_weights
    with pytest.raises(KSpaceError, match="fully sampled"):
        run_bundle("mri_multicoil_selfdb", input_dir=str(kspace_dir), output_dir=str(tmp_path / "o"), model_path=path, model_sha256=sha,
                   acceleration=8.0, num_steps=1, **SMALL)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("corruption, match", [("nan", "NaN"), ("empty_mask", "no k-space line|samples no"), ("no_acs", "fully sampled centre"),
                                               ("real", "complex")])
def test_bad_kspace_is_a_typed_error_and_nothing_is_written(corruption, match, kspace_dir, tiny_weights, tmp_path):
    path, sha = tiny_weights
    src = next(kspace_dir.glob("*.h5"))
    bad = tmp_path / "in" / "bad.h5"
    bad.parent.mkdir()
    with h5py.File(src, "r") as f:
        k, m = f["kspace"][()], f["mask"][()]
    if corruption == "nan":
        k[0, 0, 3, 3] = np.nan
    elif corruption == "empty_mask":
        m[:] = 0
        k[:] = 0
    elif corruption == "no_acs":
        m[:] = 0
        m[::4] = 1
        k = k * m
    with h5py.File(bad, "w") as f:
        f.create_dataset("kspace", data=k.real.astype(np.float32) if corruption == "real" else k)
        f.create_dataset("mask", data=m)
    with pytest.raises(KSpaceError, match=match):
        run_bundle("mri_multicoil_msm", input_dir=str(bad.parent), output_dir=str(tmp_path / "o"), model_path=path, model_sha256=sha,
                   num_steps=1, loops=1, **SMALL)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("bundle", ["mri_multicoil_msm", "mri_multicoil_selfdb"])
def test_train_config_one_iteration(bundle, tmp_path):
    out = tmp_path / "train"
    res = run_bundle(bundle, "train", output_dir=str(out), n_slices=2, size=32, max_iterations=1, batch_size=2, progress=False,
                     **{"network_def#size": "tiny"})
    assert res["iteration"] == 1 and np.isfinite(res["loss"])
    assert (out / "model.pt").is_file()
    cohort = torch.load(out / "mri_train.pt", weights_only=True)
    assert set(cohort) == {"kspace", "mask", "maps", "meta"}  # the training set holds no image and no full k-space
    assert json.dumps(cohort["meta"])


def test_evaluate_config_on_held_out_simulated_files(tiny_weights, tmp_path):
    path, sha = tiny_weights
    out = tmp_path / "eval"
    metrics = run_bundle("mri_multicoil_selfdb", "evaluate", output_dir=str(out), model_path=path, model_sha256=sha, n_slices=2, size=32,
                         num_steps=1, progress=False, **{"network_def#size": "tiny"})
    assert len(metrics) == 2 and all("ours_psnr" in m for m in metrics)
    assert json.loads((out / "cases" / "summary.json").read_text())["n_cases"] == 2
    assert len(list((out / "kspace").glob("test_*.h5"))) == 2


def test_multislice_volume_becomes_one_derived_mr_series(tiny_weights, tmp_path):
    """A multi-slice k-space file (fastMRI stores a volume's slices in one file) → one case, one derived MR series with
    one instance per slice in order, one NIfTI volume, per-volume metrics."""
    path, sha = tiny_weights
    g = torch.Generator().manual_seed(3)
    vol = torch.stack([mr_phantom(48, g) for _ in range(3)])
    src = tmp_path / "in"
    write_mri_dataset(src, [("volume", vol)], "test", coils=4, acceleration=4, center_lines=12, noise_sigma=0.01, seed=2)
    out = tmp_path / "out"
    metrics = run_bundle("mri_multicoil_selfdb", input_dir=str(src), output_dir=str(out), model_path=path, model_sha256=sha,
                         num_steps=1, **SMALL)
    assert len(metrics) == 1 and metrics[0]["slices"] == 3 and metrics[0]["nfe"] == 3
    (case,) = case_dirs(out)
    (series,) = list((case / "dicom").iterdir())
    files = sorted(series.iterdir())
    assert len(files) == 3
    dss = sorted((pydicom.dcmread(f) for f in files), key=lambda d: int(d.InstanceNumber))
    assert len({d.SeriesInstanceUID for d in dss}) == 1 and len({d.SOPInstanceUID for d in dss}) == 3
    assert [int(d.InstanceNumber) for d in dss] == [1, 2, 3]
    z = [float(d.ImagePositionPatient[2]) for d in dss]
    assert len(set(z)) == 3 and ((np.diff(z) > 0).all() or (np.diff(z) < 0).all())
    assert all(dciodvfy_errors(f) == [] for f in files)
    import nibabel as nib

    assert nib.load(case / "recon.nii.gz").shape[:3] == (48, 48, 3)
