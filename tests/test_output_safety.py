"""Users' files are sacred (issue 20, items 1, 6, 8): every way of pointing ``--output`` / ``output_dir`` at something
that is not ours is refused with a typed error and leaves every byte as it was — through the ``diffrecon`` CLI and
through ``python -m monai.bundle run``; ``kill -9`` during a run leaves nothing under the output name (and an earlier
output intact); one output layout for one study or many, files 0644; ``--json`` is one JSON document on stdout."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from monai_diffrecon.bundles import bundle_path
from monai_diffrecon.cli import EXIT_BAD_INPUT, EXIT_OK, main
from monai_diffrecon.errors import OutputError
from monai_diffrecon.io.staging import check_output, is_our_output, staged_directory
from monai_diffrecon.simulate import simulate

BUNDLE = "satellite_cloud_removal"  # the fastest bundle (one bridge step per scene)
DIFFRECON = Path(sys.executable).parent / "diffrecon"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def snapshot(*roots: Path) -> dict:
    """Every entry under ``roots`` (hidden ones included): path → sha256 of the bytes (``dir`` for folders)."""
    out = {}
    for root in roots:
        if root.is_file():
            out[str(root)] = hashlib.sha256(root.read_bytes()).hexdigest()
            continue
        for p in sorted(root.rglob("*")):
            out[str(p)] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    root = tmp_path_factory.mktemp("sat")
    simulate("satellite", root / "cases", n=2, progress=False)
    return root / "cases"


@pytest.fixture
def user(tmp_path):
    """A user's folder with notes, a study folder and a plain file."""
    d = tmp_path / "important"
    (d / "study").mkdir(parents=True)
    (d / "notes.txt").write_text("do not lose me")
    (d / "study" / "IM_0001.dcm").write_bytes(b"\0" * 132 + b"DICM" + os.urandom(64))
    (tmp_path / "report.pdf").write_bytes(os.urandom(100))
    return d


def refusals(tmp_path, cases, user):
    """(name, input, output, overwrite) for every case that must be refused."""
    inner = user / "study"
    return [
        ("non-empty folder", cases, user, False),
        ("foreign folder + overwrite", cases, user, True),
        ("existing file", cases, tmp_path / "report.pdf", False),
        ("existing file + overwrite", cases, tmp_path / "report.pdf", True),
        ("same path", user, user, True),
        ("output inside input", user, inner / "out", False),
        ("input inside output", inner, user, True),
        ("input inside an empty output", inner, tmp_path, False),
    ]


def test_check_output_rule(tmp_path, user):
    assert check_output(tmp_path / "new") == (tmp_path / "new").resolve()
    (tmp_path / "empty").mkdir()
    check_output(tmp_path / "empty")  # an empty folder is fine
    for name, inp, out, ow in refusals(tmp_path, tmp_path / "nowhere", user):
        with pytest.raises(OutputError, match=str(out.name)):
            check_output(out, [inp], ow)
    link = tmp_path / "link"
    link.symlink_to(user, target_is_directory=True)
    with pytest.raises(OutputError):
        check_output(link, [], True)  # a symlink is never replaced
    with pytest.raises(OutputError, match="is the input"):
        check_output(link, [user], True)  # the same folder through a symlink


def test_overwrite_replaces_only_an_unmodified_output_of_ours(tmp_path):
    out = tmp_path / "out"
    with staged_directory(out) as d:
        (d / "a.txt").write_text("1")
        (d / "sub").mkdir()
        (d / "sub" / "b.txt").write_text("2")
    assert is_our_output(out) and sorted(json.loads((out / "manifest.json").read_text())["files"]) == ["a.txt", "sub/b.txt"]
    with pytest.raises(OutputError, match="--overwrite"):
        with staged_directory(out):
            pass
    with staged_directory(out, overwrite=True) as d:
        (d / "c.txt").write_text("3")
    assert sorted(p.name for p in out.iterdir()) == ["c.txt", "manifest.json"]
    # a file the user added, or edited, makes it theirs: refused even with overwrite
    for i, change in enumerate((lambda o: (o / "mine.txt").write_text("x"), lambda o: (o / "c.txt").write_text("edited"))):
        out = tmp_path / f"out{i}"
        with staged_directory(out) as d:
            (d / "c.txt").write_text("3")
        change(out)
        before = snapshot(out)
        with pytest.raises(OutputError, match="not written by diffrecon"):
            with staged_directory(out, overwrite=True):
                pass
        assert snapshot(out) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging leftovers


def test_cli_refuses_every_unsafe_output_and_changes_nothing(tmp_path, cases, user, capsys):
    before = snapshot(tmp_path, cases)
    for name, inp, out, ow in refusals(tmp_path, cases, user):
        code = main(["run", BUNDLE, "--input", str(inp), "--output", str(out), "--quiet"] + (["--overwrite"] if ow else []))
        err = capsys.readouterr().err
        assert code == EXIT_BAD_INPUT, name
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("diffrecon: error: OutputError:") and "Traceback" not in err, (name, err)
        assert snapshot(tmp_path, cases) == before, name


