"""The README's main job (`diffrecon demo`: the SPECT bundle on the built-in DICOM study) and the classical
`diffrecon demo-osem`, both writing through a staged folder."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from monai_diffrecon import __version__
from monai_diffrecon.cli import main
from monai_diffrecon.errors import OutputError
from monai_diffrecon.io import staged_directory
from tests.conftest import case_dirs


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert __version__ in capsys.readouterr().out
    assert main([]) == 0
    assert "demo" in capsys.readouterr().out


def test_bundle_demo_quick_writes_dicom_nifti_png(tmp_path, capsys):
    """`diffrecon demo` with the shipped weights (tiny study and 2 steps: this checks the wiring, not the quality)."""
    import nibabel as nib
    import pydicom

    root = tmp_path / "demo"
    assert main(["demo", "--output", str(root), "--quick", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert '"ours_psnr_heart"' in printed and "wrote" in printed
    assert {"study", "summary.json", "manifest.json"} <= {p.name for p in root.iterdir()}
    assert case_dirs(root) == [root / "study"]  # one case, named after the built-in study folder
    out = root / "study"
    names = {p.name for p in out.iterdir()}
    assert {"dicom", "recon.nii.gz", "std.nii.gz", "osem.nii.gz", "recon.png", "metrics.json", "polar_map.png",
            "polar_map.json"} <= names
    series = sorted((out / "dicom").iterdir())
    assert sorted(s.name.split("_")[1] for s in series) == ["POLARMAP", "RECON", "STD"]  # + the polar map (issue 23)
    recon = next(s for s in series if s.name.split("_")[1] == "RECON")
    ds = pydicom.dcmread(next(recon.iterdir()))
    assert ds.Modality == "NM" and ds.ImageType[0] == "DERIVED"
    assert nib.load(out / "recon.nii.gz").shape == (32, 32, 32)
    m = json.loads((out / "metrics.json").read_text())
    assert m["dose_fraction"] == 0.1 and m["num_samples"] == 2 and m["nfe"] == 4
    assert (out / "recon.png").stat().st_size > 20_000
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_osem_demo_quick_writes_outputs(tmp_path):
    import nibabel as nib

    out = tmp_path / "demo"
    assert main(["demo-osem", "--output", str(out), "--quick", "--no-progress"]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"recon_osem_acpsf.nii.gz", "recon_osem_noac.nii.gz", "truth.nii.gz", "projections.nii.gz", "demo.png", "metrics.json"} <= names
    img = nib.load(out / "recon_osem_acpsf.nii.gz")
    assert img.shape == (32, 32, 32)
    assert abs(img.affine[0, 0]) == pytest.approx(12.0)
    m = json.loads((out / "metrics.json").read_text())
    assert m["nrmse_body_acpsf"] < m["nrmse_body_noac"]
    assert m["recovery_myo_acpsf"] > m["recovery_myo_noac"]
    assert (out / "demo.png").stat().st_size > 20_000
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging leftovers


def test_console_script_entry_point_runs():
    r = subprocess.run([sys.executable, "-m", "monai_diffrecon.cli", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and __version__ in r.stdout


def test_staged_directory_leaves_nothing_on_failure_and_replaces_atomically(tmp_path):
    final = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with staged_directory(final) as d:
            (d / "half.txt").write_text("x")
            raise RuntimeError("boom")
    assert not final.exists()
    assert list(tmp_path.iterdir()) == []
    with staged_directory(final) as d:
        (d / "a.txt").write_text("1")
    with staged_directory(final, overwrite=True) as d:  # our own earlier output (its manifest.json) is replaced
        (d / "b.txt").write_text("2")
    assert sorted(p.name for p in final.iterdir()) == ["b.txt", "manifest.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    with pytest.raises(OutputError):
        with staged_directory(final, overwrite=False):
            pass
    (final / "user.txt").write_text("not ours")  # a changed folder is no longer ours: refused even with overwrite
    with pytest.raises(OutputError):
        with staged_directory(final, overwrite=True):
            pass
    assert sorted(p.name for p in final.iterdir()) == ["b.txt", "manifest.json", "user.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
