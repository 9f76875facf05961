"""Target statements computed from paired results, so that a results file cannot say "met" when the numbers do not.

A target is "``ours`` beats ``baseline`` on ``metric`` by more than ``threshold``": it is **met** only if the lower
bound of the 95 % CI of the paired difference clears the threshold, and only if the baseline is not broken — a
baseline that does not demonstrably beat the trivial input (zero-filled, blurred, cloudy, plain OSEM: the lower bound
of the 95 % CI of the paired difference baseline − trivial must be above 0) is reported as failed and never counted as
beaten; a baseline that merely ties doing nothing proves nothing when beaten. Every evaluated target is merged into ``benchmarks/results/targets.json`` (one entry per
target name: ``name, ours, baseline, difference, ci_low, ci_high, threshold, met, results_file`` and the rest below).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from monai_diffrecon.evaluation.results import Results

__all__ = ["Target", "check_target", "baseline_guard", "targets_section", "update_targets_json", "target_spec", "evaluate_results_doc"]


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
    """``{"baseline_ok": bool, "baseline_mean", "trivial_mean", "baseline_gain_ci_low"}``: the baseline is broken
    unless the lower bound of the 95 % CI of its paired gain over the trivial input is above 0 (module doc)."""
    if trivial is None:
        return {"baseline_ok": True}
    gain = results.compare(baseline, trivial, metric, higher_is_better, **where)
    b, t = results.estimate(baseline, metric, **where).mean, results.estimate(trivial, metric, **where).mean
    return {"baseline_ok": bool(gain.low > 0), "baseline_mean": b, "trivial_mean": t, "baseline_gain_ci_low": gain.low}


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


def target_spec(target: Target, case_keys: Sequence[str], protocol: str, rows_key: str = "rows", method_key: str = "method") -> dict:
    """The JSON form of ``target`` a results file stores under ``"targets"``, so that ``benchmarks/targets.py``
    re-computes the verdict from the file's own rows (``doc[rows_key]``, cases identified by ``case_keys``)."""
    return {**asdict(target), "case_keys": list(case_keys), "protocol": protocol, "rows_key": rows_key, "method_key": method_key}


def evaluate_results_doc(doc: dict) -> list[dict]:
    """The ``targets.json`` entries of every :func:`target_spec` in a results document (``doc["targets"]``)."""
    names = {f.name for f in fields(Target)}
    out = []
    for spec in doc.get("targets", []):
        results = Results(doc[spec["rows_key"]], spec["case_keys"], spec["method_key"])
        out.append({**check_target(results, Target(**{k: v for k, v in spec.items() if k in names})), "protocol": spec["protocol"]})
    return out


def targets_section(entries: Iterable[dict], unit: str = "dB") -> list[str]:
    """Markdown lines of the ``## Targets`` section: each target MET or MISSED with its paired difference and CI."""
    lines = ["## Targets (computed: met only if the 95 % CI of the paired difference clears the threshold)", ""]
    for e in entries:
        verdict = "MET" if e["met"] else "MISSED"
        why = "" if e.get("baseline_ok", True) else (f" — baseline broken: {e['baseline_mean']:.2f} vs the trivial input's "
                                                      f"{e['trivial_mean']:.2f} (gain CI low {e['baseline_gain_ci_low']:+.2f})")
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
