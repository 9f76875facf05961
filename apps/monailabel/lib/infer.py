"""MONAI Label infer task that returns a *reconstruction* (float volume + posterior std), not a label.

MONAI Label's bundle task assumes segmentation (it guesses the task from the bundle name, strips ``SaveImaged`` and
returns uint8 labels), and MONAI Label runs in its own environment (monailabel 0.8.5 needs pydicom < 3 and numpy < 2;
monai_diffrecon needs pydicom 3). So the boundary is at files: this task runs
``diffrecon run BUNDLE --input STUDY --output TMP/out --json`` in the project's environment (a subprocess; ``TMP/out``
does not exist yet) and returns the case's ``recon.nii.gz`` as the result image with the bundle's metrics, the derived
DICOM folder and the posterior std (when ``num_samples ≥ 2``) in the result JSON. The case folder is
``OUT/<cases[0].output>`` when the run wrote ``OUT/summary.json`` with a ``cases`` list (one folder per case), else
``OUT`` itself (the older single-study layout); see :func:`case_dir`.

Request keys (MONAI Label ``params``): ``num_samples``, ``steps``, ``seed`` (CLI flags) and ``set`` (a dict of config
overrides, e.g. ``{"acceleration": 8}``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

try:  # the real interface inside MONAI Label's environment; a stand-in with the same contract elsewhere (tests)
    from monailabel.interfaces.tasks.infer_v2 import InferTask, InferType
except ImportError:  # pragma: no cover - exercised by the stub test in the project environment
    from lib.stub import InferTask, InferType  # type: ignore[no-redef]

__all__ = ["ReconstructionInfer", "case_dir", "case_metrics", "diffrecon_bin"]


def diffrecon_bin(conf: dict | None = None) -> str:
    """The project's ``diffrecon`` executable: app conf ``diffrecon_bin``, else ``$DIFFRECON_BIN``, else the one on PATH."""
    for cand in ((conf or {}).get("diffrecon_bin"), os.environ.get("DIFFRECON_BIN"), shutil.which("diffrecon")):
        if cand:
            return cand
    raise RuntimeError("diffrecon executable not found: pass --conf diffrecon_bin /path/to/.venv/bin/diffrecon or set DIFFRECON_BIN")


def case_dir(out: str | os.PathLike) -> Path:
    """The folder of the first (only) case a ``diffrecon run`` wrote under ``out``.

    ``out/summary.json`` with ``cases[0]["output"]`` (relative to ``out``, or absolute) names it; without that file, or
    with a summary that lists no case folders (the older layout: one study written straight into ``out``), it is ``out``.
    """
    out = Path(out)
    summary = out / "summary.json"
    if summary.is_file():
        cases = json.loads(summary.read_text()).get("cases") or []
        if cases and isinstance(cases[0], dict) and cases[0].get("output"):
            return out / cases[0]["output"]  # an absolute path replaces ``out``
    return out


def case_metrics(summary: dict) -> list[dict]:
    """Per-case metrics from a run's JSON summary: ``cases[i]["metrics"]`` (one folder per case) or ``cases[i]`` itself
    (the older layout, where each entry is the metrics dict)."""
    return [c["metrics"] if isinstance(c.get("metrics"), dict) else c for c in summary.get("cases") or []]


def _summary(stdout: str, out: Path) -> dict:
    """The run's JSON summary: stdout (one document; anything before the first ``{`` is skipped), else summary.json."""
    text = stdout.strip()
    if "{" in text:
        try:
            return json.JSONDecoder().raw_decode(text[text.index("{"):])[0]
        except json.JSONDecodeError:
            pass
    if (out / "summary.json").is_file():
        return json.loads((out / "summary.json").read_text())
    raise RuntimeError(f"diffrecon run printed no JSON summary and wrote no {out / 'summary.json'}: {stdout[-2000:]!r}")


class ReconstructionInfer(InferTask):
    """One monai_diffrecon bundle as a MONAI Label model (type ``others``: the result is an image, not labels)."""

    def __init__(self, bundle: str, description: str, executable: str, dimension: int = 3, timeout: float = 3600.0) -> None:
        super().__init__(type=InferType.OTHERS, labels=None, dimension=dimension, description=description,
                         config={"num_samples": 1, "steps": 0, "seed": 0})
        self.bundle, self.executable, self.timeout = bundle, executable, timeout

    def is_valid(self) -> bool:
        return Path(self.executable).exists() or shutil.which(self.executable) is not None

    def command(self, study: str, out_dir: str, request: dict) -> list[str]:
        cmd = [self.executable, "run", self.bundle, "--input", study, "--output", out_dir, "--json", "--quiet"]
        if int(request.get("num_samples") or 0) > 0:
            cmd += ["--num-samples", str(int(request["num_samples"]))]
        if int(request.get("steps") or 0) > 0:
            cmd += ["--steps", str(int(request["steps"]))]
        if request.get("seed") is not None:
            cmd += ["--seed", str(int(request["seed"]))]
        for k, v in (request.get("set") or {}).items():
            cmd += ["--set", f"{k}={json.dumps(v) if not isinstance(v, str) else v}"]
        return cmd

    def __call__(self, request) -> tuple[str | None, dict]:
        study = request["image"]
        work = tempfile.mkdtemp(prefix="diffrecon_mlabel_")
        out = Path(work) / "out"  # must not exist yet: `diffrecon run` refuses a non-empty output folder
        r = subprocess.run(self.command(study, str(out), request), capture_output=True, text=True, timeout=self.timeout)
        if r.returncode != 0:
            shutil.rmtree(work, ignore_errors=True)
            raise RuntimeError(f"diffrecon run {self.bundle} failed (exit {r.returncode}): {r.stderr.strip()[-2000:]}")
        summary = _summary(r.stdout, out)
        failed = [c for c in summary.get("cases") or [] if isinstance(c, dict) and c.get("status", "ok") != "ok"]
        case = case_dir(out)
        if failed or not (case / "recon.nii.gz").is_file():
            shutil.rmtree(work, ignore_errors=True)
            raise RuntimeError(f"diffrecon run {self.bundle} wrote no reconstruction for {study}: "
                               f"{json.dumps(failed, default=str)[-2000:] if failed else r.stderr.strip()[-2000:]}")
        result = {"bundle": self.bundle, "metrics": case_metrics(summary),
                  "dicom": str(case / "dicom") if (case / "dicom").is_dir() else None,
                  "std": str(case / "std.nii.gz") if (case / "std.nii.gz").is_file() else None, "work_dir": work}
        return str(case / "recon.nii.gz"), result
