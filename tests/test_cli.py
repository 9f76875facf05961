"""The ``diffrecon`` CLI: help with examples, exit codes, list/verify/simulate/bench, and cohort runs (single process,
``--keep-going`` partial runs, and two torchrun ranks writing every study exactly once with the single-process result)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from monai_diffrecon.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_PARTIAL, main
from monai_diffrecon.cohort import shard
from monai_diffrecon.data.spect_study import simulate_spect_study
from tests.conftest import case_dirs, spect_tiny_weights


def test_help_lists_examples_and_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and "exit codes" in out and "simulate" in out and "torchrun" in out


def test_bad_input_and_bad_options_exit_2_and_write_nothing(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["run", "spect_cardiac_diffusion", "--input", str(tmp_path / "missing"), "--output", str(out), "--quiet"]) == EXIT_BAD_INPUT
    assert "DicomError" in capsys.readouterr().err and not out.exists()
    assert main(["run", "spect_cardiac_diffusion", "--input", str(tmp_path), "--output", str(out), "--device", "cuda:0"]) == EXIT_BAD_INPUT
    assert main(["run", "spect_cardiac_diffusion", "--input", str(tmp_path), "--output", str(out), "--set", "novalue"]) == EXIT_BAD_INPUT
    bad_list = tmp_path / "list.json"
    bad_list.write_text(json.dumps(["nope/"]))
    assert main(["run", "spect_cardiac_diffusion", "--input", str(bad_list), "--output", str(out)]) == EXIT_BAD_INPUT
    assert "entry 0" in capsys.readouterr().err and not out.exists()


def test_list_shows_measured_headline_numbers(capsys):
    assert main(["list"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "spect_cardiac_diffusion" in out and "heart_psnr_db_dose_5pct" in out


def test_bench_runs_the_contract_checks(capsys):
    from monai_diffrecon.physics import testing

    names = list(testing.OPERATORS)[:2]
    old = testing.OPERATORS
    testing.OPERATORS = {k: old[k] for k in names}  # two operators keep the test short; `diffrecon bench` runs all
    try:
        assert main(["bench"]) == EXIT_OK
    finally:
        testing.OPERATORS = old
    out = capsys.readouterr().out
    assert "PASS" in out and all(n in out for n in names)


@pytest.mark.parametrize("kind, expect", [("natural", {"blurred.png", "noisy.png", "lowres.png", "truth.png", "kernel.png", "kernel.npy"}),
                                          ("satellite", {"cloudy.tif", "sar.tif", "clear.tif", "preview.png"}),
                                          ("spect", {"truth.npy"}), ("mri", None)])
def test_simulate_writes_readable_examples(kind, expect, tmp_path, capsys):
    out = tmp_path / kind
    assert main(["simulate", kind, "--output", str(out), "--n", "1", "--quiet"]) == EXIT_OK
    case = Path(capsys.readouterr().out.split()[0])
    if kind == "mri":
        import h5py

        with h5py.File(case, "r") as f:
            assert f["kspace"].dtype.kind == "c" and "reconstruction_rss" in f
        return
    assert expect <= {p.name for p in case.iterdir()}
    if kind == "spect":
        from monai_diffrecon.workflows.spect import find_study

        nm, ct = find_study(case)
        assert nm.is_file() and ct is not None
    if kind == "natural":
        from monai_diffrecon.workflows.natural import read_png

        assert read_png(case / "lowres.png").shape[-1] * 4 == read_png(case / "truth.png").shape[-1] == read_png(case / "noisy.png").shape[-1]
    if kind == "satellite":
        import tifffile

        assert tifffile.imread(case / "cloudy.tif").shape == (4, 128, 128)


def test_shards_cover_every_index_once():
    for n, w in ((7, 2), (3, 4), (10, 3)):
        got = sorted(i for r in range(w) for i in shard(n, r, w))
        assert got == list(range(n))


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """Two tiny SPECT/CT studies, a JSON list with a third, broken entry, and tiny random weights."""
    root = tmp_path_factory.mktemp("cohort")
    dirs = []
    for i in range(2):
        st = simulate_spect_study(root / f"s{i}", seed=10 + i, size=32, voxel_mm=12.0, views=16, total_counts=2e5)
        dirs.append(str(st.nm_file.parent.parent))
    broken = root / "broken"
    broken.mkdir()
    (broken / "x.dcm").write_bytes(b"not dicom")
    w, sha = spect_tiny_weights(root / "tiny.pt")
    sets = ["--set", f"model_path={w}", "--set", f"model_sha256={sha}",
            "--set", "network_def#size=tiny", "--set", "inferer#init_iterations=1", "--steps", "1", "--quiet"]
    (root / "good.json").write_text(json.dumps(dirs))
    (root / "mixed.json").write_text(json.dumps([dirs[0], "broken", dirs[1]]))
    return root, dirs, sets


def _recon(case: Path) -> np.ndarray:
    import nibabel as nib

    return np.asarray(nib.load(case / "recon.nii.gz").dataobj)


def test_cohort_keep_going_is_partial(cohort, capsys):
    root, dirs, sets = cohort
    out = root / "out_mixed"
    assert main(["run", "spect_cardiac_diffusion", "--input", str(root / "mixed.json"), "--output", str(out), "--json", "--keep-going", *sets]) == EXIT_PARTIAL
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ok"] == 2 and [f["case"] for f in summary["failed"]] == ["broken"] and "DicomError" in summary["failed"][0]["error"]
    assert [c["input"] for c in summary["cases"]] == [dirs[0], str(root / "broken"), dirs[1]]
    good0, bad, good2 = case_dirs(out)
    assert (good0 / "recon.nii.gz").is_file() and (good2 / "recon.nii.gz").is_file()
    assert not bad.exists()
    assert json.loads(capsys.readouterr().out)["ok"] == 2
    assert main(["run", "spect_cardiac_diffusion", "--input", str(root / "mixed.json"), "--output", str(root / "o2"), *sets]) == EXIT_BAD_INPUT


def test_cohort_under_torchrun_matches_single_process(cohort):
    torchrun = Path(sys.executable).parent / "torchrun"
    if not torchrun.exists():
        pytest.skip("torchrun not installed next to the interpreter")
    root, dirs, sets = cohort
    single = root / "out_single"
    assert main(["run", "spect_cardiac_diffusion", "--input", str(root / "good.json"), "--output", str(single), *sets]) == EXIT_OK
    dist = root / "out_dist"
    env = dict(os.environ, OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1")
    r = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "monai_diffrecon.cli", "run", "spect_cardiac_diffusion",
                        "--input", str(root / "good.json"), "--output", str(dist), *sets], capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads((dist / "summary.json").read_text())
    assert summary["world_size"] == 2 and [c["input"] for c in summary["cases"]] == dirs and [c["rank"] for c in summary["cases"]] == [0, 1]
    assert [c.name for c in case_dirs(dist)] == [c.name for c in case_dirs(single)] == [Path(d).name for d in dirs]
    for d, s in zip(case_dirs(dist), case_dirs(single)):
        np.testing.assert_array_equal(_recon(d), _recon(s))
