"""Operator speed, ours vs the field's libraries, in one process → benchmarks/results/operators.md.

Usage:
    make bench            # builds .venv-bench (torch 2.14.1 + torchvision + deepinv + pytomography), runs this

Each row times forward + adjoint (median of ``--repeats`` runs after one warm-up) of our operator and of the peer's
on the same inputs, with the same torch, the same number of threads, in the same run, and reports the ratio
ours / theirs (< 1: ours is faster). One-off construction time (our sparse tables, their set-up) is reported
separately. Outputs are compared too, so the two sides do the same work:

* MRI (8 coils, 256², batch 4): ``MultiCoilMRI`` vs ``deepinv.physics.MultiCoilMRI`` (real/imag channels).
* SPECT (64³, 64 and 120 views, attenuation + PSF): ``SPECTProjector`` vs PyTomography ``SPECTSystemMatrix``
  (deepinv has no SPECT operator). PyTomography has no batch axis: batch 1.
* CT (256², 180 views over 180°): ``ParallelBeamCT`` vs ``deepinv.physics.Tomography`` (parallel beam,
  ``circle=False``, ``normalize=False``).
"""

from __future__ import annotations

import argparse
import datetime
import math
import platform
import statistics
import time
from pathlib import Path

import torch

from monai_diffrecon.physics import CollimatorPSF, MultiCoilMRI, ParallelBeamCT, SPECTProjector, birdcage_maps, random_lines_mask
from monai_diffrecon.physics.validation import _pytomography_system, _thorax

OUT = Path(__file__).parent / "results" / "operators.md"


