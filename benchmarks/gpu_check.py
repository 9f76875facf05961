"""Every bundle on the GPU against the same bundle on the CPU (issue 20, item 3): same input, same seed.

For each bundle of :func:`monai_diffrecon.bundles.list_bundles` it simulates one tiny input of the bundle's kind
(:func:`monai_diffrecon.simulate.simulate`: ``spect``, ``mri``, ``natural``, ``satellite``; the natural bundles read
the measurement of their task from the same folders, ``natural_reld`` its ``task: deblur`` default), runs the bundle
once with ``device="cuda"`` and once with ``device="cpu"`` (:func:`monai_diffrecon.bundles.run_bundle`, a few steps),
reads each case's reconstruction back from disk through ``OUT/summary.json`` (``recon.nii.gz``, ``restored.png`` or
``clear_pred.tif``) and reports, per bundle, the GPU−CPU max |Δ|, the relative L2 difference ``‖g − c‖/‖c‖``, the
PSNR of the GPU result against the CPU one (peak = max |c|), both wall times and the GPU run's peak GPU memory (a
bundle that allocated none ran on the CPU, whatever ``device`` said: reported as an error), as a markdown table headed
by the card's name (``torch.cuda.get_device_name``).

The random draws come from CPU generators on both devices (:mod:`monai_diffrecon.physics.functional.devices`), so the
two runs see the same noise: what differs is floating-point rounding (cuDNN/cuBLAS kernels, TF32 is switched off
here), amplified by each method's iterations.

Usage::

    python benchmarks/gpu_check.py                     # GPU vs CPU, writes $OUT/gpu_check.md (or --out FILE)
    python benchmarks/gpu_check.py --smoke             # CPU vs CPU, tiny: the two runs must agree bit for bit
    python benchmarks/gpu_check.py --bundles natural_reld satellite_cloud_removal

A second table runs the library cases of ``tests/device_cases.py`` (every sampler, registered operator and classical
reconstruction, tiny) with their inputs moved to the device and compares them with the CPU reference of
``tests/device_reference.pt``; a case that fails with a device error, or leaves an output off the device, fails the
check (exit status 1).

Without CUDA (and without ``--smoke``) it says so and exits with status 0.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

#: bundle → (simulator kind, overrides that make the run short). Other overrides come from the bundle's config.
SETTINGS: dict[str, tuple[str, dict]] = {
    "spect_cardiac_diffusion": ("spect", {"num_steps": 2}),
    "mri_multicoil_msm": ("mri", {"num_steps": 2}),
    "mri_multicoil_selfdb": ("mri", {"num_steps": 1}),
    "mri_multicoil_unfolding": ("mri", {"num_steps": 2}),
    "natural_blind_deblur": ("natural", {"num_iters": 4, "num_steps": 4}),
    "natural_reld": ("natural", {"inferer#num_iters": 4}),
    "natural_unfolding_deblur": ("natural", {"num_steps": 2}),
    "satellite_cloud_removal": ("satellite", {"num_steps": 1}),
}
#: the files a case folder holds the reconstruction in, by preference
OUTPUTS = ("recon.nii.gz", "restored.png", "clear_pred.tif")


def read_output(case_dir: Path) -> tuple[str, np.ndarray]:
    """``(file name, float64 array)`` of the reconstruction in a case folder."""
    for name in OUTPUTS:
        p = case_dir / name
        if not p.is_file():
            continue
        if name.endswith(".nii.gz"):
            import nibabel as nib

            return name, np.asarray(nib.load(str(p)).get_fdata(), dtype=np.float64)
        if name.endswith(".png"):
            from PIL import Image

            with Image.open(p) as im:
                return name, np.asarray(im).astype(np.float64)
        import tifffile

        return name, np.asarray(tifffile.imread(p), dtype=np.float64)
    raise FileNotFoundError(f"{case_dir}: none of {', '.join(OUTPUTS)}")


def read_reconstructions(out_dir: Path) -> dict[str, tuple[str, np.ndarray]]:
    """case id → (file, array), through ``summary.json``'s ``cases[i]["output"]`` (the case folder under ``out_dir``)."""
    summary = json.loads((out_dir / "summary.json").read_text())
    recs = {}
    for c in summary["cases"]:
        if c.get("status", "ok") != "ok":
            raise RuntimeError(f"{out_dir}: case {c.get('case')} failed: {c}")
        folder = Path(c["output"])
        recs[str(c["case"])] = read_output(folder if folder.is_absolute() else out_dir / folder)
    if not recs:
        raise RuntimeError(f"{out_dir}: summary.json lists no case")
    return recs


