"""``diffrecon`` command-line entry point.

Commands:
    diffrecon --version
    diffrecon demo --output DIR [--quick] [--seed N]   built-in demo study → the SPECT bundle → DICOM, NIfTI, PNG
    diffrecon demo-osem --output DIR                   the classical OSEM demo (no network)
    diffrecon run BUNDLE --input DIR --output DIR [--set KEY=VALUE ...]
    diffrecon bundles                                  list the bundles (name, version, weights, task)
    diffrecon verify BUNDLE [--schema FILE]            metadata schema, weights sha256, network in/out
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from monai_diffrecon import __version__

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="diffrecon",
        description="Diffusion-model image reconstruction for MONAI (SPECT, multi-coil MRI, CT).",
    )
    p.add_argument("--version", action="version", version=f"monai_diffrecon {__version__}")
    sub = p.add_subparsers(dest="command")
    d = sub.add_parser("demo", help="simulate a low-dose cardiac SPECT/CT study (DICOM) and reconstruct it with the SPECT bundle")
    d.add_argument("--output", required=True, help="output folder (replaced atomically)")
    d.add_argument("--dose", type=float, default=0.1, help="dose fraction of the simulated acquisition (default 0.1)")
    d.add_argument("--samples", type=int, default=2, help="posterior samples (≥ 2 adds the std series)")
    d.add_argument("--steps", type=int, default=None, help="reverse diffusion steps (default: the bundle's)")
    d.add_argument("--seed", type=int, default=0, help="simulation and sampling seed")
    d.add_argument("--quick", action="store_true", help="tiny settings for smoke tests")
    d.add_argument("--no-progress", action="store_true", help="hide progress bars")
    o = sub.add_parser("demo-osem", help="simulate a cardiac SPECT study and reconstruct it with OSEM (no network)")
    o.add_argument("--output", required=True)
    o.add_argument("--quick", action="store_true")
    o.add_argument("--seed", type=int, default=0)
    o.add_argument("--no-progress", action="store_true")
    r = sub.add_parser("run", help="run a bundle's inference on a folder")
    r.add_argument("bundle", help="bundle name (see `diffrecon bundles`) or path")
    r.add_argument("--input", required=True, help="input folder (DICOM study, k-space files, …)")
    r.add_argument("--output", required=True, help="output folder (replaced atomically)")
    r.add_argument("--config", default="inference", help="config name under configs/ (default inference)")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config id (JSON value), e.g. num_samples=4")
    r.add_argument("--trust-config", action="store_true", help="allow running a bundle from outside this project")
    sub.add_parser("bundles", help="list the bundles")
    v = sub.add_parser("verify", help="check a bundle: metadata schema, weights sha256, network in/out shapes")
    v.add_argument("bundle")
    v.add_argument("--schema", default=None, help="local copy of MONAI's meta_schema JSON (the metadata URL needs internet)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help()
        return 0
    if args.command == "demo-osem":
        from monai_diffrecon.demo import DemoConfig, run_spect_demo

        cfg = DemoConfig.quick() if args.quick else DemoConfig()
        cfg.seed = args.seed
        metrics = run_spect_demo(args.output, cfg, progress=not args.no_progress)
        print(json.dumps({k: v for k, v in metrics.items() if k != "config"}, indent=2))
        print(f"wrote {args.output}/ (recon_osem_acpsf.nii.gz, demo.png, metrics.json, ...)")
        return 0
    if args.command == "demo":
        from monai_diffrecon.demo import run_bundle_demo

        metrics = run_bundle_demo(args.output, dose=args.dose, samples=args.samples, steps=args.steps, seed=args.seed,
                                  quick=args.quick, progress=not args.no_progress)
        print(json.dumps(metrics, indent=2))
        print(f"wrote {args.output}/ (dicom/, recon.nii.gz, osem.nii.gz, recon.png, metrics.json)")
        return 0
    if args.command == "bundles":
        from monai_diffrecon.bundles import describe_bundle, list_bundles

        for name in list_bundles():
            d = describe_bundle(name)
            print(f"{d['name']:<28} {d['version']:<7} {'weights' if d['weights'] else 'NO WEIGHTS':<10} {d['task']}")
        return 0
    if args.command == "verify":
        from monai_diffrecon.bundles import verify_bundle

        res = verify_bundle(args.bundle, args.schema)
        print(json.dumps(res, indent=2))
        return 0 if all(v == "ok" for v in res.values()) else 1
    if args.command == "run":
        from monai_diffrecon.bundles import run_bundle

        overrides = {}
        for kv in args.set:
            if "=" not in kv:
                raise SystemExit(f"--set expects KEY=VALUE, got {kv!r}")
            k, v = kv.split("=", 1)
            try:
                overrides[k] = json.loads(v)
            except json.JSONDecodeError:
                overrides[k] = v
        run_bundle(args.bundle, args.config, args.trust_config, input_dir=args.input, output_dir=args.output, **overrides)
        print(f"wrote {args.output}/")
        return 0
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
