"""Rank-correlation targets (``kind: "rank_correlation"``): Spearman ρ between two estimates over items, with a
bootstrap interval from resampling the cases, recomputed from a results file's rows."""

from __future__ import annotations

import json

import numpy as np
import pytest

from monai_diffrecon.errors import ShapeError
from monai_diffrecon.evaluation import (
    RankTarget,
    bootstrap_rank_correlation,
    evaluate_results_doc,
    spearman,
    target_spec,
    targets_section,
)


def test_spearman_matches_scipy_with_ties():
    from scipy.stats import spearmanr

    a, b = [1.0, 2.0, 2.0, 5.0, 3.0], [0.3, 0.1, 0.7, 0.9, 0.4]
    assert spearman(a, b) == pytest.approx(spearmanr(a, b).statistic)
    assert spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)
    with pytest.raises(ShapeError):
        spearman([1, 2], [1, 2, 3])


def _estimates(spread: float, noise: float, n: int = 40, items: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = {f"pair{i}": {c: spread * i + rng.normal(0, noise) for c in range(n)} for i in range(items)}
    y = {f"pair{i}": {c: 0.5 * spread * i + rng.normal(0, noise) for c in range(n)} for i in range(items)}
    return x, y


def test_a_clear_order_gives_rho_one_and_sampling_noise_widens_the_interval():
    e = bootstrap_rank_correlation(*_estimates(10.0, 1.0))
    assert e.mean == e.low == e.high == 1.0 and e.n == 40
    w = bootstrap_rank_correlation(*_estimates(0.1, 3.0))
    assert w.low < 0.5 < w.high and bootstrap_rank_correlation(*_estimates(0.1, 3.0)) == w  # reproducible
    x, y = _estimates(1.0, 1.0)
    y["pair0"] = {c: v for c, v in y["pair0"].items() if c > 0}
    with pytest.raises(ShapeError):
        bootstrap_rank_correlation(x, y)


def _rows(spread: float, noise: float):
    x, y = _estimates(spread, noise)
    return ([{"sample": c, "pair": it, "level": "clean", "kl": v} for it, d in x.items() for c, v in d.items()]
            + [{"sample": c, "pair": it, "level": "masked", "kl": v} for it, d in y.items() for c, v in d.items()])


def test_a_rank_target_is_recomputed_from_the_rows_and_met_only_on_its_ci():
    t = RankTarget("masked tracks clean", "pair", "kl", {"level": "clean"}, {"level": "masked"}, "clean", "masked", 0.75, "x.md")
    doc = json.loads(json.dumps({"kl_rows": _rows(10.0, 1.0), "targets": [target_spec(t, ("sample",), "toy", rows_key="kl_rows")]}))
    (e,) = evaluate_results_doc(doc)
    assert e["met"] and e["difference"] == 1.0 and e["items"] == [f"pair{i}" for i in range(5)] and e["protocol"] == "toy"
    assert "MET" in targets_section([e])[2] and "Spearman" in targets_section([e])[2]
    doc["kl_rows"] = _rows(0.1, 3.0)  # the same spec on noisier rows: the interval decides
    (e,) = evaluate_results_doc(doc)
    assert not e["met"] and "MISSED" in targets_section([e])[2]


def test_a_spec_unit_reaches_the_targets_section():
    from monai_diffrecon.evaluation import Results, Target

    rows = [{"case": i, "method": m, "kl": v + i} for i in range(6) for m, v in (("after", 1.0), ("before", 3.0))]
    t = Target("alignment lowers the KL", "after", "before", "kl", 0.0, "x.md", higher_is_better=False)
    (e,) = evaluate_results_doc({"rows": rows, "targets": [{**target_spec(t, ("case",), "toy"), "unit": "nats"}]})
    assert e["met"] and e["unit"] == "nats" and "+2.00 nats" in targets_section([e])[2]
    (plain,) = evaluate_results_doc({"rows": Results(rows, ("case",)).rows, "targets": [target_spec(t, ("case",), "toy")]})
    assert "unit" not in plain and "+2.00 dB" in targets_section([plain])[2]