def timed(fn, repeats: int) -> float:
    fn()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def build_time(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def bench_mri(repeats: int) -> dict:
    import deepinv as dinv

    B, C, N = 4, 8, 256
    maps = birdcage_maps(C, (N, N), dtype=torch.complex64)
    mask = random_lines_mask(N, 4, 20, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    x = torch.complex(torch.randn(B, 1, N, N, generator=g), torch.randn(B, 1, N, N, generator=g))
    ours, t_ours = build_time(lambda: MultiCoilMRI(maps, mask))
    theirs, t_theirs = build_time(lambda: dinv.physics.MultiCoilMRI(mask=mask.expand(1, 1, N, N)[0].clone(), coil_maps=maps.clone(), device="cpu"))
    x2 = torch.cat([x.real, x.imag], dim=1)  # deepinv: (B, 2, H, W)

    def run_ours():
        ours.adjoint(ours(x))

    def run_theirs():
        theirs.A_adjoint(theirs.A(x2))

    y_o = ours(x)
    y_t = theirs.A(x2)  # (B, 2, C, H, W)
    y_t = torch.complex(y_t[:, 0], y_t[:, 1])
    diff = float((y_o - y_t).norm() / y_t.norm())
    b_o = ours.adjoint(y_o)
    b_t = theirs.A_adjoint(torch.stack([y_o.real, y_o.imag], dim=1))  # (B, 2, H, W)
    bdiff = float((b_o[:, 0] - torch.complex(b_t[:, 0], b_t[:, 1])).norm() / b_o.norm())
    return {"name": "MRI 8 coils 256², batch 4, R = 4", "peer": f"deepinv {dinv.__version__} MultiCoilMRI",
            "ours": timed(run_ours, repeats), "theirs": timed(run_theirs, repeats), "build_ours": t_ours, "build_theirs": t_theirs,
            "agreement": f"forward rel. diff {diff:.1e}, adjoint {bdiff:.1e}"}


def bench_spect(views: int, repeats: int) -> dict:
    import pytomography

    n = 64
    x, mu = _thorax(n)
    angles = torch.arange(views, dtype=torch.float64) * (360.0 / views)
    psf = CollimatorPSF(2.0, 0.055)
    ours, t_ours = build_time(lambda: SPECTProjector(angles, 4.42, mu, psf, radii_mm=250.0))
    theirs, t_theirs = build_time(lambda: _pytomography_system(angles, 4.42, mu, psf, 250.0, (n, n, n)))
    x5 = x[None, None]

    def run_ours():
        ours.adjoint(ours(x5))

    def run_theirs():
        theirs.backward(theirs.forward(x))

    diff = float((ours(x5)[0, 0] - theirs.forward(x)).norm() / theirs.forward(x).norm())
    ver = getattr(pytomography, "__version__", "3.x")
    return {"name": f"SPECT 64³, {views} views, attenuation + PSF", "peer": f"PyTomography {ver} SPECTSystemMatrix",
            "ours": timed(run_ours, repeats), "theirs": timed(run_theirs, repeats), "build_ours": t_ours, "build_theirs": t_theirs,
            "agreement": f"forward rel. diff {diff:.1e}"}


def bench_ct(repeats: int) -> dict:
    import deepinv as dinv

    N, V = 256, 180
    angles = torch.arange(V, dtype=torch.float32) * (180.0 / V)
    theirs, t_theirs = build_time(lambda: dinv.physics.Tomography(angles=angles, img_width=N, circle=False, normalize=False, device="cpu"))
    ii, jj = torch.meshgrid(torch.arange(N) - (N - 1) / 2, torch.arange(N) - (N - 1) / 2, indexing="ij")
    x = (((ii / 90) ** 2 + (jj / 70) ** 2) < 1).float()[None, None]
    D = theirs.A(x).shape[-2]  # deepinv pads the image to its diagonal: same detector count for both
    ours, t_ours = build_time(lambda: ParallelBeamCT(angles, D, (N, N)))

    def run_ours():
        ours.adjoint(ours(x))

    def run_theirs():
        theirs.A_adjoint(theirs.A(x))

    # angle origin/direction conventions differ; compare the total line-integral mass per view (= object mass)
    so = ours(x).sum(dim=-1).mean()  # ours: (B, 1, V, D)
    st = theirs.A(x).sum(dim=-2).mean()  # deepinv: (B, 1, D, V)
    return {"name": f"CT parallel beam 256², 180 views, {D} detectors", "peer": f"deepinv {dinv.__version__} Tomography",
            "ours": timed(run_ours, repeats), "theirs": timed(run_theirs, repeats), "build_ours": t_ours, "build_theirs": t_theirs,
            "agreement": f"mean view sum ratio {float(so / st):.4f}"}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = [bench_mri(args.repeats), bench_spect(64, args.repeats), bench_spect(120, args.repeats), bench_ct(args.repeats)]
    lines = [
        "# Operator speed: forward + adjoint, ours vs peers (same process, same torch)",
        "",
        f"Generated by `make bench` (`.venv-bench/bin/python benchmarks/operators.py --repeats {args.repeats} --threads {args.threads}`) on "
        f"{datetime.date.today()}: {platform.machine()} CPU, torch {torch.__version__}, {torch.get_num_threads()} threads, float32, "
        "median of the repeats after a warm-up.",
        "",
        "| operator | peer | ours (s) | peer (s) | ratio ours/peer | goal ≤ 1.0 | build ours / peer (s) | outputs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = r["ours"] / r["theirs"]
        lines.append(
            f"| {r['name']} | {r['peer']} | {r['ours']:.4f} | {r['theirs']:.4f} | **{ratio:.2f}** | {'met' if ratio <= 1.0 else 'MISSED'} | "
            f"{r['build_ours']:.2f} / {r['build_theirs']:.2f} | {r['agreement']} |"
        )
    lines += [
        "",
        "Notes: our SPECT and CT adjoints are exact transposes; PyTomography's back-projection rotates back and",
        "deepinv's Tomography adjoint is an interpolated back-projection (its docs: 'small numerical errors'), so the",
        "peers' adjoints do slightly different (approximate) work. Build time is paid once per geometry.",
        "",
    ]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
