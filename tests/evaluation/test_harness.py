"""The evaluation harness (issue 21, items 1-2): bootstrap CIs, paired differences, targets that can say MISSED,
the broken-baseline guard, equal-budget grid search with edge flags, targets.json merging."""

from __future__ import annotations

import json

import numpy as np
import pytest

from monai_diffrecon.errors import InvalidValueError, ShapeError
from monai_diffrecon.evaluation import Results, Target, bootstrap_mean, check_target, grid_search, paired_difference
from monai_diffrecon.evaluation import targets_section, update_targets_json


def test_bootstrap_interval_is_reproducible_and_covers_the_mean():
    v = np.random.default_rng(1).normal(3.0, 1.0, 40)
    e = bootstrap_mean(v)
    assert e.low < e.mean < e.high and e.n == 40 and bootstrap_mean(v) == e
    half = 1.96 / np.sqrt(40) * v.std(ddof=1)  # the normal-theory half width, for scale
    assert abs((e.high - e.low) / 2 - half) < 0.25 * half
    assert bootstrap_mean([2.0, 2.0, 2.0]).low == bootstrap_mean([2.0, 2.0, 2.0]).high == 2.0
    with pytest.raises(InvalidValueError):
        bootstrap_mean([1.0, float("nan")])


def test_paired_difference_needs_the_same_cases():
    a, b = {"x": 2.0, "y": 3.0}, {"x": 1.0, "y": 1.0}
    d = paired_difference(a, b)
    assert d.mean == 1.5 and d.n == 2
    with pytest.raises(ShapeError):
        paired_difference(a, {"x": 1.0})


def _rows(gain: float, baseline_offset: float, n: int = 12):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        base = 25 + rng.normal(0, 1)
        rows += [{"case": i, "method": "input", "psnr": base},
                 {"case": i, "method": "baseline", "psnr": base + baseline_offset + rng.normal(0, 0.1)},
                 {"case": i, "method": "ours", "psnr": base + baseline_offset + gain + rng.normal(0, 0.3)}]
    return Results(rows, ("case",))


def test_a_target_is_met_only_when_the_ci_clears_the_threshold():
    t = Target("ours beats baseline by 1 dB", "ours", "baseline", "psnr", 1.0, "x.md", trivial="input")
    assert check_target(_rows(2.0, 1.0), t)["met"]
    e = check_target(_rows(1.05, 1.0), t)  # the mean clears 1 dB, its CI does not
    assert e["difference"] > 1.0 and e["ci_low"] < 1.0 and not e["met"]
    assert "MISSED" in targets_section([e])[2]


def test_a_win_over_a_broken_baseline_is_never_met():
    t = Target("ours beats baseline", "ours", "baseline", "psnr", 0.0, "x.md", trivial="input")
    e = check_target(_rows(5.0, -2.0), t)  # baseline 2 dB below the trivial input
    assert e["ci_low"] > 0 and not e["baseline_ok"] and not e["met"]
    assert "baseline broken" in targets_section([e])[2]


def test_grid_search_respects_the_budget_and_flags_edges():
    tuned = grid_search(lambda p: -(p["a"] - 3) ** 2 - p["b"], {"a": [1, 2, 3], "b": [0, 1]}, budget=6)
    assert tuned.params == {"a": 3, "b": 0} and sorted(tuned.on_edge) == ["a", "b"] and len(tuned.trials) == 6
    assert grid_search(lambda p: -(p["a"] - 2) ** 2, {"a": [1, 2, 3]}, budget=6).on_edge == []
    with pytest.raises(InvalidValueError, match="budget"):
        grid_search(lambda p: 0.0, {"a": list(range(7))}, budget=6)


def test_targets_json_merges_by_name(tmp_path):
    p = tmp_path / "targets.json"
    t = Target("t1", "ours", "baseline", "psnr", 0.0, "a.md", trivial="input")
    update_targets_json([check_target(_rows(2.0, 1.0), t)], p)
    update_targets_json([{**check_target(_rows(2.0, 1.0), t), "name": "t2", "results_file": "b.md"}], p)
    update_targets_json([check_target(_rows(-1.0, 1.0), t)], p)  # t1 re-measured
    doc = json.loads(p.read_text())
    assert [e["name"] for e in doc] == ["t1", "t2"] and not doc[0]["met"]
    for k in ("name", "ours", "baseline", "difference", "ci_low", "ci_high", "threshold", "met", "results_file"):
        assert k in doc[0]


def test_targets_json_is_generated_from_the_results_files():
    """benchmarks/results/targets.json and targets.md are what benchmarks/targets.py computes from the per-case rows."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    r = subprocess.run([sys.executable, str(root / "benchmarks" / "targets.py"), "--check"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads((root / "benchmarks" / "results" / "targets.json").read_text())
    assert len(doc) >= 25 and all(isinstance(e["met"], bool) for e in doc)


def test_a_results_file_states_its_targets_and_they_are_recomputed_from_its_rows():
    from monai_diffrecon.evaluation import evaluate_results_doc, target_spec

    res = _rows(2.0, 1.0)
    t = Target("ours beats baseline by 1 dB", "ours", "baseline", "psnr", 1.0, "x.md", trivial="input")
    doc = json.loads(json.dumps({"rows": res.rows, "targets": [target_spec(t, ("case",), "toy protocol")]}))
    (entry,) = evaluate_results_doc(doc)
    assert entry == {**check_target(res, t), "protocol": "toy protocol"} and entry["met"]
    doc["rows"] = _rows(5.0, -2.0).rows  # the same spec on other rows: the verdict follows the rows
    assert not evaluate_results_doc(doc)[0]["met"]
