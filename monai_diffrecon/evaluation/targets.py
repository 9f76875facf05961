"""Target statements computed from paired results, so that a results file cannot say "met" when the numbers do not.

A target is "``ours`` beats ``baseline`` on ``metric`` by more than ``threshold``": it is **met** only if the lower
bound of the 95 % CI of the paired difference clears the threshold, and only if the baseline is not broken — a
baseline that scores below the trivial input (zero-filled, blurred, cloudy, plain OSEM) is reported as failed and
never counted as beaten. Every evaluated target is merged into ``benchmarks/results/targets.json`` (one entry per
target name: ``name, ours, baseline, difference, ci_low, ci_high, threshold, met, results_file`` and the rest below).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from monai_diffrecon.evaluation.results import Results

__all__ = ["Target", "check_target", "baseline_guard", "targets_section", "update_targets_json"]


@dataclass(frozen=True)
class Target:
    """``ours`` beats ``baseline`` on ``metric`` by more than ``threshold`` (in the metric's unit, e.g. dB), over the
    rows matching ``where``; ``trivial`` names the trivial input's method for the broken-baseline guard."""

    name: str
    ours: str
    baseline: str
    metric: str
    threshold: float
    results_file: str
    where: dict = field(default_factory=dict)
    higher_is_better: bool = True
    trivial: str | None = None


def baseline_guard(results: Results, baseline: str, trivial: str | None, metric: str, higher_is_better: bool = True,
                   **where) -> dict:
    """``{"baseline_ok": bool, "baseline_mean", "trivial_mean"}``: the baseline is broken when its mean is worse than
    the trivial input's over the same cases."""
    if trivial is None:
        return {"baseline_ok": True}
    b, t = results.estimate(baseline, metric, **where).mean, results.estimate(trivial, metric, **where).mean
    ok = b >= t if higher_is_better else b <= t
    return {"baseline_ok": bool(ok), "baseline_mean": b, "trivial_mean": t}


def check_target(results: Results, target: Target) -> dict:
    """Evaluate ``target`` on ``results`` (module doc); returns its ``targets.json`` entry."""
    d = results.compare(target.ours, target.baseline, target.metric, target.higher_is_better, **target.where)
    guard = baseline_guard(results, target.baseline, target.trivial, target.metric, target.higher_is_better, **target.where)
    ours = results.estimate(target.ours, target.metric, **target.where)
    base = results.estimate(target.baseline, target.metric, **target.where)
    met = bool(d.low > target.threshold and guard["baseline_ok"])
    return {"name": target.name, "ours": target.ours, "baseline": target.baseline, "metric": target.metric,
            "where": target.where, "ours_mean": ours.mean, "baseline_mean": base.mean, "difference": d.mean, "ci_low": d.low,
            "ci_high": d.high, "n": d.n, "threshold": target.threshold, "met": met, **guard, "results_file": target.results_file}


def targets_section(entries: Iterable[dict], unit: str = "dB") -> list[str]:
    """Markdown lines of the ``## Targets`` section: each target MET or MISSED with its paired difference and CI."""
    lines = ["## Targets (computed: met only if the 95 % CI of the paired difference clears the threshold)", ""]
    for e in entries:
        verdict = "MET" if e["met"] else "MISSED"
        why = "" if e.get("baseline_ok", True) else f" — baseline broken: {e['baseline_mean']:.2f} below the trivial input's {e['trivial_mean']:.2f}"
        lines.append(f"- **{verdict}** {e['name']}: {e['ours']} − {e['baseline']} = {e['difference']:+.2f} {unit} "
                     f"[{e['ci_low']:+.2f}, {e['ci_high']:+.2f}] over {e['n']} cases (threshold > {e['threshold']:+.2f}){why}")
    return lines


def update_targets_json(entries: Iterable[dict], path: str | os.PathLike) -> Path:
    """Merge ``entries`` into the JSON list at ``path`` by target name (replaced atomically)."""
    p = Path(path)
    current = {e["name"]: e for e in (json.loads(p.read_text()) if p.is_file() else [])}
    current.update({e["name"]: e for e in entries})
    tmp = p.with_name(f".{p.name}.tmp")
    tmp.write_text(json.dumps(sorted(current.values(), key=lambda e: (e["results_file"], e["name"])), indent=1) + "\n")
    tmp.replace(p)
    return p
