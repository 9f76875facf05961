"""Copy the SPECT evaluation (benchmarks/results/spect.json + spect.md) into the bundle README's Performance section.

Usage:  .venv/bin/python benchmarks/fill_spect_docs.py   (after benchmarks/spect.py --merge)
"""

import json
from pathlib import Path

import numpy as np

root = str(Path(__file__).resolve().parent.parent)
d = json.load(open(f"{root}/benchmarks/results/spect.json"))
rows = d["rows"]
methods = list(dict.fromkeys(r["method"] for r in rows))
order = ["dose 1%", "dose 5%", "dose 10%", "dose 25%", "dose 50%", "1 view", "3 views", "5 views", "9 views"]
settings = [s for s in order if any(r["setting"] == s for r in rows)]
n = len({r["phantom"] for r in rows})
def m(s, meth, k):
    v = [r[k] for r in rows if r["setting"] == s and r["method"] == meth and r.get(k) is not None]
    return float(np.mean(v)) if v else float("nan")
lines = [f"Held-out simulated phantoms ({n}, seeds 30 000+, never seen in training): mean heart-region PSNR (dB) per setting "
         "(`benchmarks/spect.py` → `benchmarks/results/spect.md`, which also has NRMSE, SSIM, defect contrast/CNR, χ² and times).", "",
         "| setting | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
for s in settings:
    lines.append(f"| {s} | " + " | ".join(f"{m(s, k, 'psnr_heart'):.2f}" for k in methods) + " |")
md = open(f"{root}/benchmarks/results/spect.md").read()
tgt = md[md.index("## Targets"):].split("\n\n", 2)[1] if "## Targets" in md else ""
lines += ["", "Targets of the issue:", "", tgt]
perf = "\n".join(lines)
p = f"{root}/bundles/spect_cardiac_diffusion/docs/README.md"
s = open(p).read()
begin, end = "<!-- spect-results:begin (benchmarks/fill_spect_docs.py) -->\n", "<!-- spect-results:end -->"
start = s.index(begin) + len(begin)
s = s[:start] + perf.rstrip() + "\n" + s[s.index(end):]
open(p, "w").write(s)
print(perf)

# metadata eval_metrics and the main README table: benchmarks/fill_readme.py (from the same spect.json)
