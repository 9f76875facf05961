"""CPU rehearsal of the GPU training job (issue 22, item 6): ``benchmarks/gpu_train.py train --smoke`` with 2 jobs runs
both to their iteration target, each job writes its checkpoint in the work folder and its ledger entry into the out
folder (``$OUT`` on the GPU machine), and the EMA weights are packed for the way back — so a short GPU window is never
lost to a script error again (the first H100 run lost 6 of 8 jobs to one, rc 1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JOBS = ("natural_image", "satellite_nosar")


def test_gpu_train_smoke_two_jobs_on_cpu(tmp_path):
    work, out = tmp_path / "work", tmp_path / "out"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "gpu_train.py"), "train", "--bundles-dir", str(ROOT / "bundles"),
           "--cohort-dir", str(tmp_path / "cohort"), "--work", str(work), "--out", str(out), "--device", "cpu", "--smoke",
           "--iterations", "2", "--minutes", "2", "--grace", "30", "--jobs", ",".join(JOBS)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    for job in JOBS:
        s = summary[job]
        assert s["returncode"] == 0 and not s.get("failed"), s
        assert s["iterations"] == 2 and s["stopped"] == "iterations", s
        assert (work / job / "checkpoint.pt").is_file() and (work / job / "model.pt").is_file()
    entries = json.loads((out / "training_ledger.json").read_text())["entries"]
    assert sorted(e["bundle"] for e in entries) == ["natural_blind_deblur", "satellite_cloud_removal"]
    assert all(e["iterations"] == {"start": 0, "end": 2, "target": 2} and e["cpu_hours"] > 0 for e in entries)
    assert {e["recipe"].get("use_sar", True) for e in entries} == {True, False}
    names = set()
    for tar in out.glob("weights_*.tar"):
        with tarfile.open(tar) as tf:
            names |= set(tf.getnames())
    assert {f"{j}/model.pt" for j in JOBS} <= names
    assert set(summary["_returned"]["packed"]) | set(summary["_returned"]["left_on_machine"]) >= {f"{j}/checkpoint.pt" for j in JOBS}
