"""Corruption corpus (RELIABILITY T1) and coverage-guided fuzzing (T2) of the DICOM readers."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from monai_diffrecon.io.testing import default_fixtures, run_corpus

MUTANTS_PER_FIXTURE = int(os.environ.get("DIFFRECON_MUTANTS_PER_FIXTURE", "100"))  # 4 fixtures → 400 per run
FUZZ_SECONDS = int(os.environ.get("DIFFRECON_FUZZ_SECONDS", "60"))
REPO = Path(__file__).resolve().parents[2]


def test_corruption_corpus_no_crash_no_silent_wrong_output(tmp_path):
    res = run_corpus(default_fixtures(tmp_path / "fx"), MUTANTS_PER_FIXTURE, tmp_path / "mutants", seed=0)
    print(f"\ncorruption corpus: {res.total} mutants: {dict(res.counts)}")
    for fam, c in sorted(res.by_family.items()):
        print(f"  {fam}: {dict(c)}")
    assert res.total >= 300
    assert res.counts["crash"] == 0 and res.counts["silent"] == 0, "\n".join(res.failures)


def test_atheris_fuzz_of_the_readers(tmp_path):
    pytest.importorskip("atheris")
    from pydicom.data import get_testdata_file

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for f in (REPO / "tests" / "fuzz" / "corpus").iterdir():
        shutil.copy(f, corpus / f.name)
    for name in ("CT_small.dcm", "MR_small.dcm"):
        shutil.copy(get_testdata_file(name), corpus / name)
    r = subprocess.run(
        [sys.executable, str(REPO / "tests" / "fuzz" / "fuzz_readers.py"), str(corpus), f"-max_total_time={FUZZ_SECONDS}",
         "-rss_limit_mb=2048", "-timeout=20", f"-artifact_prefix={tmp_path}/"],
        capture_output=True, text=True, timeout=FUZZ_SECONDS + 600,
    )
    tail = (r.stdout + r.stderr)[-3000:]
    m = re.search(r"Done (\d+) runs in (\d+) second", r.stdout + r.stderr)
    print(f"\natheris: {m.group(0) if m else 'no summary'}; exit {r.returncode}")
    assert r.returncode == 0, tail
    assert m and int(m.group(1)) > 0