def compare(a: np.ndarray, ref: np.ndarray) -> dict:
    """max |a − ref|, ‖a − ref‖/‖ref‖ and the PSNR of ``a`` against ``ref`` (peak = max |ref|); real or complex."""
    if a.shape != ref.shape:
        raise RuntimeError(f"shapes differ: {a.shape} vs {ref.shape}")
    d = a - ref
    mse = float(np.mean(np.abs(d) ** 2))
    peak = float(np.abs(ref).max())
    return {"max_abs": float(np.abs(d).max()), "rel_l2": float(np.linalg.norm(d) / max(np.linalg.norm(ref), 1e-30)),
            "psnr_db": math.inf if mse == 0 else 10 * math.log10(max(peak, 1e-30) ** 2 / mse)}


def run_once(name: str, input_dir: Path, out_dir: Path, device: str, overrides: dict) -> tuple[float, float | None]:
    """Run the bundle once; returns the wall time in seconds (CUDA work finished) and, on a GPU, the peak GPU memory
    the run allocated in MB (0 means the bundle never used the GPU)."""
    import torch

    from monai_diffrecon.bundles import run_bundle

    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    run_bundle(name, input_dir=str(input_dir), output_dir=str(out_dir), device=device, progress=False, **overrides)
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - t0, (torch.cuda.max_memory_allocated() / 2**20 if cuda else None)


def check_bundle(name: str, work: Path, devices: tuple[str, str], seed: int, n: int, inputs: dict) -> dict:
    """Simulate (once per kind), run on both devices, compare every case."""
    from monai_diffrecon.simulate import simulate

    kind, overrides = SETTINGS[name]
    if kind not in inputs:
        inputs[kind] = work / f"input_{kind}"
        simulate(kind, inputs[kind], n=n, seed=seed, progress=False)
    outs, secs, mem = [], [], None
    for i, dev in enumerate(devices):
        out = work / f"{name}_{i}_{dev.replace(':', '')}"
        s, m = run_once(name, inputs[kind], out, dev, overrides)
        secs.append(s)
        mem = m if m is not None else mem
        outs.append(read_reconstructions(out))
    a, b = outs
    if sorted(a) != sorted(b):
        raise RuntimeError(f"{name}: the two runs wrote different cases ({sorted(a)} vs {sorted(b)})")
    worst = None
    for case in sorted(a):
        m = compare(a[case][1], b[case][1])
        m.update(case=case, file=a[case][0])
        if worst is None or m["rel_l2"] > worst["rel_l2"]:
            worst = m
    if mem is not None and mem == 0:
        raise RuntimeError(f"{name}: device={devices[0]!r} allocated no GPU memory — the bundle ran on the CPU")
    return {"bundle": name, "kind": kind, "cases": len(a), **worst, "seconds": secs, "gpu_mb": mem}


def check_cases(device: str) -> list[dict]:
    """The library cases of ``tests/device_cases.py`` (every sampler, registered operator, OSEM/MLEM, FBP, CG-SENSE,
    TV prox, noise models, masks, shift metric, transforms) with their inputs, operators and priors moved to ``device``
    (generators on the CPU), against the CPU reference recorded in ``tests/device_reference.pt``."""
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.device_cases import CASES, CPU_ONLY, REFERENCE, move_to

    ref = torch.load(REFERENCE, weights_only=True)
    rows = []
    for name, setup in CASES.items():
        if name in CPU_ONLY:
            continue
        try:
            run = move_to(setup(), device)
            t0 = time.perf_counter()
            out = run()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            secs = time.perf_counter() - t0
            wrong = sorted(k for k, v in out.items() if v.ndim and v.device.type != torch.device(device).type)
            worst = max((dict(compare(out[k].detach().cpu().numpy().astype(np.complex128 if v.is_complex() else np.float64),
                                      v.numpy().astype(np.complex128 if v.is_complex() else np.float64)), output=k)
                         for k, v in ref[name].items()), key=lambda m: (m["rel_l2"], m["max_abs"]))
            rows.append({"case": name, "outputs": len(out), **worst, "seconds": secs, "off_device": wrong})
        except Exception as e:  # noqa: BLE001 - a device error in one case is the finding; the others still run
            rows.append({"case": name, "error": f"{type(e).__name__}: {str(e)[:200]}"})
    return rows


def cases_table(rows: list[dict], device: str) -> str:
    note = ("`tests/device_cases.py` with inputs, operators and priors moved to the device (generators on the CPU), "
            "against `tests/device_reference.pt`; the worst output of each case.")
    lines = ["", f"## Library cases on {device} vs the CPU reference", "", note, "",
             "| case | outputs | worst output | max abs diff | rel. L2 | s | outputs not on the device |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['case']} | — | error: {r['error']} | | | | |")
        else:
            lines.append(f"| {r['case']} | {r['outputs']} | {r['output']} | {r['max_abs']:.3g} | {r['rel_l2']:.2e} | {r['seconds']:.2f} | "
                         f"{', '.join(r['off_device']) or 'none'} |")
    return "\n".join(lines) + "\n"


