"""Dose-adaptive sampler defaults of the SPECT bundle, chosen on validation phantoms over the 1–50 % dose × 1–9 view
grid (issue 23, item 5) → benchmarks/results/spect_tune.md + spect_tune.json (the rules the bundle ships).

Usage:
    .venv/bin/python benchmarks/spect_tune.py --weights WORK/model.pt --n-val 2 --threads 1   # candidate weights (CANDIDATE settings)
    .venv/bin/python benchmarks/spect_tune.py --n-val 2                                        # the bundle's weights and settings
    .venv/bin/python benchmarks/spect_tune.py --apply     # copy results/spect_tune.json's rules into the bundle's inference.json
    (--quick: one phantom, two settings, two configurations — a smoke run, written under /tmp)

Protocol: the validation phantoms of ``benchmarks/spect.py`` (split registry, never in training or test), every dose
of ``DOSES`` (60 views) and every view count of ``VIEWS`` (full dose), each drawn from the phantom's full-dose
acquisition as the benchmark does; the objective is the benchmark's: heart PSNR against the full-dose reference
(``modalities.spect.REFERENCE``). Every configuration of ``CONFIGS`` (sampler settings over the shipped ones: steps,
warm start t₀, consistency strength = MLEM iterations and proximal weight, TV-z weight) runs on every phantom and
setting with the same seed; OSEM + Gaussian filter is tuned on the same phantoms with its 24-setting grid
(``spect.py``'s ``tune``), so the table shows where ours stands per setting.

The rules: settings are grouped into regimes a study's own data identify (``REGIMES``) — few views (≤ 3; ≤ 9) by the
number of views, full-view acquisitions by their total photopeak counts (≤ 5 %, ≤ 25 %, more; thresholds halfway,
geometrically, between the validation counts of adjacent dose groups) — and each regime takes the configuration with
the best mean objective over its settings. They are written to ``spect_tune.json``; ``--apply`` copies them into the bundle's
``inference.json`` (settings common to every regime as the inferer's own, the rest as ``inferer#adaptive``; a test
checks they agree). ``--set inferer#adaptive=null`` turns the rules off for a run.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from spect import FILT, SUBSETS, Study, acquire, load_prior, settings, tune  # noqa: E402

from monai_diffrecon.evaluation import run_info, seeds
from monai_diffrecon.metrics.spect import volume_metrics
from monai_diffrecon.modalities.spect import REFERENCE, gaussian_filter3d
from monai_diffrecon.recon.em import osem

ROOT = Path(__file__).resolve().parent
#: candidate configurations (over the sampler's constructor settings); 9 per setting, fewer than the baselines' 24
CONFIGS = {
    "noise, 3 steps, MLEM×2 prox 0.3": {"t_start": None, "num_steps": 3, "mlem_iterations": 2, "prox_lam": 0.3, "tv_weight": 0.002},
    "noise, 3 steps, MLEM×1 prox 0.3": {"t_start": None, "num_steps": 3, "mlem_iterations": 1, "prox_lam": 0.3, "tv_weight": 0.002},
    "noise, 3 steps, MLEM×2 prox 1": {"t_start": None, "num_steps": 3, "mlem_iterations": 2, "prox_lam": 1.0, "tv_weight": 0.002},
    "noise, 3 steps, MLEM×2 prox 0.3, TV 0.01": {"t_start": None, "num_steps": 3, "mlem_iterations": 2, "prox_lam": 0.3, "tv_weight": 0.01},
    "noise, 3 steps, MLEM×1 prox 1, TV 0.01": {"t_start": None, "num_steps": 3, "mlem_iterations": 1, "prox_lam": 1.0, "tv_weight": 0.01},
    "noise, 3 steps, MLEM×1 prox 3, TV 0.01": {"t_start": None, "num_steps": 3, "mlem_iterations": 1, "prox_lam": 3.0, "tv_weight": 0.01},
    "noise, 3 steps, no MLEM, TV 0.01": {"t_start": None, "num_steps": 3, "mlem_iterations": 0, "prox_lam": 0.3, "tv_weight": 0.01},
    "noise, 3 steps, MLEM×4 prox 0.1": {"t_start": None, "num_steps": 3, "mlem_iterations": 4, "prox_lam": 0.1, "tv_weight": 0.002},
    "t₀ 200, 3 steps, MLEM×4 prox 0.1": {"t_start": 200, "num_steps": 3, "mlem_iterations": 4, "prox_lam": 0.1, "tv_weight": 0.002},
}
#: regimes (name, settings in it, bound kind), in rule order: few views by the number of views, then full-view
#: acquisitions by their counts; the last regime takes every other study
REGIMES = [("≤ 3 views", ("1 view", "3 views"), "views"), ("≤ 9 views", ("5 views", "9 views"), "views"),
           ("≤ 5 % dose", ("dose 1%", "dose 5%"), "counts"), ("≤ 25 % dose", ("dose 10%", "dose 25%"), "counts"),
           ("higher counts", ("dose 50%",), None)]


def rules_from(best_of: dict[str, str], counts: dict[str, float]) -> list[dict]:
    """The ordered ``adaptive`` rules of :class:`~monai_diffrecon.samplers.SPECT25D` from each regime's chosen
    configuration ``best_of`` and the validation mean counts per setting: a count bound lies halfway (geometrically)
    between the regime's highest mean count and the next full-view regime's lowest."""
    out = []
    for i, (name, members, kind) in enumerate(REGIMES):
        rule = {}
        if kind == "views":
            rule["max_views"] = max(int(s.split()[0]) for s in members)
        elif kind == "counts":
            lo = max(counts[s] for s in members)
            hi = min(counts[s] for s in REGIMES[i + 1][1])
            rule["max_counts"] = float(f"{math.sqrt(lo * hi):.3g}")
        out.append({**rule, **CONFIGS[best_of[name]]})
    return out


def split_common(rules: list[dict]) -> tuple[dict, list[dict]]:
    """``(base, rules)``: the settings every rule gives the same value become the inferer's own settings (so e.g.
    ``--steps`` still works when every regime chose the same number of steps); the rules keep the rest."""
    keys = set.intersection(*(set(r) for r in rules)) - {"max_counts", "max_views"} if rules else set()
    base = {k: rules[0][k] for k in sorted(keys) if all(r[k] == rules[0][k] for r in rules)}
    return base, [{k: v for k, v in r.items() if k not in base} for r in rules]


def apply_rules() -> None:
    """Copy the rules of ``results/spect_tune.json`` into ``inferer.adaptive`` of the bundle's ``inference.json``."""
    from spect import BUNDLE

    doc = json.loads((ROOT / "results" / "spect_tune.json").read_text())
    if not doc["rules"]:
        raise SystemExit("results/spect_tune.json holds no rules (a --quick run?)")
    path = BUNDLE / "configs" / "inference.json"
    cfg = json.loads(path.read_text())
    for k, v in doc["base"].items():
        if k == "num_steps":
            cfg["num_steps"] = v  # the inferer reads @num_steps (the CLI's --steps)
        else:
            cfg["inferer"][k] = v
    cfg["inferer"]["adaptive"] = doc["rules"]
    path.write_text(json.dumps(cfg, indent=4, ensure_ascii=False) + "\n")
    print(f"{path}: inferer settings {doc['base']}, adaptive = {len(doc['rules'])} rules")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-val", type=int, default=2)
    ap.add_argument("--weights", default=None, help="candidate weights (a training work folder's model.pt), read with spect.CANDIDATE")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 phantom, 2 settings, 2 configurations, output under /tmp")
    ap.add_argument("--apply", action="store_true", help="write the rules of results/spect_tune.json into the bundle's inference.json "
                    "(inferer#adaptive) and stop")
    a = ap.parse_args()
    if a.apply:
        apply_rules()
        return
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    sets = settings(True)
    configs = CONFIGS
    out = ROOT / "results" / "spect_tune.md"
    if a.quick:
        sets, configs, a.n_val, out = [sets[1], sets[-1]], dict(list(CONFIGS.items())[:2]), 1, Path("/tmp/spect_tune_quick.md")

    def log(msg):
        print(f"[{time.perf_counter() - t0:7.0f} s] {msg}", flush=True)

    chosen = tune(a.n_val, sets, log)  # OSEM + filter (and TV) on the same validation phantoms, 24 settings each
    sampler = load_prior(a.weights)
    shipped = {k: getattr(sampler, k) for k in {k for c in configs.values() for k in c}}
    sampler.adaptive = []  # each configuration is scored as given
    rows = []
    for i, seed in enumerate(seeds("spect", "val", a.n_val)):
        st = Study(seed, chosen["reference"]["params"])
        for name, dose, views in sets:
            y, P, add = acquire(st.acq, dose, views, seed=seed)
            ref = st.ref * dose
            p = chosen[name][FILT]["params"]
            xf = gaussian_filter3d(osem(P, y, p["iterations"], max(1, min(SUBSETS, P.num_views)), additive=add), p["sigma"])
            base = {"phantom": i, "seed": seed, "setting": name, "counts": float(y.sum())}
            rows.append({**base, "config": FILT, "psnr_heart_ref": volume_metrics(xf[0, 0].double(), ref, st.heart)["psnr_heart"], "seconds": 0.0})
            for c, kw in configs.items():
                for k, v in {**shipped, **kw}.items():
                    setattr(sampler, k, v)
                t = time.perf_counter()
                with torch.no_grad():
                    x = sampler(y, P, generator=torch.Generator().manual_seed(seed), progress=False, additive=add).mean
                rows.append({**base, "config": c, "psnr_heart_ref": volume_metrics(x[0, 0].double(), ref, st.heart)["psnr_heart"],
                             "seconds": time.perf_counter() - t})
            log(f"phantom {i + 1}/{a.n_val} {name}: " + ", ".join(f"{r['config']} {r['psnr_heart_ref']:.2f}" for r in rows[-len(configs) - 1:]))

    def mean(setting, config, key="psnr_heart_ref"):
        return float(np.mean([r[key] for r in rows if r["setting"] == setting and r["config"] == config]))

    names = [s[0] for s in sets]
    counts = {s: float(np.mean([r["counts"] for r in rows if r["setting"] == s])) for s in names}
    best_of = {}
    for reg, members, _ in REGIMES:
        members = [s for s in members if s in names]
        if members:
            best_of[reg] = max(configs, key=lambda c, m=members: np.mean([mean(s, c) for s in m]))
    base, rules = split_common(rules_from(best_of, counts)) if len(best_of) == len(REGIMES) else ({}, [])
    cmd = (f".venv/bin/python benchmarks/spect_tune.py --n-val {a.n_val}{' --weights ' + a.weights if a.weights else ''}"
           f"{' --quick' if a.quick else ''}")
    run = run_info(t0, argv=cmd.split())
    run.update(command=cmd, cpu_seconds=(time.perf_counter() - t0) * a.threads)
    doc = {"run": run, "reference": REFERENCE, "configs": configs, "regimes": [list(r[:2]) + [r[2]] for r in REGIMES], "best_of": best_of,
           "counts": counts, "base": base, "rules": rules, "baseline_choices": {s: chosen[s][FILT] for s in names}, "rows": rows}
    out.with_suffix(".json").write_text(json.dumps(doc, indent=1))
    lines = ["# SPECT sampler: dose-adaptive defaults chosen on validation phantoms", "",
             f"Generated by `{cmd}` (commit {str(run['commit'])[:12]}, torch {run['torch']}, {a.threads} thread(s); "
             f"{run['cpu_seconds'] / 60:.0f} CPU-minutes) on {run['date']}. Mean heart PSNR (dB) against the full-dose reference "
             f"over {a.n_val} validation phantoms (the split registry's `spect` validation seeds; never training or test); protocol "
             "in the script's docstring. OSEM + filter: its best of 24 settings per column on the same phantoms. Mean total "
             "photopeak counts per setting in the last row.", "",
             "| configuration | " + " | ".join(names) + " | s / study |", "|---|" + "---|" * (len(names) + 1)]
    for c in [FILT, *configs]:
        cells = [f"**{mean(s, c):.2f}**" if any(best_of.get(r[0]) == c and s in r[1] for r in REGIMES) else f"{mean(s, c):.2f}" for s in names]
        sec = np.mean([r["seconds"] for r in rows if r["config"] == c])
        lines.append(f"| {c} | " + " | ".join(cells) + f" | {sec:.1f} |")
    lines.append("| counts | " + " | ".join(f"{counts[s]:.3g}" for s in names) + " | |")
    lines += ["", "Chosen per regime (bold above: the regime's settings under its chosen configuration):", ""]
    lines += [f"- {reg}: {c}" for reg, c in best_of.items()]
    if rules:
        lines += ["", f"Shipped in the bundle's `inference.json` (`--apply`): the settings common to every regime as the inferer's own, {base}, "
                  "and the rest as the rules of `inferer#adaptive` (first match wins):", "", "```json", json.dumps(rules, indent=1, ensure_ascii=False), "```"]
    lines += ["", "Ours with the chosen rule minus the tuned OSEM + filter, per setting (validation, so no CI is claimed here; the "
              "test-set comparison with CIs is `spect.md`): " + ", ".join(
                  f"{s} {mean(s, next(c for r, c in best_of.items() if s in {x[0]: x[1] for x in REGIMES}[r])) - mean(s, FILT):+.2f} dB"
                  for s in names if any(s in x[1] and x[0] in best_of for x in REGIMES)), ""]
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
