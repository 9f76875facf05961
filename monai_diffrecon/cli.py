"""``diffrecon`` command-line entry point (``diffrecon --help`` shows the examples below).

Commands:
    diffrecon run BUNDLE --input DIR|FILE|LIST.json --output DIR [--overwrite] [--steps N] [--num-samples N] [--seed N]
                  [--device cpu|cuda|cuda:N] [--set KEY=VALUE ...] [--quiet] [--json] [--keep-going]
    diffrecon demo --output DIR [--quick]              built-in SPECT/CT study → the SPECT bundle → DICOM, NIfTI, PNG
    diffrecon demo-osem --output DIR                   the classical OSEM demo (no network)
    diffrecon simulate {spect,mri,natural,satellite} --output DIR [--n N] [--seed N]
    diffrecon list                                     bundles with a one-line task and their measured headline numbers
    diffrecon verify BUNDLE [--schema FILE]            metadata schema (shipped offline copy), weights sha256, network in/out
    diffrecon export BUNDLE OUT.zip                    model-zoo style archive of one bundle (runs with the package alone)
    diffrecon bench                                    operator contract checks and timings on this machine
    diffrecon shift FOLDER BUNDLE_P BUNDLE_Q [--sigmas N] estimated KL(p‖q) between two bundles' priors from the
                                                       corrupted measurements of p in FOLDER (*.npz: y + mask)
    diffrecon train BUNDLE [--config train] [--minutes M] [--iterations N] [--work DIR] [--resume] [--device cpu]
                    [--checkpoint-minutes M] [--set KEY=VALUE ...] [--ledger PATH] [--promote [--dry-run]]
                                                       resumable training campaign in a work folder outside the
                                                       repository, one ledger entry per session; --promote: the gate
                                                       that copies the EMA weights into the bundle only if they beat
                                                       the shipped ones (monai_diffrecon.training.campaign)

Output folders (every command that writes one): a folder that exists and is not empty is refused unless
``--overwrite`` is given, and even then only a folder diffrecon wrote before (its ``manifest.json``, unchanged) is
replaced — never an unrelated folder or a file; an output equal to the input, inside it or containing it is refused.
Everything is written into a hidden staging folder and renamed into place, so a crash leaves nothing half-written.
``run`` always writes ``OUT/<case id>/…`` per study plus ``OUT/summary.json`` and ``OUT/manifest.json``.

Exit codes: 0 success; 1 a check failed (``verify``) or an unexpected error; 2 bad input (a typed
:mod:`monai_diffrecon.errors` error: unreadable or inconsistent study, refused output, bad option — one line on stderr,
no traceback, nothing written); 3 partial (cohort run with ``--keep-going`` where some studies failed; see
``summary.json``); 130 interrupted (Ctrl-C). ``DIFFRECON_DEBUG=1`` shows the traceback of an unexpected error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Sequence

from monai_diffrecon import __version__
from monai_diffrecon.bundles import CLI_DEFAULTS

__all__ = ["main", "EXIT_OK", "EXIT_FAILED", "EXIT_BAD_INPUT", "EXIT_PARTIAL", "EXIT_INTERRUPTED"]

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_PARTIAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

EXAMPLES = """examples:
  diffrecon demo --output outputs/demo
  diffrecon simulate mri --output cases/mri --n 4
  diffrecon run mri_multicoil_msm --input cases/mri --output out/mri --num-samples 4 --json
  diffrecon run spect_cardiac_diffusion --input /data/study_001 --output out/s001 --steps 10 --seed 1
  diffrecon run spect_cardiac_diffusion --input cohort.json --output out/cohort --keep-going
  torchrun --nproc_per_node=2 -m monai_diffrecon.cli run spect_cardiac_diffusion --input cohort.json --output out/cohort
  diffrecon list
  diffrecon verify spect_cardiac_diffusion
  diffrecon shift measurements/ bundle_in_distribution bundle_other --json
  diffrecon train natural_reld --minutes 30 && diffrecon train natural_reld --minutes 30 --resume
  diffrecon train natural_reld --promote

