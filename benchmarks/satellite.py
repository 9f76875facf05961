"""Cloud removal on held-out simulated scenes → benchmarks/results/satellite.md (+ satellite.json, satellite.png).

Usage:
    .venv/bin/python benchmarks/satellite.py [--n-test 32] [--cohort-dir /tmp/sat_cohort]

Data (``monai_diffrecon.training.satellite_cohort``): the project's simulator (4 optical bands incl. NIR, SAR VV/VH
with speckle, clouds with thickness and shadows) in SEN12MS-CR value conventions; test scenes use seeds 290 000+,
disjoint from training (90 000+). Methods: the cloudy input itself; DB-CR (the bundle's weights, SAR fusion by
cross-attention) with 1 and 5 bridge steps; the same bridge trained without SAR (``benchmarks/weights/dbcr_nosar``)
with 1 and 5 steps. Metrics: PSNR, SSIM, SAM (degrees), MAE on [0, 1] values — whole image and, for PSNR, the
cloud-covered pixels only (cloud thickness > 0.1) — and wall time per scene on this CPU.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from monai_diffrecon.metrics.satellite import cloud_removal_metrics
from monai_diffrecon.networks import dbcr_network, load_verified
from monai_diffrecon.samplers import DBCR
from monai_diffrecon.training.satellite_cohort import cached_satellite_cohort

ROOT = Path(__file__).resolve().parent
BUNDLE = ROOT.parent / "bundles" / "satellite_cloud_removal"
NOSAR = ROOT / "weights" / "dbcr_nosar"


def load(path: Path, sha_file: Path | None, use_sar: bool):
    sha = json.loads((BUNDLE / "configs" / "metadata.json").read_text())["model_sha256"] if sha_file is None else sha_file.read_text().split()[0]
    net = dbcr_network(optical_channels=4, sar_channels=2, size="small", use_sar=use_sar)
    return load_verified(net, str(path), sha).eval()


def run(method: str, sampler: DBCR | None, cohort: dict, use_sar: bool) -> list[dict]:
    rows = []
    for i in range(cohort["clear"].shape[0]):
        clear, cloudy, sar, cloud = (cohort[k][i:i + 1].float() for k in ("clear", "cloudy", "sar", "cloud"))
        t0 = time.perf_counter()
        if sampler is None:
            pred, nfe = cloudy, 0
        else:
            y = torch.cat([cloudy, sar], 1) if use_sar else cloudy
            with torch.no_grad():
                out = sampler(y, None, generator=torch.Generator().manual_seed(i), progress=False)
            pred, nfe = out.mean.clamp(0, 1), out.nfe
        dt = time.perf_counter() - t0
        m = cloud_removal_metrics(pred, clear)
        covered = (cloud[:, 0] > 0.1)
        if bool(covered.any()):
            mse = float((pred - clear).pow(2).mean(1)[covered].mean())
            m["psnr_cloud"] = 10 * math.log10(1 / max(mse, 1e-12))
        rows.append({"method": method, "scene": i, "nfe": nfe, "seconds": dt, "cloud_fraction": float(covered.float().mean()), **m})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-test", type=int, default=32)
    ap.add_argument("--cohort-dir", default="/tmp/sat_cohort")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "results" / "satellite.md"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    test = cached_satellite_cohort(Path(a.cohort_dir) / f"scenes_test_{a.n_test}.pt", a.n_test, "test", 128, progress=False)
    sar_net = load(BUNDLE / "models" / "model.pt", None, True)
    nosar_net = load(NOSAR / "model.pt", NOSAR / "model.sha256", False)
    rows = run("cloudy input", None, test, False)
    for steps in (1, 5):
        rows += run(f"DB-CR (SAR), {steps} step{'s' if steps > 1 else ''}", DBCR(sar_net, num_steps=steps), test, True)
        rows += run(f"bridge without SAR, {steps} step{'s' if steps > 1 else ''}", DBCR(nosar_net, num_steps=steps), test, False)
    stat = stats(rows)
    params = {"DB-CR": sum(p.numel() for p in sar_net.parameters()), "no-SAR": sum(p.numel() for p in nosar_net.parameters())}
    lines = ["# Cloud removal (DB-CR) on held-out simulated scenes", "",
             f"Generated {datetime.date.today()} by `.venv/bin/python benchmarks/satellite.py --n-test {a.n_test}`: {a.n_test} test scenes "
             "(128², seeds 290 000+, never used in training), SEN12MS-CR value conventions. Mean ± std over scenes; "
             "PSNR (cloud) = PSNR over the pixels under cloud (thickness > 0.1). Time = seconds per scene on this 2-core CPU.", ""]
    lines += table(rows)
    d_sar = stat("DB-CR (SAR), 1 step", "psnr")[0] - stat("bridge without SAR, 1 step", "psnr")[0]
    d_cloud = stat("DB-CR (SAR), 1 step", "psnr_cloud")[0] - stat("bridge without SAR, 1 step", "psnr_cloud")[0]
    lines += ["", f"Parameters: DB-CR {params['DB-CR'] / 1e6:.2f} M, bridge without SAR {params['no-SAR'] / 1e6:.2f} M "
              "(the paper's DB-CR: 18 M). Weights trained on a lent H100 in the same 290 s (`benchmarks/gpu_train.py`: DB-CR 1470 "
              "iterations, without SAR 1810), then EMA bias-corrected (`benchmarks/ema_bias_correct.py`: the trainers' EMA "
              "then kept 0.999ⁿ of the initial weights).", "", "## Targets", "",
              f"- SAR fusion helps (≥ 1 dB over no-SAR, 1 step): **{d_sar:+.2f} dB** whole image, {d_cloud:+.2f} dB under cloud — "
              + ("met." if d_sar >= 1 else "**missed**."),
              "- 1-step bridge vs a conditional DDPM from noise at equal parameters, and a UNet regressor of similar size: "
              "**not measured yet** (those two baselines are not trained).",
              "- The paper's SEN12MS-CR figures (PSNR 33.47, SSIM 0.922, SAM 4.740°, MAE 0.016) are on real data; these are "
              "simulated scenes and are not comparable number for number."]
    Path(a.out).write_text("\n".join(lines) + "\n")
    Path(a.out).with_suffix(".json").write_text(json.dumps({"rows": rows, "parameters": params, "n_test": a.n_test}, indent=1))
    picture(test, sar_net, nosar_net, Path(a.out).with_suffix(".png"))
    print("\n".join(lines))


def stats(rows: list[dict]):
    """``stat(method, key) → (mean, std)`` over the scenes of ``rows``."""

    def stat(meth, k):
        v = np.array([r[k] for r in rows if r["method"] == meth and k in r])
        return float(v.mean()), float(v.std())

    return stat


def table(rows: list[dict]) -> list[str]:
    """Markdown table, one row per method in order of first appearance."""
    stat = stats(rows)
    lines = ["| method | PSNR (dB) | PSNR cloud (dB) | SSIM | SAM (°) | MAE | NFE | s / scene |", "|---|---|---|---|---|---|---|---|"]
    for meth in dict.fromkeys(r["method"] for r in rows):
        p, ps = stat(meth, "psnr")
        pc, pcs = stat(meth, "psnr_cloud")
        s, ss = stat(meth, "ssim")
        sa, sas = stat(meth, "sam_deg")
        ma, _ = stat(meth, "mae")
        nfe, _ = stat(meth, "nfe")
        t, _ = stat(meth, "seconds")
        lines.append(f"| {meth} | {p:.2f} ± {ps:.2f} | {pc:.2f} ± {pcs:.2f} | {s:.3f} ± {ss:.3f} | {sa:.2f} ± {sas:.2f} | {ma:.4f} | {nfe:.0f} | {t:.2f} |")
    return lines


def picture(test: dict, sar_net, nosar_net, path: Path, n: int = 4) -> None:
    """Rows: scenes; columns: cloudy RGB, SAR VV, bridge without SAR, DB-CR, clear reference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def rgb(x):
        return (x[[2, 1, 0]].permute(1, 2, 0) * 3.0).clamp(0, 1).numpy()

    fig, axes = plt.subplots(n, 5, figsize=(12.5, 2.6 * n))
    for r in range(n):
        cloudy, sar, clear = (test[k][r:r + 1].float() for k in ("cloudy", "sar", "clear"))
        with torch.no_grad():
            a = DBCR(nosar_net)(cloudy, None, generator=torch.Generator().manual_seed(r), progress=False).mean.clamp(0, 1)
            b = DBCR(sar_net)(torch.cat([cloudy, sar], 1), None, generator=torch.Generator().manual_seed(r), progress=False).mean.clamp(0, 1)
        ims = [rgb(cloudy[0]), sar[0, 0].numpy(), rgb(a[0]), rgb(b[0]), rgb(clear[0])]
        for c, (im, title) in enumerate(zip(ims, ["cloudy input", "SAR VV", "bridge, no SAR", "DB-CR (SAR)", "clear reference"])):
            ax = axes[r, c]
            ax.imshow(im, cmap="gray" if im.ndim == 2 else None)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


if __name__ == "__main__":
    main()
