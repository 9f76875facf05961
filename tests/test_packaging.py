"""The package works when installed from its wheel, away from the source tree (issue 20, items 2 and 4): the built
wheel holds every code package, the 8 bundles and the shared configs; installed with ``--no-deps`` into a fresh
virtual environment (which borrows torch, MONAI … from the test environment through a ``.pth`` line, but not the
editable install of this checkout), ``diffrecon list`` shows the 8 bundles, ``diffrecon verify`` passes offline with
the shipped schema, a tiny ``diffrecon run`` works, and a ``diffrecon export``-ed archive runs through
``python -m monai.bundle run --bundle_root <unzipped>``."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from monai_diffrecon.bundles import export_bundle, list_bundles
from monai_diffrecon.errors import OutputError

ROOT = Path(__file__).resolve().parents[1]


def test_every_code_package_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "monai_diffrecon").rglob("__init__.py")}
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"  # a copy, so that setuptools' build/ folder can never carry stale files into the wheel
    top = {".git", "build", "outputs", "benchmarks", "tests", "docs", "apps"}
    shutil.copytree(ROOT, src, ignore=lambda d, names: [n for n in names if (Path(d) == ROOT and (n in top or n.startswith(".venv")))
                                                        or n == "__pycache__" or n.endswith(".egg-info")])
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(src), "-w", str(tmp / "dist")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    wheel = next((tmp / "dist").glob("monai_diffrecon-*.whl"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    sp = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True,
                             check=True).stdout.strip())
    (sp / "borrowed.pth").write_text("\n".join(site.getsitepackages()) + "\n")  # torch, MONAI, … — not the editable finder
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q", str(wheel)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    work = tmp / "elsewhere"  # far from the source tree
    work.mkdir()
    return {"wheel": wheel, "python": py, "bin": venv / "bin", "work": work,
            "env": {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)} | {"OMP_NUM_THREADS": "1"}}


def _run(env, *args, timeout=600):
    return subprocess.run([*args], cwd=env["work"], env=env["env"], capture_output=True, text=True, timeout=timeout)


def test_wheel_holds_the_bundles_and_shared_configs(wheel_env):
    names = zipfile.ZipFile(wheel_env["wheel"]).namelist()
    for b in list_bundles():
        for f in ("configs/metadata.json", "configs/inference.json", "models/model.pt", "docs/README.md", "LICENSE"):
            assert f"monai_diffrecon/bundle_data/{b}/{f}" in names, (b, f)
    for f in ("logging.conf", "cli.json", "meta_schema_20240725.json"):
        assert f"monai_diffrecon/shared_configs/{f}" in names
    assert not [n for n in names if "/eval/" in n or "/output/" in n or "train_output" in n]  # no local run folders


def test_installed_wheel_lists_verifies_and_runs_bundles_outside_the_source_tree(wheel_env):
    e = wheel_env
    r = _run(e, str(e["python"]), "-c", "import monai_diffrecon, monai_diffrecon.bundles as b; print(monai_diffrecon.__file__); print(b.BUNDLES_DIR)")
    where, bundles_dir = r.stdout.split()
    assert str(e["bin"].parent) in where and str(e["bin"].parent) in bundles_dir and str(ROOT) not in where, r.stdout + r.stderr
    r = _run(e, str(e["bin"] / "diffrecon"), "list")
    assert r.returncode == 0, r.stderr[-2000:]
    listed = [line.split()[0] for line in r.stdout.splitlines() if line and not line.startswith(" ")]
    assert listed == list_bundles() and len(listed) == 8
    r = _run(e, str(e["bin"] / "diffrecon"), "verify", "satellite_cloud_removal")  # offline: the schema ships in the package
    assert r.returncode == 0 and json.loads(r.stdout) == {"metadata": "ok", "weights": "ok", "network": "ok"}, r.stdout + r.stderr[-2000:]
    r = _run(e, str(e["bin"] / "diffrecon"), "simulate", "satellite", "--output", "cases", "--n", "1", "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    r = _run(e, str(e["bin"] / "diffrecon"), "run", "satellite_cloud_removal", "--input", "cases", "--output", "out", "--json", "--quiet")
    assert r.returncode == 0 and json.loads(r.stdout)["ok"] == 1, r.stderr[-2000:]
    assert (e["work"] / "out" / "scene_000" / "clear_pred.tif").is_file()


def test_exported_archive_runs_with_monai_bundle_and_the_package_alone(wheel_env):
    e = wheel_env
    r = _run(e, str(e["bin"] / "diffrecon"), "export", "satellite_cloud_removal", "sat.zip")
    assert r.returncode == 0, r.stderr[-2000:]
    z = zipfile.ZipFile(e["work"] / "sat.zip")
    assert {"satellite_cloud_removal/configs/inference.json", "satellite_cloud_removal/configs/logging.conf",
            "satellite_cloud_removal/models/model.pt", "satellite_cloud_removal/LICENSE"} <= set(z.namelist())
    z.extractall(e["work"] / "unzipped")
    root = e["work"] / "unzipped" / "satellite_cloud_removal"
    if not (e["work"] / "cases").is_dir():
        assert _run(e, str(e["bin"] / "diffrecon"), "simulate", "satellite", "--output", "cases", "--n", "1", "--quiet").returncode == 0
    r = _run(e, str(e["python"]), "-m", "monai.bundle", "run", "--config_file", str(root / "configs" / "inference.json"), "--bundle_root", str(root),
             "--input_dir", "cases", "--output_dir", "zoo_out", "--progress", "False")
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((e["work"] / "zoo_out" / "summary.json").read_text())["ok"] == 1
    r = _run(e, str(e["bin"] / "diffrecon"), "export", "satellite_cloud_removal", "sat.zip")  # never replaces a file
    assert r.returncode == 2 and "OutputError" in r.stderr


def test_export_refuses_an_existing_file(tmp_path):
    (tmp_path / "a.zip").write_bytes(b"mine")
    with pytest.raises(OutputError):
        export_bundle("satellite_cloud_removal", tmp_path / "a.zip")
    assert (tmp_path / "a.zip").read_bytes() == b"mine"