output folders: a non-empty --output is refused unless --overwrite is given, and even then only an earlier diffrecon
output (its manifest.json, unchanged) is replaced, never an unrelated folder or a file; --output may not be, contain or
lie inside the input. Writing goes through a hidden staging folder renamed into place. `run` writes OUT/<case id>/...
for every study, plus OUT/summary.json and OUT/manifest.json.

exit codes: 0 ok, 1 check failed / unexpected error, 2 bad input, 3 partial (some cohort studies failed), 130 interrupted
"""

OUTPUT_HELP = "output folder: must not exist or be empty, unless --overwrite replaces an earlier diffrecon output"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="diffrecon",
        description="Diffusion-model image reconstruction for MONAI: SPECT/CT (DICOM), multi-coil MRI (k-space), "
                    "natural-image restoration and satellite cloud removal bundles.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"monai_diffrecon {__version__}")
    sub = p.add_subparsers(dest="command")
    d = sub.add_parser("demo", help="simulate a low-dose cardiac SPECT/CT study (DICOM) and reconstruct it with the SPECT bundle")
    d.add_argument("--output", required=True, help=OUTPUT_HELP)
    d.add_argument("--overwrite", action="store_true", help="replace an earlier diffrecon output in --output")
    d.add_argument("--dose", type=float, default=0.1, help="dose fraction of the simulated acquisition (default 0.1)")
    d.add_argument("--samples", type=int, default=2, help="posterior samples (≥ 2 adds the std series)")
    d.add_argument("--steps", type=int, default=None, help="reverse diffusion steps (default: the bundle's)")
    d.add_argument("--seed", type=int, default=0, help="simulation and sampling seed")
    d.add_argument("--quick", action="store_true", help="tiny settings for smoke tests")
    d.add_argument("--no-progress", action="store_true", help="hide progress bars")
    o = sub.add_parser("demo-osem", help="simulate a cardiac SPECT study and reconstruct it with OSEM (no network)")
    o.add_argument("--output", required=True, help=OUTPUT_HELP)
    o.add_argument("--overwrite", action="store_true", help="replace an earlier diffrecon output in --output")
    o.add_argument("--quick", action="store_true")
    o.add_argument("--seed", type=int, default=0)
    o.add_argument("--no-progress", action="store_true")
    r = sub.add_parser("run", help="run a bundle's inference on a study, a folder of studies or a JSON list of studies",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("bundle", help="bundle name (see `diffrecon list`) or path")
    r.add_argument("--input", required=True, help="input folder (DICOM study, k-space files, …) or a .json list of such inputs "
                                                 "(cohort: one output case per entry, sharded across torchrun ranks)")
    r.add_argument("--output", required=True, help=OUTPUT_HELP + "; receives OUT/<case id>/..., summary.json, manifest.json")
    r.add_argument("--overwrite", action="store_true", help="replace an earlier diffrecon output in --output (never a foreign folder or file)")
    r.add_argument("--config", default=CLI_DEFAULTS["config"], help=f"config name under configs/ (default {CLI_DEFAULTS['config']})")
    r.add_argument("--steps", type=int, default=None, help="sampler steps (config id num_steps)")
    r.add_argument("--num-samples", type=int, default=None, help="posterior samples (≥ 2 also writes the posterior std)")
    r.add_argument("--seed", type=int, default=None, help="sampling seed")
    r.add_argument("--device", default=None, help="torch device: cpu, cuda or cuda:N (default: the bundle's, cpu)")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config id (JSON value), e.g. num_samples=4")
    r.add_argument("--quiet", action="store_true", help="no progress bars, no log messages below WARNING")
    r.add_argument("--json", action="store_true", help="print exactly one JSON document on stdout at the end (the run's "
                                                       "summary.json with bundle and output); all logging goes to stderr")
    r.add_argument("--keep-going", action="store_true", help="cohort: record a failing study in summary.json and go on (exit 3)")
    r.add_argument("--trust-config", action="store_true", help="allow running a bundle from outside this project")
    sub.add_parser("list", help="list the bundles with their task and measured headline numbers")
    sub.add_parser("bundles", help="alias of list")
    sm = sub.add_parser("simulate", help="write example inputs: spect (DICOM), mri (fastMRI HDF5), natural (PNG), satellite (TIFF)")
    sm.add_argument("kind", choices=("spect", "mri", "natural", "satellite"))
    sm.add_argument("--output", required=True, help=OUTPUT_HELP)
    sm.add_argument("--overwrite", action="store_true", help="replace an earlier diffrecon output in --output")
    sm.add_argument("--n", type=int, default=2, help="number of studies / files / images / scenes")
    sm.add_argument("--seed", type=int, default=None, help="first seed (default: the held-out test seeds)")
    sm.add_argument("--quiet", action="store_true")
    sub.add_parser("bench", help="operator contract checks (adjoint, prox) and timings on this machine")
    v = sub.add_parser("verify", help="check a bundle: metadata schema, weights sha256, network in/out shapes")
    v.add_argument("bundle")
    v.add_argument("--schema", default=None, help="MONAI's metadata schema JSON (default: the copy shipped with the package)")
    e = sub.add_parser("export", help="write a model-zoo style archive (.zip) of one bundle")
    e.add_argument("bundle")
    e.add_argument("archive", help="the .zip to write (must not exist)")
    sh = sub.add_parser("shift", help="distribution shift KL(p||q) between two bundles' diffusion priors, from corrupted measurements of p",
                        description="Measurement-domain KL estimate (arXiv 2505.11482, Theorem 1; W = E[P]^-1/2). FOLDER holds *.npz "
                                    "files with 'y' (the measurement, zero where unobserved) and 'mask' (0/1), shape (C, H, W) as "
                                    "the priors' input; or 'image' only (clean samples: the image-domain estimate).")
    sh.add_argument("folder")
    sh.add_argument("bundle_p", help="the bundle whose training distribution the measurements come from")
    sh.add_argument("bundle_q")
    sh.add_argument("--sigmas", type=int, default=40, choices=range(2, 101), metavar="N",
                    help="first N (2-100) points of the paper's σ grid (100 linear points from 0.002 to 80; it uses 40)")
    sh.add_argument("--seed", type=int, default=0)
    sh.add_argument("--json", action="store_true", help="print the estimate and its σ curve as JSON")
    sh.add_argument("--trust-config", action="store_true", help="allow bundles outside the project's bundles/ folder")
    t = sub.add_parser("train", help="train a bundle's network in a resumable campaign (work folder outside the repository, ledger entry)",
                       description="Train BUNDLE's configs/<config>.json (MONAI ConfigParser, as `python -m monai.bundle run` would) in a work "
                                   "folder outside the repository: checkpoints every --checkpoint-minutes, stops cleanly at the wall budget "
                                   "or on SIGTERM (saved, exit 0), --resume continues bit-exactly, and each session appends one entry to "
                                   "the training ledger. --promote runs the gate instead: the work folder's EMA weights replace the "
                                   "bundle's only if they score better on the same fixed validation draws.")
    t.add_argument("bundle")
    t.add_argument("--config", default="train", help="train config under configs/ (default train; an overlay such as train_kernel is read over train.json)")
    t.add_argument("--minutes", type=float, default=None, help="wall budget of this session")
    t.add_argument("--iterations", type=int, default=None, help="iteration to stop at (default: the config's max_iterations)")
    t.add_argument("--work", default=None, help="work folder (default ~/.cache/monai_diffrecon/train/<bundle>/<recipe>); never inside the repository")
    t.add_argument("--resume", action="store_true", help="continue the work folder's checkpoint (same bundle, config and recipe)")
    t.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:N)")
    t.add_argument("--checkpoint-minutes", type=float, default=3.0, help="wall minutes between checkpoints (default 3)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="recipe override of a config id (JSON value), e.g. batch_size=32")
    t.add_argument("--ledger", default=None, help="ledger JSON to append to (default benchmarks/results/training_ledger.json in the checkout)")
    t.add_argument("--promote", action="store_true", help="gate: copy the work folder's EMA weights into the bundle's models/ only if they beat the shipped ones")
    t.add_argument("--dry-run", action="store_true", help="with --promote: score both weights and say whether they would be promoted; copy nothing")
    t.add_argument("--evidence", default=None, metavar="FILE", help="with --promote, when the task changed (the shipped weights do not fit "
                   "the new network): the benchmark's validation comparison (e.g. benchmarks/spect.py --gate WORK)")
    t.add_argument("--trust-config", action="store_true", help="allow a bundle outside the project's bundles/ folder")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (see module doc). Whatever the command prints for the user goes to stdout;
    everything else (progress, MONAI's and our log messages, stray prints) goes to stderr while it runs."""
    from monai_diffrecon.errors import DiffReconError

    args = _parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded by `train` in the ledger
    if args.command is None:
        _parser().print_help()
        return EXIT_OK
    stdout = sys.stdout
    try:
        with contextlib.redirect_stdout(sys.stderr), _quiet(getattr(args, "quiet", False)):
            _logging_to_stderr()
            code, text = _dispatch(args)
        if text:
            print(text, file=stdout)
        return code
    except DiffReconError as e:
        print(f"diffrecon: error: {type(e).__name__}: {_one_line(e)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("diffrecon: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as e:  # the file system refused (permissions, disk full, …): the path and the reason, no traceback
        where = f"{e.filename}: " if e.filename else ""
        print(f"diffrecon: error: {where}{e.strerror or _one_line(e)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as e:  # noqa: BLE001 - a bug: one line (the traceback with DIFFRECON_DEBUG=1)
        if os.environ.get("DIFFRECON_DEBUG"):
            raise
        print(f"diffrecon: internal error: {type(e).__name__}: {_one_line(e)[:500]} (set DIFFRECON_DEBUG=1 for the traceback; "
              "please report it)", file=sys.stderr)
        return EXIT_FAILED


def _logging_to_stderr() -> None:
    """Route every existing stream handler that writes to stdout (MONAI's module loggers do) to stderr."""
    for lg in [logging.getLogger(), *(v for v in logging.Logger.manager.loggerDict.values() if isinstance(v, logging.Logger))]:
        for h in lg.handlers:
            if isinstance(h, logging.StreamHandler) and getattr(h, "stream", None) in (sys.__stdout__, sys.stdout):
                h.setStream(sys.stderr)


@contextlib.contextmanager
def _quiet(on: bool):
    """``--quiet``: log messages below WARNING dropped while the command runs."""
    if on:
        logging.disable(logging.INFO)
    try:
        yield
    finally:
        if on:
            logging.disable(logging.NOTSET)


def _overrides(args) -> dict:
    from monai_diffrecon.errors import InvalidValueError

    overrides = {}
    for kv in args.set:
        if "=" not in kv:
            raise InvalidValueError(f"--set expects KEY=VALUE, got {kv!r}")
        k, v = kv.split("=", 1)
        try:
            overrides[k] = json.loads(v)
        except json.JSONDecodeError:
            overrides[k] = v
    for flag, key in (("steps", "num_steps"), ("num_samples", "num_samples"), ("seed", "seed")):
        if getattr(args, flag) is not None:
            overrides[key] = getattr(args, flag)
    if args.device is not None:
        overrides["device"] = _device(args.device)
    if args.quiet:
        overrides["progress"] = False
    return overrides


def _device(name: str):
    """``--device``: a torch device that exists on this machine (typed error otherwise)."""
    import torch

    from monai_diffrecon.errors import InvalidValueError

    try:
        dev = torch.device(name)
    except RuntimeError:
        raise InvalidValueError(f"--device {name}: not a torch device (cpu, cuda, cuda:N)") from None
    if dev.type == "cuda" and (not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()):
        raise InvalidValueError(f"--device {name}: no such CUDA device on this machine "
                                f"({torch.cuda.device_count() if torch.cuda.is_available() else 0} visible)")
    if dev.type not in ("cpu", "cuda"):
        raise InvalidValueError(f"--device {name}: only cpu and cuda devices are supported")
    return dev


def _dispatch(args) -> tuple[int, str]:
    """Run one command; returns ``(exit code, what to print on stdout)``."""
    if args.command == "demo-osem":
        from monai_diffrecon.demo import DemoConfig, run_spect_demo

        cfg = DemoConfig.quick() if args.quick else DemoConfig()
        cfg.seed = args.seed
        metrics = run_spect_demo(args.output, cfg, progress=not args.no_progress, overwrite=args.overwrite)
        return EXIT_OK, (json.dumps({k: v for k, v in metrics.items() if k != "config"}, indent=2)
                         + f"\nwrote {args.output}/ (recon_osem_acpsf.nii.gz, demo.png, metrics.json, ...)")
    if args.command == "demo":
        from monai_diffrecon.demo import run_bundle_demo

        metrics = run_bundle_demo(args.output, dose=args.dose, samples=args.samples, steps=args.steps, seed=args.seed,
                                  quick=args.quick, progress=not args.no_progress, overwrite=args.overwrite)
        return EXIT_OK, json.dumps(metrics, indent=2) + f"\nwrote {args.output}/ (study/: dicom/, recon.nii.gz, osem.nii.gz, recon.png, metrics.json; summary.json)"
    if args.command in ("list", "bundles"):
        from monai_diffrecon.bundles import describe_bundle, list_bundles

        lines = []
        for name in list_bundles():
            d = describe_bundle(name)
            lines.append(f"{d['name']:<28} {d['version']:<7} {'weights' if d['weights'] else 'NO WEIGHTS':<10} {d['task']}")
            lines += [f"{'':<28} {k}: {v}" for k, v in d["headline"].items()]
        return EXIT_OK, "\n".join(lines)
    if args.command == "verify":
        from monai_diffrecon.bundles import verify_bundle

        res = verify_bundle(args.bundle, args.schema)
        return (EXIT_OK if all(v == "ok" for v in res.values()) else EXIT_FAILED), json.dumps(res, indent=2)
    if args.command == "export":
        from monai_diffrecon.bundles import export_bundle

        return EXIT_OK, str(export_bundle(args.bundle, args.archive))
    if args.command == "simulate":
        from monai_diffrecon.simulate import simulate

        return EXIT_OK, "\n".join(simulate(args.kind, args.output, args.n, args.seed, progress=not args.quiet, overwrite=args.overwrite))
    if args.command == "bench":
        from monai_diffrecon.physics.testing import quick_bench

        return EXIT_OK, quick_bench()
    if args.command == "run":
        return _run(args)
    if args.command == "shift":
        return _shift(args)
    if args.command == "train":
        return _train(args)
    return EXIT_FAILED, ""  # pragma: no cover


def _shift(args) -> tuple[int, str]:
    import torch

    from monai_diffrecon.bundles import bundle_prior
    from monai_diffrecon.errors import ShapeError
    from monai_diffrecon.metrics.shift import default_sigmas, denoiser_from_prior, kl_from_denoisers, read_measurements

    samples, masks = read_measurements(args.folder)
    priors = [bundle_prior(b, args.trust_config) for b in (args.bundle_p, args.bundle_q)]
    for b, p in zip((args.bundle_p, args.bundle_q), priors):
        ch = getattr(p.network, "in_channels", None)
        if ch is not None and ch != samples.shape[1]:
            raise ShapeError(f"{args.folder}: {samples.shape[1]}-channel measurements, but {b}'s prior takes {ch} channels")
    est = kl_from_denoisers(*(denoiser_from_prior(p) for p in priors), samples, default_sigmas(args.sigmas), masks=masks,
                            generator=torch.Generator().manual_seed(args.seed))
    if args.json:
        return EXIT_OK, json.dumps({"kl": est.kl, "domain": est.domain, "n": samples.shape[0], "sigmas": est.sigmas.tolist(),
                                    "integrand": est.integrand.tolist()}, indent=1)
    return EXIT_OK, f"KL({args.bundle_p} || {args.bundle_q}) ≈ {est.kl:.4g} nats ({est.domain} domain, {samples.shape[0]} samples)"


def _train(args) -> tuple[int, str]:
    from monai_diffrecon.bundles import bundle_path
    from monai_diffrecon.training import campaign

    overrides = {k: v for k, v in _overrides(argparse.Namespace(set=args.set, steps=None, num_samples=None, seed=None, device=None,
                                                                 quiet=False)).items()}
    root = bundle_path(args.bundle, args.trust_config)
    configs = campaign.config_files(root, args.config)
    work = args.work or campaign.default_work_dir(root.name, campaign.recipe_id(campaign.recipe_of(configs, overrides)))
    if args.promote:
        res = campaign.promote(root, work, trust_config=args.trust_config, device=str(_device(args.device)), dry_run=args.dry_run,
                               evidence=args.evidence)
        passed = res["promoted"] or (args.dry_run and "missed by" not in res["reason"])
        if not passed:
            print(f"diffrecon: promotion refused: {res['reason']}", file=sys.stderr)
        return (EXIT_OK if passed else EXIT_FAILED), json.dumps(res, indent=1, default=str, ensure_ascii=False)
    entry = campaign.train(root, args.config, minutes=args.minutes, iterations=args.iterations, work=work, resume=args.resume,
                           device=str(_device(args.device)), checkpoint_minutes=args.checkpoint_minutes, overrides=overrides,
                           ledger=args.ledger or "default", trust_config=args.trust_config, progress=not args.quiet,
                           command=" ".join(["diffrecon", *args.argv]))
    it = entry["iterations"]
    return EXIT_OK, (f"{entry['bundle']} ({entry['recipe_id']}): iterations {it['start']} -> {it['end']} of {it['target']} "
                     f"(stopped: {entry['stopped']}), {entry['cpu_hours']:.3f} CPU-hours, {entry['wall_seconds']:.0f} s; "
                     f"checkpoint in {entry['work']}; ledger entry appended")


def _run(args) -> tuple[int, str]:
    from pathlib import Path

    from monai_diffrecon.bundles import bundle_path, run_bundle
    from monai_diffrecon.io.staging import check_output
    from monai_diffrecon.workflows.base import SUMMARY

    overrides = _overrides(args)
    bundle_path(args.bundle, args.trust_config)  # an unknown bundle is reported before anything else
    if Path(args.input).suffix == ".json" and Path(args.input).is_file():
        from monai_diffrecon.cohort import read_cohort_list, run_cohort

        summary = run_cohort(args.bundle, read_cohort_list(args.input), args.output, overrides, args.keep_going, args.trust_config,
                             overwrite=args.overwrite)
        if summary is None:  # another rank writes the summary
            return EXIT_OK, ""
        code = EXIT_PARTIAL if summary["failed"] else EXIT_OK
    else:
        check_output(args.output, [args.input], args.overwrite)  # refused before the bundle loads (checked again when written)
        run_bundle(args.bundle, args.config, args.trust_config, input_dir=args.input, output_dir=args.output, overwrite=args.overwrite,
                   **overrides)
        summary, code = json.loads((Path(args.output) / SUMMARY).read_text()), EXIT_OK
    if args.json:
        return code, json.dumps({"bundle": args.bundle, "output": str(args.output), **summary}, indent=1, default=str)
    if args.quiet:
        return code, ""
    return code, f"wrote {args.output}/ ({summary['ok']}/{summary['n_cases']} studies: {', '.join(c['output'] for c in summary['cases'] if c['status'] == 'ok')}; summary.json)"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