def table(rows: list[dict], devices: tuple[str, str], card: str, command: str) -> str:
    a, b = devices
    note = (f"Device: **{card}**; one tiny simulated input per kind, same seed on both devices (CPU generators), TF32 "
            "off. Differences are of the first device's result against the second's, worst case of the bundle; times are "
            "wall clock of one `run_bundle` call (weights loading, I/O and writing included).")
    lines = [f"# Bundles on {a} vs {b}", "", f"Command: `{command}`", "", note, "",
             f"| bundle | input | file | max abs diff | rel. L2 | PSNR vs {b} (dB) | {a} s | {b} s | speed-up | peak GPU MB |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['bundle']} | {r.get('kind', '')} | — | error: {r['error']} | | | | | | |")
            continue
        ta, tb = r["seconds"]
        psnr = "∞" if math.isinf(r["psnr_db"]) else f"{r['psnr_db']:.1f}"
        mb = "—" if r.get("gpu_mb") is None else f"{r['gpu_mb']:.0f}"
        lines.append(f"| {r['bundle']} | {r['kind']} | {r['file']} | {r['max_abs']:.3g} | {r['rel_l2']:.2e} | {psnr} | "
                     f"{ta:.2f} | {tb:.2f} | {tb / max(ta, 1e-9):.2f}× | {mb} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="CPU vs CPU (no GPU needed): the runs must agree bit for bit")
    p.add_argument("--bundles", nargs="*", default=None, help="bundle names (default: all of list_bundles())")
    p.add_argument("--out", default=None, help="markdown file (default: $OUT/gpu_check.md, else benchmarks/results/gpu_check.md)")
    p.add_argument("--work", default=None, help="scratch folder (default: a temporary one, removed afterwards)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n", type=int, default=1, help="simulated cases per kind")
    p.add_argument("--no-cases", action="store_true", help="skip the library cases (tests/device_cases.py)")
    a = p.parse_args(argv)

    import torch
    from monai.bundle import ConfigWorkflow  # noqa: F401 - imported before the timed runs, so the first is not charged

    import monai_diffrecon.workflows  # noqa: F401
    from monai_diffrecon.bundles import list_bundles

    if a.smoke:
        devices, card = ("cpu", "cpu"), "CPU"
    elif not torch.cuda.is_available():
        print("gpu_check: no CUDA device here — nothing to compare (use --smoke for the CPU-only check)")
        return 0
    else:
        devices, card = ("cuda", "cpu"), torch.cuda.get_device_name(0)
        torch.backends.cuda.matmul.allow_tf32 = False  # rounding differences only, not TF32's 10-bit mantissa
        torch.backends.cudnn.allow_tf32 = False
        torch.zeros(1, device="cuda")  # CUDA context created before the timed runs
    names = a.bundles or [b for b in list_bundles() if b in SETTINGS]
    unknown = [b for b in names if b not in SETTINGS]
    if unknown:
        print(f"gpu_check: no settings for {', '.join(unknown)} (known: {', '.join(SETTINGS)})", file=sys.stderr)
        return 2
    out_md = Path(a.out) if a.out else (Path(os.environ["OUT"]) / "gpu_check.md" if os.environ.get("OUT") else
                                        Path(__file__).parent / "results" / "gpu_check.md")
    command = "python benchmarks/gpu_check.py " + " ".join(argv if argv is not None else sys.argv[1:])
    rows, failed = [], False
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        work = Path(a.work) if a.work else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        inputs: dict = {}
        for name in names:
            try:
                r = check_bundle(name, work, devices, a.seed, a.n, inputs)
            except Exception as e:  # noqa: BLE001 - one bundle's failure is reported in the table, the others still run
                r, failed = {"bundle": name, "kind": SETTINGS[name][0], "error": f"{type(e).__name__}: {str(e)[:200]}"}, True
            rows.append(r)
            print(json.dumps(r, default=str), flush=True)
    text = table(rows, devices, card, command.strip())
    if not a.no_cases:
        case_rows = check_cases(devices[0])
        for r in case_rows:
            print(json.dumps(r, default=str), flush=True)
        failed = failed or any("error" in r or r["off_device"] for r in case_rows)
        text += cases_table(case_rows, devices[0])
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_md.write_text(text)
    print(f"gpu_check: wrote {out_md}")
    if a.smoke and any(r.get("max_abs", 0) != 0 for r in rows):
        print("gpu_check --smoke: two CPU runs with the same seed differ", file=sys.stderr)
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