def test_monai_bundle_run_refuses_every_unsafe_output_and_changes_nothing(tmp_path, cases, user):
    """The same rule holds when the bundle runs through MONAI's own CLI (the check lives in the workflow)."""
    root = bundle_path(BUNDLE)
    before = snapshot(tmp_path, cases)
    procs = []
    for name, inp, out, ow in refusals(tmp_path, cases, user)[::2] + [refusals(tmp_path, cases, user)[1]]:
        cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(root / "configs" / "inference.json"),
               "--bundle_root", str(root), "--input_dir", str(inp), "--output_dir", str(out), "--progress", "False"]
        procs.append((name, subprocess.Popen(cmd + (["--overwrite", "True"] if ow else []), stdout=subprocess.DEVNULL,
                                             stderr=subprocess.PIPE, text=True, env=ENV)))
    for name, proc in procs:
        err = proc.communicate(timeout=300)[1]
        assert proc.returncode != 0 and "OutputError" in err, (name, err[-2000:])
    assert snapshot(tmp_path, cases) == before


def test_one_layout_for_one_study_or_many_and_mode_0644(tmp_path, cases, capsys):
    for inp, out, expect in ((cases / "scene_001", tmp_path / "one", ["scene_001"]), (cases, tmp_path / "many", ["scene_000", "scene_001"])):
        assert main(["run", BUNDLE, "--input", str(inp), "--output", str(out), "--quiet"]) == EXIT_OK
        summary = json.loads((out / "summary.json").read_text())
        assert [c["output"] for c in summary["cases"]] == expect and summary["n_cases"] == summary["ok"] == len(expect)
        assert sorted(p.name for p in out.iterdir()) == sorted(expect + ["summary.json", "manifest.json"])
        for c in expect:
            assert {"clear_pred.tif", "preview.png", "metrics.json"} <= {p.name for p in (out / c).iterdir()}
        assert is_our_output(out)
        for p in [out, *out.rglob("*")]:
            assert (p.stat().st_mode & 0o777) == (0o755 if p.is_dir() else 0o644), p
    # --overwrite replaces our earlier output; without it the run is refused
    before = snapshot(tmp_path / "one")
    assert main(["run", BUNDLE, "--input", str(cases / "scene_001"), "--output", str(tmp_path / "one"), "--quiet"]) == EXIT_BAD_INPUT
    assert snapshot(tmp_path / "one") == before
    assert main(["run", BUNDLE, "--input", str(cases), "--output", str(tmp_path / "one"), "--quiet", "--overwrite"]) == EXIT_OK
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == ["manifest.json", "scene_000", "scene_001", "summary.json"]
    capsys.readouterr()


def test_json_is_one_document_on_stdout_and_quiet_is_quiet(tmp_path, cases):
    r = subprocess.run([str(DIFFRECON), "run", BUNDLE, "--input", str(cases), "--output", str(tmp_path / "o"), "--json"],
                       capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(r.stdout)  # the whole of stdout is one JSON document
    assert doc["bundle"] == BUNDLE and doc["n_cases"] == 2 and doc["cases"][0]["metrics"]["nfe"] == 1
    assert "INFO" in r.stderr  # the log went to stderr
    r = subprocess.run([str(DIFFRECON), "run", BUNDLE, "--input", str(cases), "--output", str(tmp_path / "q"), "--json", "--quiet"],
                       capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 0 and json.loads(r.stdout)["ok"] == 2
    assert "INFO" not in r.stderr and "%|" not in r.stderr, r.stderr[-2000:]  # no log lines, no progress bars


def _kill_during_run(cases, out, extra=()):
    proc = subprocess.Popen([str(DIFFRECON), "run", BUNDLE, "--input", str(cases), "--output", str(out), "--quiet", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:  # until the first case is complete inside the staging folder
        if any(out.parent.glob(f".{out.name}.partial-*/scene_000/metrics.json")):
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_kill_9_during_a_run_leaves_nothing_half_written(tmp_path, cases):
    before = snapshot(cases)
    _kill_during_run(cases, tmp_path / "out")
    assert not (tmp_path / "out").exists() and snapshot(cases) == before
    # an earlier output survives a killed --overwrite run byte for byte
    assert main(["run", BUNDLE, "--input", str(cases / "scene_000"), "--output", str(tmp_path / "prev"), "--quiet"]) == EXIT_OK
    prev = snapshot(tmp_path / "prev")
    _kill_during_run(cases, tmp_path / "prev", ["--overwrite"])
    assert snapshot(tmp_path / "prev") == prev and is_our_output(tmp_path / "prev")
