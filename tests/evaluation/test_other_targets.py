"""Targets that are not a paired difference of one metric: an AUC against a reference reading (cases resampled
jointly), agreement of a per-case vector with a reference row (mean of per-case shares), and the drop of a paired
gain from a reference set of cases to another (unpaired) — each recomputed from a results document's rows."""

from __future__ import annotations

import json

import numpy as np
import pytest

from monai_diffrecon.errors import InvalidValueError, ShapeError
from monai_diffrecon.evaluation import (
    AgreementTarget,
    AUCTarget,
    DropTarget,
    bootstrap_auc_difference,
    evaluate_results_doc,
    share_within,
    target_spec,
    targets_section,
    unpaired_difference,
)
from monai_diffrecon.metrics.polar_map import auc


def _cohort(n: int = 30, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = {i: bool(i % 3 == 0) for i in range(n)}
    good = {i: float(rng.normal(2.0 if labels[i] else 0.0, 1.0)) for i in range(n)}  # separates the classes
    noise = {i: float(rng.normal(0.0, 1.0)) for i in range(n)}  # does not
    return labels, good, noise


def test_auc_difference_matches_mann_whitney_and_resamples_cases_jointly():
    labels, good, noise = _cohort()
    e, x = bootstrap_auc_difference(good, noise, labels)
    pos = [k for k, v in labels.items() if v]
    neg = [k for k, v in labels.items() if not v]
    assert x["auc_a"] == pytest.approx(auc([good[k] for k in pos], [good[k] for k in neg]))
    assert x["auc_b"] == pytest.approx(auc([noise[k] for k in pos], [noise[k] for k in neg]))
    assert e.mean == pytest.approx(x["auc_a"] - x["auc_b"]) and e.low < e.mean < e.high and e.n == 30
    assert (x["n_positive"], x["n_negative"], x["skipped"]) == (10, 20, 0)
    assert e.low > 0  # a clearly better decision variable
    same, _ = bootstrap_auc_difference(good, dict(good), labels)  # joint resampling: identical readings differ by exactly 0
    assert same.mean == same.low == same.high == 0.0
    assert bootstrap_auc_difference(good, noise, labels) == (e, x)  # reproducible
    # ties count one half, as in metrics.polar_map.auc
    tied, _ = bootstrap_auc_difference({0: 1.0, 1: 1.0}, {0: 2.0, 1: 1.0}, {0: True, 1: False})
    assert tied.mean == pytest.approx(0.5 - 1.0)


def test_auc_difference_skips_resamples_without_both_classes_and_rejects_bad_input():
    labels = {0: True, 1: False, 2: False, 3: False}
    _, x = bootstrap_auc_difference({0: 3.0, 1: 1.0, 2: 2.0, 3: 0.0}, {0: 0.0, 1: 1.0, 2: 2.0, 3: 3.0}, labels)
    assert 0 < x["skipped"] < 10_000  # about (3/4)^4 of the resamples hold no positive
    with pytest.raises(InvalidValueError):
        bootstrap_auc_difference({0: 1.0, 1: 2.0}, {0: 1.0, 1: 2.0}, {0: True, 1: True})
    with pytest.raises(ShapeError):
        bootstrap_auc_difference({0: 1.0, 1: 2.0}, {0: 1.0}, {0: True, 1: False})


def test_unpaired_difference_and_share_within():
    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 1.0, 40), rng.normal(0.0, 1.0, 25)
    d = unpaired_difference(a, b)
    assert d.mean == pytest.approx(a.mean() - b.mean()) and d.low < d.mean < d.high and d.n == 65
    half = 1.96 * np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    assert abs((d.high - d.low) / 2 - half) < 0.2 * half
    assert unpaired_difference(a, b) == d
    with pytest.raises(InvalidValueError):
        unpaired_difference([], [1.0])
    assert share_within([10, 20, 30, float("nan")], [14, 26, 30, 5], 5.0) == 0.5
    with pytest.raises(ShapeError):
        share_within([1, 2], [1], 1.0)


