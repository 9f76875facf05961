"""Target statements computed from paired results, so that a results file cannot say "met" when the numbers do not.

A target is "``ours`` beats ``baseline`` on ``metric`` by more than ``threshold``": it is **met** only if the lower
bound of the 95 % CI of the paired difference clears the threshold, and only if the baseline is not broken — a
baseline that does not demonstrably beat the trivial input (zero-filled, blurred, cloudy, plain OSEM: the lower bound
of the 95 % CI of the paired difference baseline − trivial must be above 0) is reported as failed and never counted as
beaten; a baseline that merely ties doing nothing proves nothing when beaten. Every evaluated target is merged into ``benchmarks/results/targets.json`` (one entry per
target name: ``name, ours, baseline, difference, ci_low, ci_high, threshold, met, results_file`` and the rest below).

A second kind, :class:`RankTarget` (``kind: "rank_correlation"``), states that one estimate *tracks* another: the
Spearman rank correlation ρ, over a set of items (e.g. distribution pairs), between the per-item means of two
estimates (e.g. a KL estimated from clean images and from corrupted measurements) is above ``threshold``. The cases
(e.g. the samples each estimate averages over) are resampled with replacement, jointly for every item and both
estimates, and ρ is recomputed per resample; the target is **met** only if the lower bound of ρ's 95 % percentile
interval clears the threshold. Its ``targets.json`` entry holds ρ in ``difference`` (with ``ci_low``, ``ci_high``),
the estimates' labels in ``ours`` (the tracking one) and ``baseline`` (the reference), and ``kind``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from monai_diffrecon.errors import InvalidValueError, ShapeError
from monai_diffrecon.evaluation.results import Results
from monai_diffrecon.evaluation.stats import N_BOOT, Estimate

__all__ = ["Target", "check_target", "baseline_guard", "targets_section", "update_targets_json", "target_spec", "evaluate_results_doc",
           "RankTarget", "spearman", "bootstrap_rank_correlation", "check_rank_target"]


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


def _ranks(v: np.ndarray) -> np.ndarray:
    """1-based ranks along the last axis, ties given their average rank."""
    less = (v[..., None, :] < v[..., :, None]).sum(axis=-1)
    equal = (v[..., None, :] == v[..., :, None]).sum(axis=-1)
    return less + (equal + 1) / 2.0


def _pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a - a.mean(axis=-1, keepdims=True), b - b.mean(axis=-1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (a * b).sum(axis=-1) / np.where(den > 0, den, 1.0), 0.0)


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank correlation of two equally long sequences (average ranks for ties; 0 if either is constant)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size < 2:
        raise ShapeError(f"spearman: two equally long 1-D sequences of ≥ 2 values required, got {a.shape} and {b.shape}")
    return float(_pearson_rows(_ranks(a), _ranks(b)))


def bootstrap_rank_correlation(x: Mapping, y: Mapping, level: float = 0.95, n_boot: int = N_BOOT, seed: int = 0) -> Estimate:
    """Spearman ρ over items between the per-item means of ``x`` and ``y`` (``{item: {case: value}}``; every item of
    both holds the same cases), with the percentile-bootstrap interval from resampling the cases jointly; ``n`` is the
    number of cases.

    Raises:
        ShapeError: fewer than 3 items, different items in ``x`` and ``y``, or an item on other cases than the first.
        InvalidValueError: non-finite values.
    """
    items = list(x)
    if len(items) < 3 or set(items) != set(y):
        raise ShapeError(f"bootstrap_rank_correlation: the same ≥ 3 items required in x and y, got {items} and {list(y)}")
    cases = sorted(x[items[0]], key=str)
    for d in (x, y):
        for it in items:
            if set(d[it]) != set(cases):
                raise ShapeError(f"bootstrap_rank_correlation: item {it!r} was measured on other cases than {items[0]!r}")
    X = np.array([[x[it][c] for c in cases] for it in items], dtype=np.float64)
    Y = np.array([[y[it][c] for c in cases] for it in items], dtype=np.float64)
    if not (np.isfinite(X).all() and np.isfinite(Y).all()):
        raise InvalidValueError("bootstrap_rank_correlation: non-finite values")
    rho = spearman(X.mean(axis=1), Y.mean(axis=1))
    idx = np.random.default_rng(seed).integers(0, len(cases), size=(n_boot, len(cases)))
    bx, by = X[:, idx].mean(axis=-1).T, Y[:, idx].mean(axis=-1).T  # (n_boot, items)
    boot = _pearson_rows(_ranks(bx), _ranks(by))
    lo, hi = np.quantile(boot, [(1 - level) / 2, 1 - (1 - level) / 2])
    return Estimate(rho, float(lo), float(hi), len(cases), level)


@dataclass(frozen=True)
class RankTarget:
    """The estimate selected by ``y`` tracks the one selected by ``x`` (module doc): Spearman ρ over the values of
    ``item_key`` (rows matching ``where``) between the per-item means of ``value_key`` is above ``threshold``.
    ``x``/``y``: ``{key: value}`` selectors (e.g. ``{"level": "clean"}``), labelled ``x_label``/``y_label``."""

    name: str
    item_key: str
    value_key: str
    x: dict
    y: dict
    x_label: str
    y_label: str
    threshold: float
    results_file: str
    where: dict = field(default_factory=dict)
    kind: str = "rank_correlation"


def check_rank_target(results: Results, target: RankTarget) -> dict:
    """Evaluate ``target`` on ``results`` built with ``method_key = target.item_key``; returns its ``targets.json`` entry."""
    sel = {**target.where, **target.x}
    items = list(dict.fromkeys(r[target.item_key] for r in results.rows
                               if all(r.get(k) == v for k, v in sel.items()) and target.value_key in r))
    xs = {it: results.values(it, target.value_key, **sel) for it in items}
    ys = {it: results.values(it, target.value_key, **{**target.where, **target.y}) for it in items}
    e = bootstrap_rank_correlation(xs, ys)
    return {"name": target.name, "kind": target.kind, "ours": target.y_label, "baseline": target.x_label, "metric": f"Spearman ρ of {target.value_key}",
            "where": target.where, "items": items, "difference": e.mean, "ci_low": e.low, "ci_high": e.high, "n": e.n,
            "threshold": target.threshold, "met": bool(e.low > target.threshold), "baseline_ok": True, "results_file": target.results_file}


def target_spec(target: Target | RankTarget, case_keys: Sequence[str], protocol: str, rows_key: str = "rows", method_key: str = "method") -> dict:
    """The JSON form of ``target`` a results file stores under ``"targets"``, so that ``benchmarks/targets.py``
    re-computes the verdict from the file's own rows (``doc[rows_key]``, cases identified by ``case_keys``). For a
    :class:`RankTarget` ``method_key`` is its ``item_key``."""
    if isinstance(target, RankTarget):
        method_key = target.item_key
    return {**asdict(target), "case_keys": list(case_keys), "protocol": protocol, "rows_key": rows_key, "method_key": method_key}


def evaluate_results_doc(doc: dict) -> list[dict]:
    """The ``targets.json`` entries of every :func:`target_spec` in a results document (``doc["targets"]``); a spec's
    optional ``"unit"`` (e.g. ``"nats"``) is passed on to its entry and used by :func:`targets_section`."""
    names = {f.name for f in fields(Target)}
    rank_names = {f.name for f in fields(RankTarget)}
    out = []
    for spec in doc.get("targets", []):
        results = Results(doc[spec["rows_key"]], spec["case_keys"], spec["method_key"])
        if spec.get("kind", "paired_difference") == "rank_correlation":
            out.append({**check_rank_target(results, RankTarget(**{k: v for k, v in spec.items() if k in rank_names})),
                        "protocol": spec["protocol"]})
            continue
        out.append({**check_target(results, Target(**{k: v for k, v in spec.items() if k in names})), "protocol": spec["protocol"],
                    **({"unit": spec["unit"]} if "unit" in spec else {})})
    return out


def targets_section(entries: Iterable[dict], unit: str = "dB") -> list[str]:
    """Markdown lines of the ``## Targets`` section: each target MET or MISSED with its paired difference and CI (in
    the entry's own ``"unit"`` where it has one, else ``unit``)."""
    lines = ["## Targets (computed: met only if the 95 % CI of the paired difference clears the threshold)", ""]
    for e in entries:
        verdict = "MET" if e["met"] else "MISSED"
        if e.get("kind") == "rank_correlation":
            lines.append(f"- **{verdict}** {e['name']}: Spearman ρ({e['ours']}, {e['baseline']}) over {len(e['items'])} items = "
                         f"{e['difference']:+.2f} [{e['ci_low']:+.2f}, {e['ci_high']:+.2f}], cases resampled: {e['n']} "
                         f"(threshold: CI low > {e['threshold']:+.2f})")
            continue
        why = "" if e.get("baseline_ok", True) else (f" — baseline broken: {e['baseline_mean']:.2f} vs the trivial input's "
                                                      f"{e['trivial_mean']:.2f} (gain CI low {e['baseline_gain_ci_low']:+.2f})")
        lines.append(f"- **{verdict}** {e['name']}: {e['ours']} − {e['baseline']} = {e['difference']:+.2f} {e.get('unit', unit)} "
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
