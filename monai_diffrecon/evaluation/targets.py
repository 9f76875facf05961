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

Three more kinds state targets that are not a paired difference of one per-case metric:

* :class:`AUCTarget` (``kind: "auc_difference"``): a decision variable separates labelled cases (e.g. studies with
  and without a defect) at least as well as a reference reading of the same cases, up to a margin: ``AUC(ours) −
  AUC(baseline)``, each method's rows selected by its own ``where`` (e.g. a low-dose setting against the full-dose
  reading), the cases resampled jointly (:func:`~monai_diffrecon.evaluation.stats.bootstrap_auc_difference`);
  **met** only if the CI's lower bound is above ``threshold`` (e.g. −0.02).
* :class:`AgreementTarget` (``kind: "agreement"``): a vector per case (e.g. 17 polar-map segments) agrees with a
  reference row's vector: per case the share of elements within ``±tolerance``
  (:func:`~monai_diffrecon.evaluation.stats.share_within`), its mean over cases with the bootstrap CI; **met** only if
  the CI's lower bound is at least ``threshold`` (e.g. 0.90). An optional ``comparison`` method's share is reported
  beside it (not part of the verdict).
* :class:`DropTarget` (``kind: "gain_drop"``): a paired gain ``ours − baseline`` does not drop by more than
  ``threshold`` from a reference set of cases (rows stored in the same document under ``reference_rows_key``, e.g.
  the training family's) to this file's cases (e.g. a wider family): drop = mean gain there − mean gain here, the two
  sets resampled independently (:func:`~monai_diffrecon.evaluation.stats.unpaired_difference`); **met** only if the
  CI's upper bound is at most ``threshold``.

Their entries hold the statistic in ``difference`` (with ``ci_low``, ``ci_high``, ``n``) and the verdict's rule in
``rule`` (``"ci_low > threshold"``, ``"ci_low >= threshold"``, ``"ci_high <= threshold"``).
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
from monai_diffrecon.evaluation.stats import N_BOOT, Estimate, bootstrap_auc_difference, bootstrap_mean, share_within, unpaired_difference

__all__ = ["Target", "check_target", "baseline_guard", "targets_section", "update_targets_json", "target_spec", "evaluate_results_doc",
           "RankTarget", "spearman", "bootstrap_rank_correlation", "check_rank_target", "AUCTarget", "check_auc_target", "AgreementTarget",
           "check_agreement_target", "DropTarget", "check_drop_target"]


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


@dataclass(frozen=True)
class AUCTarget:
    """``AUC(ours) − AUC(baseline) > threshold`` (module doc): ``score_key`` separating the cases by ``label_key``
    (true = positive), ``ours``' rows matching ``where`` and ``baseline``'s matching ``baseline_where``."""

    name: str
    ours: str
    baseline: str
    score_key: str
    label_key: str
    threshold: float
    results_file: str
    where: dict = field(default_factory=dict)
    baseline_where: dict = field(default_factory=dict)
    kind: str = "auc_difference"


def _rows_by_case(results: Results, method: str, **where) -> dict[tuple, dict]:
    out = {}
    for r in results.rows:
        if r[results.method_key] == method and all(r.get(k) == v for k, v in where.items()):
            case = tuple(r[k] for k in results.case_keys)
            if case in out:
                raise InvalidValueError(f"case {case} of {method!r} appears twice where {where}")
            out[case] = r
    if not out:
        raise InvalidValueError(f"no rows of {method!r} where {where}")
    return out


def check_auc_target(results: Results, target: AUCTarget) -> dict:
    """Evaluate ``target`` on ``results``; returns its ``targets.json`` entry (``ours_mean``/``baseline_mean``: the two AUCs)."""
    ra, rb = _rows_by_case(results, target.ours, **target.where), _rows_by_case(results, target.baseline, **target.baseline_where)
    if set(ra) != set(rb):
        raise ShapeError(f"{target.name}: {target.ours!r} and {target.baseline!r} were read on different cases")
    labels = {c: bool(ra[c][target.label_key]) for c in ra}
    if any(bool(rb[c][target.label_key]) != labels[c] for c in ra):
        raise InvalidValueError(f"{target.name}: the two methods' rows disagree on {target.label_key!r}")
    d, x = bootstrap_auc_difference({c: r[target.score_key] for c, r in ra.items()}, {c: r[target.score_key] for c, r in rb.items()}, labels)
    return {"name": target.name, "kind": target.kind, "ours": target.ours, "baseline": target.baseline,
            "metric": f"AUC of {target.score_key} ({target.label_key} = positive)", "where": target.where, "baseline_where": target.baseline_where,
            "ours_mean": x["auc_a"], "baseline_mean": x["auc_b"], "difference": d.mean, "ci_low": d.low, "ci_high": d.high, "n": d.n,
            "n_positive": x["n_positive"], "n_negative": x["n_negative"], "skipped_resamples": x["skipped"], "threshold": target.threshold,
            "rule": "ci_low > threshold", "met": bool(d.low > target.threshold), "baseline_ok": True, "results_file": target.results_file}


@dataclass(frozen=True)
class AgreementTarget:
    """Per case, the share of ``method``'s ``key`` elements (rows matching ``where``) within ``±tolerance`` of
    ``reference``'s (rows matching ``reference_where``); its mean over cases ≥ ``threshold`` (module doc).
    ``comparison``: another method reported beside it on the same rows; ``elements`` names the elements in reports."""

    name: str
    method: str
    key: str
    reference: str
    tolerance: float
    threshold: float
    results_file: str
    where: dict = field(default_factory=dict)
    reference_where: dict = field(default_factory=dict)
    comparison: str | None = None
    elements: str = "elements"
    kind: str = "agreement"


def check_agreement_target(results: Results, target: AgreementTarget) -> dict:
    """Evaluate ``target`` on ``results``; returns its ``targets.json`` entry (``difference``: the mean share)."""
    ref = _rows_by_case(results, target.reference, **target.reference_where)

    def shares(method: str) -> Estimate:
        rows = _rows_by_case(results, method, **target.where)
        if set(rows) != set(ref):
            raise ShapeError(f"{target.name}: {method!r} and the reference {target.reference!r} were read on different cases")
        return bootstrap_mean([share_within(rows[c][target.key], ref[c][target.key], target.tolerance) for c in sorted(rows, key=str)])

    e = shares(target.method)
    out = {"name": target.name, "kind": target.kind, "ours": target.method, "baseline": target.reference,
           "metric": f"share of {target.elements} within ±{target.tolerance:g} of the reference's {target.key}", "where": target.where,
           "reference_where": target.reference_where, "ours_mean": e.mean, "difference": e.mean, "ci_low": e.low, "ci_high": e.high, "n": e.n,
           "tolerance": target.tolerance, "elements": target.elements, "threshold": target.threshold, "rule": "ci_low >= threshold",
           "met": bool(e.low >= target.threshold), "baseline_ok": True, "results_file": target.results_file}
    if target.comparison:
        c = shares(target.comparison)
        out.update(comparison=target.comparison, comparison_mean=c.mean, comparison_ci_low=c.low, comparison_ci_high=c.high)
    return out


@dataclass(frozen=True)
class DropTarget:
    """The paired gain ``ours − baseline`` on ``metric`` (rows matching ``where``) drops by at most ``threshold`` from
    the cases of ``doc[reference_rows_key]`` (described by ``reference_label``) to this file's cases (module doc)."""

    name: str
    ours: str
    baseline: str
    metric: str
    threshold: float
    results_file: str
    where: dict = field(default_factory=dict)
    reference_rows_key: str = "reference_rows"
    reference_label: str = "reference"
    kind: str = "gain_drop"


def check_drop_target(results: Results, reference: Results, target: DropTarget) -> dict:
    """Evaluate ``target`` with this file's rows ``results`` and the reference set's rows ``reference``; returns its
    ``targets.json`` entry (``difference``: the drop; ``ours_mean``/``baseline_mean``: the mean gain here/there)."""
    def gains(res: Results) -> list[float]:
        a, b = res.values(target.ours, target.metric, **target.where), res.values(target.baseline, target.metric, **target.where)
        if set(a) != set(b):
            raise ShapeError(f"{target.name}: {target.ours!r} and {target.baseline!r} were run on different cases")
        return [a[c] - b[c] for c in sorted(a, key=str)]

    there, here = gains(reference), gains(results)
    d = unpaired_difference(there, here)
    return {"name": target.name, "kind": target.kind, "ours": target.ours, "baseline": target.baseline,
            "metric": f"drop of the gain in {target.metric} ({target.reference_label} − this file's cases)", "where": target.where,
            "reference_label": target.reference_label, "ours_mean": float(np.mean(here)), "baseline_mean": float(np.mean(there)),
            "difference": d.mean, "ci_low": d.low, "ci_high": d.high, "n": len(here), "n_reference": len(there), "threshold": target.threshold,
            "rule": "ci_high <= threshold", "met": bool(d.high <= target.threshold), "baseline_ok": True, "results_file": target.results_file}


def target_spec(target: Target | RankTarget | AUCTarget | AgreementTarget | DropTarget, case_keys: Sequence[str], protocol: str, rows_key: str = "rows", method_key: str = "method") -> dict:
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
        kind = spec.get("kind", "paired_difference")
        if kind in _OTHER_KINDS:
            cls, check = _OTHER_KINDS[kind]
            t = cls(**{k: v for k, v in spec.items() if k in {f.name for f in fields(cls)}})
            args = (results, Results(doc[t.reference_rows_key], spec["case_keys"], spec["method_key"])) if kind == "gain_drop" else (results,)
            out.append({**check(*args, t), "protocol": spec["protocol"], **({"unit": spec["unit"]} if "unit" in spec else {})})
            continue
        if kind == "rank_correlation":
            out.append({**check_rank_target(results, RankTarget(**{k: v for k, v in spec.items() if k in rank_names})),
                        "protocol": spec["protocol"]})
            continue
        out.append({**check_target(results, Target(**{k: v for k, v in spec.items() if k in names})), "protocol": spec["protocol"],
                    **({"unit": spec["unit"]} if "unit" in spec else {})})
    return out


_OTHER_KINDS = {"auc_difference": (AUCTarget, check_auc_target), "agreement": (AgreementTarget, check_agreement_target),
                "gain_drop": (DropTarget, check_drop_target)}


def _ci(e: dict) -> str:
    return f"{e['difference']:+.2f} [{e['ci_low']:+.2f}, {e['ci_high']:+.2f}]"


def _line_rank(e: dict, unit: str) -> str:
    return (f"Spearman ρ({e['ours']}, {e['baseline']}) over {len(e['items'])} items = {_ci(e)}, cases resampled: {e['n']} "
            f"(threshold: CI low > {e['threshold']:+.2f})")


def _line_auc(e: dict, unit: str) -> str:
    return (f"AUC({e['ours']}) − AUC({e['baseline']}) = {_ci(e)} ({e['ours_mean']:.2f} vs {e['baseline_mean']:.2f}) over {e['n']} cases "
            f"({e['n_positive']} positive), resampled jointly (threshold: CI low > {e['threshold']:+.2f})")


def _line_agreement(e: dict, unit: str) -> str:
    beside = "" if not e.get("comparison") else (f"; {e['comparison']} {100 * e['comparison_mean']:.0f} % "
                                                  f"[{100 * e['comparison_ci_low']:.0f}, {100 * e['comparison_ci_high']:.0f}]")
    return (f"{e['ours']} {100 * e['difference']:.0f} % [{100 * e['ci_low']:.0f}, {100 * e['ci_high']:.0f}] of {e['elements']} within "
            f"±{e['tolerance']:g} of {e['baseline']}'s, mean of the per-case shares over {e['n']} cases{beside} "
            f"(threshold: CI low ≥ {100 * e['threshold']:.0f} %)")


def _line_gain_drop(e: dict, unit: str) -> str:
    return (f"gain {e['ours']} − {e['baseline']} {e['baseline_mean']:+.2f} {e.get('unit', unit)} ({e['reference_label']}, "
            f"{e['n_reference']} cases) → {e['ours_mean']:+.2f} (these {e['n']} cases): drop {_ci(e)}, unpaired "
            f"(threshold: CI high ≤ {e['threshold']:+.2f})")


def _line_paired(e: dict, unit: str) -> str:
    why = "" if e.get("baseline_ok", True) else (f" — baseline broken: {e['baseline_mean']:.2f} vs the trivial input's "
                                                  f"{e['trivial_mean']:.2f} (gain CI low {e['baseline_gain_ci_low']:+.2f})")
    return (f"{e['ours']} − {e['baseline']} = {e['difference']:+.2f} {e.get('unit', unit)} [{e['ci_low']:+.2f}, {e['ci_high']:+.2f}] "
            f"over {e['n']} cases (threshold > {e['threshold']:+.2f}){why}")


_LINES = {"rank_correlation": _line_rank, "auc_difference": _line_auc, "agreement": _line_agreement, "gain_drop": _line_gain_drop}


def targets_section(entries: Iterable[dict], unit: str = "dB") -> list[str]:
    """Markdown lines of the ``## Targets`` section: each target MET or MISSED with its paired difference and CI (in
    the entry's own ``"unit"`` where it has one, else ``unit``), worded by its ``"kind"``."""
    lines = ["## Targets (computed: met only if the 95 % CI of the paired difference clears the threshold)", ""]
    for e in entries:
        body = _LINES.get(e.get("kind"), _line_paired)(e, unit)
        lines.append(f"- **{'MET' if e['met'] else 'MISSED'}** {e['name']}: {body}")
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
