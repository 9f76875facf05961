"""``benchmarks/gpu_check.py``: its ``--smoke`` mode (CPU vs CPU, tiny; about 25 s here) runs three bundles — one per
output format (TIFF, PNG, NIfTI) — twice with the same seed and finds them identical, and runs the library cases against
their CPU reference; without CUDA the GPU mode says so and exits 0."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_smoke_mode_runs_bundles_twice_on_the_cpu_and_finds_them_identical(gpu_check, tmp_path):
    out = tmp_path / "gpu_check.md"
    bundles = ["satellite_cloud_removal", "natural_reld", "mri_multicoil_selfdb"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the library cases' CPU reference was recorded with one thread (SPECT sums differ with two)
    try:
        rc = gpu_check.main(["--smoke", "--bundles", *bundles, "--out", str(out), "--work", str(tmp_path / "work")])
    finally:
        torch.set_num_threads(threads)
    text = out.read_text()
    assert rc == 0, text
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith(("| bundle", "| case"))]
    assert [r.split(" | ")[0][2:] for r in rows[:len(bundles)]] == bundles
    for r in rows[:len(bundles)]:
        cells = [c.strip() for c in r.strip("|").split("|")]
        assert cells[3] == "0" and cells[5] == "∞", r  # max |Δ| = 0, PSNR = ∞
    bundle_rows = rows[:len(bundles)]
    assert {r.split(" | ")[2] for r in bundle_rows} == {"clear_pred.tif", "restored.png", "recon.nii.gz"}
    case_rows = rows[len(bundles):]
    assert len(case_rows) >= 15 and not any("error" in r for r in case_rows)
    for r in case_rows:  # rounding may differ from the one-thread reference only in the last bits
        cells = [c.strip() for c in r.strip("|").split("|")]
        assert float(cells[4]) < 1e-5 and cells[6] == "none", r


def test_gpu_mode_without_cuda_exits_cleanly(gpu_check, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main(["--out", str(tmp_path / "x.md")]) == 0
    assert "no CUDA device" in capsys.readouterr().out and not (tmp_path / "x.md").exists()


def test_compare_metrics(gpu_check):
    import numpy as np

    ref = np.array([[0.0, 2.0], [1.0, 1.0]])
    m = gpu_check.compare(ref + np.array([[0.0, 0.02], [0.0, 0.0]]), ref)
    assert m["max_abs"] == pytest.approx(0.02) and m["rel_l2"] == pytest.approx(0.02 / 6**0.5)
    assert m["psnr_db"] == pytest.approx(10 * np.log10(4 / (0.02**2 / 4)))
