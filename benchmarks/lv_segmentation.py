"""Automatic LV segmentation / short-axis geometry (``metrics.lv_segmentation.segment_lv``) against the phantom's own
myocardium → stdout (markdown) and, with ``--out``, a JSON of every row.

Usage:
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/lv_segmentation.py --n 5          # ~2 min on one core

Rows:

* ``osem full`` / ``osem 5 %``: the initial OSEM (4 iterations × 8 subsets, no post-filter) of a simulated test-split
  study (:func:`monai_diffrecon.training.spect_cohort.simulate_volume`, 64³ at 6 mm, 60 views, 4 M counts at full
  dose; seeds ``SEED_BASE["test"] + 7 i``), at full dose and at 5 % dose (binomial thinning);
* ``phantom <family>``: the phantom's activity blurred with a 6 mm σ Gaussian (a reconstruction-like resolution),
  random patients of each family (seeds 0 … n−1), with and without a defect.

Columns: ``ok`` (a plausible LV was found), Dice of the automatic mask vs the phantom's myocardium, the angle between
the automatic long axis and :func:`~monai_diffrecon.data.cardiac_views.lv_axes` of the phantom's myocardium (the
reference geometry of ``benchmarks/spect.py``), and the mean |Δ| over the 17 segments of the polar map read on the
same volume with the automatic vs the phantom geometry, in % of peak.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch


def _row(kind: str, seed: int, volume: torch.Tensor, myocardium: torch.Tensor) -> dict:
    from monai_diffrecon.data.cardiac_views import lv_axes
    from monai_diffrecon.metrics.lv_segmentation import dice, segment_lv
    from monai_diffrecon.metrics.polar_map import aha17_labels, polar_map

    t = time.perf_counter()
    seg = segment_lv(volume, 6.0)
    row = {"kind": kind, "seed": seed, "ok": seg["ok"], "seconds": round(time.perf_counter() - t, 3), "reason": seg["reason"]}
    if not seg["ok"]:
        return row
    _, ref = lv_axes(myocardium.double())
    auto = polar_map(volume, aha17_labels(seg["myocardium"], seg["centre"], seg["axis"]))
    truth = polar_map(volume, aha17_labels(myocardium))
    row.update(dice=dice(seg["myocardium"], myocardium),
               angle_deg=math.degrees(math.acos(max(-1.0, min(1.0, float(seg["axis"] @ ref))))),
               polar_abs_diff=float(np.nanmean(np.abs(auto - truth))), flags=seg["flags"])
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=5, help="studies per row kind")
    ap.add_argument("--out", default=None, help="write every row as JSON here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from monai_diffrecon.data.spect_phantom import FAMILIES, cardiac_phantom
    from monai_diffrecon.physics.blur import Blur, gaussian_kernel
    from monai_diffrecon.training.spect_cohort import SEED_BASE, simulate_volume

    rows = []
    for i in range(args.n):
        seed = SEED_BASE["test"] + 7 * i
        for kind, kw in (("osem full", {"mode": "full"}), ("osem 5 %", {"mode": "lowdose", "dose": 0.05})):
            v = simulate_volume(seed, **kw)
            rows.append(_row(kind, seed, v["x_init"][0, 0], v["myocardium"]))
    blur = Blur(gaussian_kernel((1.0,) * 3, size=(7,) * 3, dtype=torch.float64))
    for family in FAMILIES:
        for seed in range(args.n):
            for defect in (False, True):
                ph = cardiac_phantom((64,) * 3, 6.0, defect=defect, generator=torch.Generator().manual_seed(seed), family=family)
                rows.append(_row(f"phantom {family}{' defect' if defect else ''}", seed, blur(ph["activity"].double()[None, None])[0, 0],
                                 ph["myocardium"]))
    print("| rows | ok | Dice median [min, max] | axis angle ° median [max] | polar-map mean abs Δ % median [max] |")
    print("|---|---|---|---|---|")
    for kind in dict.fromkeys(r["kind"] for r in rows):
        rs = [r for r in rows if r["kind"] == kind]
        ok = [r for r in rs if r["ok"]]
        if not ok:
            print(f"| {kind} | 0/{len(rs)} | | | |")
            continue
        d, a, p = (np.array([r[k] for r in ok]) for k in ("dice", "angle_deg", "polar_abs_diff"))
        print(f"| {kind} | {len(ok)}/{len(rs)} | {np.median(d):.2f} [{d.min():.2f}, {d.max():.2f}] | {np.median(a):.1f} [{a.max():.1f}] "
              f"| {np.median(p):.1f} [{p.max():.1f}] |")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1, default=float)


if __name__ == "__main__":
    main()
