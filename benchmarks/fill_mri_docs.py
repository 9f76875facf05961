"""Copy the MRI evaluation (benchmarks/results/mri.json + mri.md) into the MSM and SelfDB bundle READMEs (between the
``mri-results`` markers) and their metadata ``eval_metrics`` (the headline numbers ``diffrecon list`` prints).

Usage:  .venv/bin/python benchmarks/fill_mri_docs.py   (after benchmarks/mri.py --merge)
"""

import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- mri-results:begin (benchmarks/fill_mri_docs.py) -->\n", "<!-- mri-results:end -->"
OURS = {"mri_multicoil_msm": "MSM (self-supervised)", "mri_multicoil_selfdb": "SelfDB (self-supervised), 1 step"}


def main() -> None:
    d = json.loads((ROOT / "benchmarks/results/mri.json").read_text())
    rows = d["rows"]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    Rs = sorted({r["R"] for r in rows})
    n = len({r["slice"] for r in rows})

    def mean(R, meth, k):
        v = [r[k] for r in rows if r["R"] == R and r["method"] == meth]
        return float(np.mean(v)) if v else float("nan")

    lines = [f"Held-out MNI152-based slices ({n}, axial blocks never used for training; 128², 8 coils, σ = 0.01): mean PSNR (dB) / "
             "SSIM of the magnitude (`benchmarks/mri.py` → `benchmarks/results/mri.md`, which has the spread, NFE and times). "
             "All networks were trained at R = 4 only; R = 6 and 8 use 12 and 10 ACS lines.", "",
             "| method | " + " | ".join(f"R = {R}" for R in Rs) + " |", "|---|" + "---|" * len(Rs)]
    for meth in methods:
        lines.append(f"| {meth} | " + " | ".join(f"{mean(R, meth, 'psnr'):.2f} / {mean(R, meth, 'ssim'):.3f}" for R in Rs) + " |")
    md = (ROOT / "benchmarks/results/mri.md").read_text()
    tgt = md[md.index("## Targets"):].split("\n\n", 2)[1] if "## Targets" in md else ""
    lines += ["", "Targets of the issue:", "", tgt]
    perf = "\n".join(lines).rstrip() + "\n"
    for bundle, ours in OURS.items():
        readme = ROOT / "bundles" / bundle / "docs" / "README.md"
        s = readme.read_text()
        start = s.index(BEGIN) + len(BEGIN)
        readme.write_text(s[:start] + perf + s[s.index(END):])
        meta_p = ROOT / "bundles" / bundle / "configs" / "metadata.json"
        meta = json.loads(meta_p.read_text())
        meta["eval_metrics"] = {f"psnr_db_R{R}": {"ours": round(mean(R, ours, "psnr"), 2), "sense_cg": round(mean(R, "SENSE-CG", "psnr"), 2)}
                                for R in Rs}
        meta["eval_metrics"]["source"] = f"benchmarks/results/mri.md ({n} held-out slices)"
        meta_p.write_text(json.dumps(meta, indent=4) + "\n")
    print(perf)


if __name__ == "__main__":
    main()
