"""Time the README's main job as a user runs it (``diffrecon demo``, a fresh process) and put the figure in the README.

Writes ``benchmarks/results/demo_time.json`` (the demo's own ``seconds`` from its metrics, the wall time of the whole
command, CPU count, torch threads, device) and rewrites the README text between the ``demo-time`` markers from it.

Usage:  .venv/bin/python benchmarks/demo_time.py [--runs 1]      (run it with nothing else busy on the machine)
        .venv/bin/python benchmarks/demo_time.py --readme-only   (regenerate the README text from the JSON)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "demo_time.json"
BEGIN, END = "<!-- demo-time:begin -->\n", "<!-- demo-time:end -->"


def measure(runs: int) -> dict:
    exe = Path(sys.executable).parent / "diffrecon"
    rows = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            r = subprocess.run([str(exe), "demo", "--output", str(Path(d) / "demo"), "--no-progress"], capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if r.returncode != 0:
                raise SystemExit(f"diffrecon demo failed ({r.returncode}): {r.stderr[-2000:]}")
            metrics = json.loads((Path(d) / "demo" / "study" / "metrics.json").read_text())
        rows.append({"wall_seconds": round(wall, 1), "demo_seconds": metrics["seconds"], "nfe": metrics["nfe"],
                     "num_samples": metrics["num_samples"]})
    import torch

    return {"command": "diffrecon demo --output DIR --no-progress (fresh process each run)", "runs": rows,
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "device": "cpu",
            "processor": platform.processor() or platform.machine(), "date": time.strftime("%Y-%m-%d")}


def readme_text(res: dict) -> str:
    demo = sorted(r["demo_seconds"] for r in res["runs"])
    wall = sorted(r["wall_seconds"] for r in res["runs"])
    med = lambda v: v[len(v) // 2]  # noqa: E731
    r0 = res["runs"][0]
    return (f"Measured on this project's {res['cpu_count']}-core CPU machine ({res['date']}, `benchmarks/demo_time.py` → "
            f"`benchmarks/results/demo_time.json`, median of {len(demo)} run(s)): the demo reports `\"seconds\": {med(demo):.0f}` "
            f"in its `metrics.json` (its own timing of the reconstruction: {r0['num_samples']} posterior samples, {r0['nfe']} network "
            f"calls in all), and the whole `diffrecon demo` command — simulation, interpreter start and writing included — "
            f"takes {med(wall):.0f} s of wall time.\n")


def write_readme(res: dict) -> None:
    p = ROOT / "README.md"
    s = p.read_text()
    a, b = s.index(BEGIN) + len(BEGIN), s.index(END)
    p.write_text(s[:a] + readme_text(res) + s[b:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--readme-only", action="store_true")
    a = ap.parse_args()
    if not a.readme_only:
        RESULTS.write_text(json.dumps(measure(a.runs), indent=1) + "\n")
    write_readme(json.loads(RESULTS.read_text()))
    print(RESULTS.read_text())


if __name__ == "__main__":
    main()
