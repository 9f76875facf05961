"""Quality regression (issue 21, item 4): every shipped bundle, with its shipped weights, re-run on the fixed held-out
cases recorded in ``benchmarks/results/quality_regression.json`` must keep the margins measured there over the
trivial input and over the tuned classical baseline, within the recorded tolerance:

    ours − trivial ≥ margin_trivial − tolerance      and      ours − baseline ≥ margin_baseline − tolerance

so a bad retrain or a broken sampler fails CI. ``benchmarks/quality_regression.py`` made the record (how the cases,
the trivial input, the baseline and its validation tuning, and the tolerance were chosen); this test runs exactly its
:func:`run_check` — ``diffrecon simulate`` then :func:`~monai_diffrecon.bundles.run_bundle` — and reads the
baseline's numbers from the record instead of re-tuning it. 106 s for all eight bundles alone on 2 CPU cores
(Blind-PnPDM 37 s, RELD's three tasks 21 s, SPECT 19 s, the others 3-8 s each). Checked to fail: with untrained
weights every bundle fails, and so do 1-step SPECT/MSM from noise, 2 Blind-PnPDM iterations, 1 RELD iteration
(deblurring); RELD's deblur/denoise checks do not notice an untrained *latent* UNet (within 0.02 dB: at the bundle's
settings its output is made by the autoencoder and the data steps), only an untrained autoencoder.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from monai_diffrecon.bundles import list_bundles

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "quality_regression.py"
RECORD = json.loads((ROOT / "benchmarks" / "results" / "quality_regression.json").read_text())
SPEC_KEYS = ("check", "bundle", "simulate", "overrides", "ours_key", "trivial_key", "baseline_key")


def _script():
    spec = importlib.util.spec_from_file_location("quality_regression", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_record_covers_every_bundle_and_matches_the_script():
    """Every shipped bundle has a check, and the record was made with the script's current checks."""
    assert {e["bundle"] for e in RECORD["checks"]} == set(list_bundles())
    record = [{k: e[k] for k in SPEC_KEYS} for e in RECORD["checks"]]
    assert record == [{k: c[k] for k in SPEC_KEYS} for c in _script().CHECKS], (
        f"the checks changed since the record was made: run `.venv/bin/python {SCRIPT.relative_to(ROOT)}`")


@pytest.mark.slow
@pytest.mark.parametrize("bundle", list_bundles())
def test_quality_regression(bundle, tmp_path):
    checks = [e for e in RECORD["checks"] if e["bundle"] == bundle]
    assert checks, f"{bundle}: no quality check in {RECORD} — add one to {SCRIPT.name}"
    run_check, failures = _script().run_check, []
    for e in checks:
        got = run_check(e, tmp_path / e["check"].replace("/", "_"))
        assert [r["case"] for r in got["rows"]] == e["cases"], f"{e['check']}: other cases than recorded"
        ours, trivial = (float(np.mean([r[k] for r in got["rows"]])) for k in ("ours", "trivial"))
        tol, name = e["tolerance"], f"{e['check']} ({e['metric']}, {len(e['cases'])} cases)"
        if abs(trivial - e["trivial"]) > RECORD["trivial_drift_db"]:  # same simulated inputs, same trivial number
            failures.append(f"{name}: the held-out inputs changed ({e['trivial_name']} {trivial:.2f} vs recorded "
                            f"{e['trivial']:.2f}); re-run {SCRIPT.name}")
        if ours - trivial < e["margin_trivial"] - tol:
            failures.append(f"{name}: ours − {e['trivial_name']} = {ours - trivial:+.2f} < recorded "
                            f"{e['margin_trivial']:+.2f} − {tol} (ours {ours:.2f}, recorded {e['ours']:.2f})")
        if ours - e["baseline"] < e["margin_baseline"] - tol:
            failures.append(f"{name}: ours − {e['baseline_name']} = {ours - e['baseline']:+.2f} < recorded "
                            f"{e['margin_baseline']:+.2f} − {tol} (ours {ours:.2f}, recorded {e['ours']:.2f})")
    assert not failures, "\n".join(failures)
