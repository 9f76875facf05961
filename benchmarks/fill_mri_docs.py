"""Copy the MRI evaluation (benchmarks/results/mri.json + mri.md) into the MSM and SelfDB bundle READMEs (between the
``mri-results`` markers), and the validation trials behind each bundle's default settings
(benchmarks/results/mri.chosen.json, written by ``benchmarks/mri.py --tune-only``) between the ``mri-choice`` markers.
The metadata ``eval_metrics`` (the headline numbers ``diffrecon list`` prints) and the main README's table come from
``benchmarks/fill_readme.py``.

Usage:  .venv/bin/python benchmarks/fill_mri_docs.py [--check]   (after benchmarks/mri.py --merge; --check: exit 1 if
a README would change)
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- mri-results:begin (benchmarks/fill_mri_docs.py) -->\n", "<!-- mri-results:end -->"
OURS = {"mri_multicoil_msm": "MSM (self-supervised)", "mri_multicoil_selfdb": "SelfDB (self-supervised), 1 step"}
#: display names (benchmarks/mri.py keeps the bundle default's method name "MSM (self-supervised)" in the JSON)
LABEL = {"MSM (self-supervised)": "MSM, warm start from SENSE-CG (bundle default)"}
CHOICE_BEGIN, CHOICE_END = "<!-- mri-choice:begin (benchmarks/fill_mri_docs.py) -->\n", "<!-- mri-choice:end -->"
#: bundle → the tuned methods of benchmarks/results/mri.chosen.json whose trials its README lists
CHOICES = {"mri_multicoil_msm": ("MSM (self-supervised)", "MSM, Algorithm 1 from noise (self-supervised)"),
           "mri_multicoil_selfdb": ("SelfDB",)}


def choice_block(bundle: str) -> str:
    """The validation trials (mean PSNR, dB) of the bundle's tuned settings, from ``mri.chosen.json``."""
    d = json.loads((ROOT / "benchmarks/results/mri.chosen.json").read_text())
    key, chosen = d["key"], d["chosen"]
    lines = [f"Validation trials behind the defaults ({key['n_val']} validation slices, mean PSNR of the magnitude in dB), as "
             "recorded by the `benchmarks/mri.py --tune-only` run in "
             "[`benchmarks/results/mri.chosen.json`](../../../benchmarks/results/mri.chosen.json) (its key holds that run's grids; "
             f"weights sha256 `{key['weights'][bundle.split('_')[-1]][:12]}…`):", ""]
    for m in CHOICES[bundle]:
        c = chosen[m]
        fmt = lambda p: ", ".join(f"{k}={v}" for k, v in p.items())
        trials = "; ".join(f"{fmt(t['params'])}: {t['score']:.2f}" for t in c["trials"])
        edge = f" (on the grid's edge: {', '.join(c['on_edge'])})" if c.get("on_edge") else ""
        lines.append(f"- {m}: {trials} → **{fmt(c['params'])}**, {c['score']:.2f}{edge}.")
    return "\n".join(lines) + "\n"


def _fill(s: str, begin: str, end: str, body: str, where: Path) -> str:
    if begin not in s or end not in s:
        sys.exit(f"{where.relative_to(ROOT)}: no {begin.strip()} / {end} markers")
    start = s.index(begin) + len(begin)
    return s[:start] + body + s[s.index(end):]


def _table(rows) -> tuple[list[str], callable, list]:
    methods = list(dict.fromkeys(r["method"] for r in rows))
    Rs = sorted({r["R"] for r in rows})

    def mean(R, meth, k):
        v = [r[k] for r in rows if r["R"] == R and r["method"] == meth]
        return float(np.mean(v)) if v else float("nan")

    lines = ["| method | " + " | ".join(f"R = {R}" for R in Rs) + " |", "|---|" + "---|" * len(Rs)]
    for meth in methods:
        cells = [f"{mean(R, meth, 'psnr'):.2f} / {mean(R, meth, 'ssim'):.3f}" if any(r["R"] == R and r["method"] == meth for r in rows)
                 else "—" for R in Rs]
        lines.append(f"| {LABEL.get(meth, meth)} | " + " | ".join(cells) + " |")
    return lines, mean, Rs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    check = ap.parse_args().check
    rows = json.loads((ROOT / "benchmarks/results/mri.json").read_text())["rows"]
    n = len({r["slice"] for r in rows})
    table, mean, Rs = _table(rows)
    lines = [f"Held-out MNI152-based slices ({n}, axial blocks never used for training; 128², 8 coils, σ = 0.01): mean PSNR (dB) / "
             "SSIM of the magnitude (`benchmarks/mri.py` → `benchmarks/results/mri.md`, which has the 95 % CIs, paired differences, "
             "NFE, times and the validation tuning of every method). All networks were trained at R = 4 only; R = 6 and 8 use 12 "
             "and 10 ACS lines; — = not run there (CPU budget).", "", *table]
    md = (ROOT / "benchmarks/results/mri.md").read_text()
    tgt = md[md.index("## Targets"):].split("\n\n", 2)[1] if "## Targets" in md else ""
    lines += ["", "Targets of the issue:", "", tgt]
    real = ROOT / "benchmarks/results/mri_real.json"
    if real.is_file():
        d = json.loads(real.read_text())
        fails = d.get("failures", [])
        lines += ["", f"**Real MR slices** ({len({r['name'] for r in d['rows']})} held-out slices from installed wheels: pydicom's "
                  "`MR_small.dcm`, dipy's T1 coronal slice and ten b0 EPI slices; the same 8-coil simulation; `benchmarks/mri.py "
                  "--real` → `benchmarks/results/mri_real.md`, with a per-source table). Anatomy, contrast and scanner the "
                  "networks never saw:", "", *_table(d["rows"])[0]]
        _, rmean, _ = _table(d["rows"])
        ms = list(dict.fromkeys(r["method"] for r in d["rows"]))
        best = max(ms, key=lambda m: rmean(4, m, "psnr"))
        ours = [m for m in ms if m.startswith(("MSM", "SelfDB"))]
        beat = lambda b: all(rmean(4, m, "psnr") > rmean(4, b, "psnr") for m in ours)
        lines += ["", f"At R = 4 the best on real slices is {best} ({rmean(4, best, 'psnr'):.2f} dB). The self-supervised "
                  f"priors (trained on simulated MNI152 slices) {'beat' if beat('SENSE-CG') else 'do not all beat'} SENSE-CG and "
                  f"{'beat' if beat('TV (ADMM, closed-form prox)') else 'do not beat'} TV on these slices (new anatomy, T2-weighted "
                  "EPI b0 contrast, large empty backgrounds)."]
        if fails:
            lines += ["", "No reconstruction (ESPIRiT maps could not be estimated from the ACS block): "
                      + ", ".join(f"{f['name']} at R = {f['R']}" for f in fails) + "."]
    perf = "\n".join(lines).rstrip() + "\n"
    stale = []
    for bundle in OURS:
        readme = ROOT / "bundles" / bundle / "docs" / "README.md"
        s = readme.read_text()
        new = _fill(_fill(s, BEGIN, END, perf, readme), CHOICE_BEGIN, CHOICE_END, choice_block(bundle), readme)
        if new != s:
            stale.append(str(readme.relative_to(ROOT)))
            if not check:
                readme.write_text(new)
    if check:
        if stale:
            sys.exit(f"not what benchmarks/fill_mri_docs.py writes: {stale}")
        return
    print(perf)
    print("metadata eval_metrics and the main README table: benchmarks/fill_readme.py")


if __name__ == "__main__":
    main()
