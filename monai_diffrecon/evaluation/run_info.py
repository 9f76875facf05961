"""What a results file records about the run that made it: the command, the commit (and whether the tree was
clean), threads, device, versions, date and wall time."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["run_info"]


def _git(*args: str) -> str | None:
    try:
        r = subprocess.run(["git", *args], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def run_info(started: float | None = None, argv: list[str] | None = None) -> dict:
    """A dictionary for a results file; ``started``: ``time.perf_counter()`` at the start of the run (wall time)."""
    import torch

    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return {"command": " ".join(["python", *(argv if argv is not None else sys.argv)]), "commit": _git("rev-parse", "HEAD"),
            "tree_clean": None if dirty is None else dirty == "", "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
            "device": "cpu", "torch": torch.__version__, "python": platform.python_version(), "date": time.strftime("%Y-%m-%d %H:%M"),
            "wall_seconds": None if started is None else round(time.perf_counter() - started, 1)}
