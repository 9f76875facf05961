"""Helpers to run the dicom3tools validators (dciodvfy, dcentvfy) and dcm2niix from the tests."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ALLOWLIST = [
    re.compile(line.split("#", 1)[0].strip())
    for line in (Path(__file__).parent / "dciodvfy_allowlist.txt").read_text().splitlines()
    if line.strip() and not line.lstrip().startswith("#")
]


def need(tool: str) -> str:
    """Path of ``tool``; skip the test if it is missing, fail instead when CI demands the tools."""
    p = shutil.which(tool)
    if p is None:
        if os.environ.get("DIFFRECON_REQUIRE_DICOM_TOOLS") == "1":
            pytest.fail(f"{tool} is required in CI (apt-get install dicom3tools dcm2niix)")
        pytest.skip(f"{tool} not installed")
    return p


def dciodvfy_errors(path: str | Path) -> list[str]:
    """Error lines of ``dciodvfy`` for one file, minus the reviewed allowlist."""
    r = subprocess.run([need("dciodvfy"), str(path)], capture_output=True, timeout=120)
    lines = (r.stdout + r.stderr).decode("latin-1").splitlines()  # the tool echoes values in their own charset
    return [ln for ln in lines if ln.startswith("Error") and not any(a.search(ln) for a in ALLOWLIST)]


def dcentvfy_errors(paths) -> list[str]:
    """Entity-consistency errors of ``dcentvfy`` across files (same patient/study/series attributes)."""
    r = subprocess.run([need("dcentvfy"), *map(str, paths)], capture_output=True, timeout=120)
    lines = (r.stdout + r.stderr).decode("latin-1").splitlines()
    errs = [ln for ln in lines if ln.startswith("Error")]
    if r.returncode != 0 and not errs:
        errs = lines or [f"dcentvfy exit {r.returncode}"]
    return errs