def _rows():
    """Per case a full-dose reference row and two low-dose methods: 'good' keeps the reference's summed score and
    polar map (within 2 %), 'bad' scrambles both."""
    labels, good, noise = _cohort()
    rng = np.random.default_rng(1)
    rows = []
    for i, pos in labels.items():
        polar = rng.uniform(40, 100, 17)
        base = {"phantom": i, "has_defect": pos}
        rows.append({**base, "setting": "full", "method": "reference", "score": good[i], "polar": polar.tolist(), "psnr": 20.0})
        rows.append({**base, "setting": "low", "method": "good", "score": good[i] + 0.01, "polar": (polar + rng.uniform(-2, 2, 17)).tolist(),
                     "psnr": 22.0 + rng.normal(0, 0.3)})
        rows.append({**base, "setting": "low", "method": "bad", "score": noise[i], "polar": (polar + rng.uniform(-20, 20, 17)).tolist(),
                     "psnr": 20.0 + rng.normal(0, 0.3)})
    return rows


def test_auc_and_agreement_targets_are_recomputed_from_the_rows():
    specs = [AUCTarget(f"{m}: AUC ≥ the reference's − 0.02", m, "reference", "score", "has_defect", -0.02, "x.md", {"setting": "low"},
                       {"setting": "full"}) for m in ("good", "bad")]
    specs += [AgreementTarget(f"{m}: polar within ±5 in ≥ 90 %", m, "polar", "reference", 5.0, 0.9, "x.md", {"setting": "low"},
                              {"setting": "full"}, comparison="bad", elements="segments") for m in ("good", "bad")]
    doc = json.loads(json.dumps({"rows": _rows(), "targets": [target_spec(t, ("phantom",), "toy") for t in specs]}))
    auc_good, auc_bad, agree_good, agree_bad = evaluate_results_doc(doc)
    assert auc_good["met"] and auc_good["difference"] == pytest.approx(0.0) and auc_good["kind"] == "auc_difference"
    assert not auc_bad["met"] and auc_bad["ci_low"] < -0.02 and auc_bad["ours_mean"] < auc_bad["baseline_mean"]
    assert agree_good["met"] and agree_good["difference"] == 1.0 and agree_good["ci_low"] == 1.0
    assert not agree_bad["met"] and agree_bad["difference"] < 0.5 and agree_good["comparison_mean"] == agree_bad["difference"]
    lines = targets_section([auc_good, auc_bad, agree_good, agree_bad])[2:]
    assert lines[0].startswith("- **MET** good: AUC ≥") and "AUC(good) − AUC(reference) = +0.00" in lines[0]
    assert "(threshold: CI low > -0.02)" in lines[1] and lines[1].startswith("- **MISSED**")
    assert "good 100 % [100, 100] of segments within ±5 of reference's" in lines[2] and "(threshold: CI low ≥ 90 %)" in lines[2]
    assert f"; bad {100 * agree_bad['difference']:.0f} %" in lines[2]


def test_a_drop_target_reads_the_reference_rows_and_is_met_only_on_its_upper_bound():
    here = [r for r in _rows() if r["method"] in ("good", "bad")]

    def shifted(gain):  # the reference set: other cases, with 'good' ahead of 'bad' by about ``gain`` more than here
        return [{**r, "phantom": 100 + r["phantom"], "psnr": r["psnr"] + (gain if r["method"] == "good" else 0.0)} for r in here]

    t = DropTarget("gain drops by ≤ 1 dB", "good", "bad", "psnr", 1.0, "x.md", {"setting": "low"}, reference_label="training family")
    for gain, met in ((0.2, True), (2.0, False), (0.9, False)):
        doc = json.loads(json.dumps({"rows": here, "reference_rows": shifted(gain), "targets": [target_spec(t, ("phantom",), "toy")]}))
        (e,) = evaluate_results_doc(doc)
        assert e["difference"] == pytest.approx(gain) and e["met"] is met and e["n"] == e["n_reference"] == 30
        assert (e["ci_high"] <= 1.0) is met
    line = targets_section([e])[2]
    assert line.startswith("- **MISSED** gain drops by ≤ 1 dB: gain good − bad") and "(training family, 30 cases)" in line
    assert "(threshold: CI high ≤ +1.00)" in line
    with pytest.raises(KeyError):
        evaluate_results_doc({"rows": here, "targets": [target_spec(t, ("phantom",), "toy")]})
