"""Locating, running, verifying and exporting the project's MONAI bundles (``diffrecon run <bundle> --input … --output …``).

Bundles (MONAI model-zoo layout) ship inside the package as data: :data:`BUNDLES_DIR` is found through
``importlib.resources`` (``monai_diffrecon/bundle_data`` in an installed wheel; the checkout's ``bundles/`` folder in an
editable install), and so are the configs shared by every bundle (:data:`SHARED_CONFIGS`: the logging configuration,
the CLI defaults, MONAI's metadata schema for offline verification). A path to any bundle folder works too. Running
goes through MONAI's ``ConfigWorkflow`` with the bundle's metadata, so the same configs also run with
``python -m monai.bundle run --config_file bundles/<name>/configs/inference.json --bundle_root bundles/<name>
--input_dir … --output_dir …``; :func:`export_bundle` writes a model-zoo style archive of one bundle.

Security: configs are executable (``_target_`` calls arbitrary callables even with ``MONAI_EVAL_EXPR=0``), so only
bundles inside this project's ``bundles/`` folder run unless ``trust_config=True`` is passed explicitly.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from monai_diffrecon.errors import InvalidValueError, OutputError, unwrap

__all__ = ["BUNDLES_DIR", "SHARED_CONFIGS", "META_SCHEMA", "LOGGING_CONF", "CLI_DEFAULTS", "bundle_path", "run_bundle", "bundle_prior", "bundle_inferer",
           "list_bundles", "describe_bundle", "verify_bundle", "export_bundle", "net_forward_args"]


def _data_dir(package: str, checkout_folder: str) -> Path:
    """A data folder shipped as ``monai_diffrecon.<package>`` (wheel), else the checkout's ``<checkout_folder>``."""
    d = Path(str(resources.files("monai_diffrecon"))) / package
    return d if d.is_dir() else Path(__file__).resolve().parent.parent / checkout_folder


BUNDLES_DIR = _data_dir("bundle_data", "bundles")
SHARED_CONFIGS = _data_dir("shared_configs", "configs")
META_SCHEMA = SHARED_CONFIGS / "meta_schema_20240725.json"  # verbatim copy of MONAI's published metadata schema
LOGGING_CONF = SHARED_CONFIGS / "logging.conf"  # every bundle run logs through it (to stderr)
CLI_DEFAULTS = json.loads((SHARED_CONFIGS / "cli.json").read_text())
# model-zoo convention: these configs only override their base (``--config_file "['inference.json','evaluate.json']"``)
OVERLAYS = CLI_DEFAULTS["overlays"]


def list_bundles() -> list[str]:
    return sorted(p.name for p in BUNDLES_DIR.iterdir() if (p / "configs" / "metadata.json").exists()) if BUNDLES_DIR.is_dir() else []


def bundle_path(name_or_path: str | Path, trust_config: bool = False) -> Path:
    p = Path(name_or_path)
    if not p.is_dir():
        p = BUNDLES_DIR / str(name_or_path)
    if not (p / "configs" / "metadata.json").is_file():
        raise InvalidValueError(f"bundle {name_or_path!r} not found (known: {', '.join(list_bundles()) or 'none'})")
    p = p.resolve()
    if not trust_config and BUNDLES_DIR.resolve() not in p.parents:
        raise InvalidValueError(f"{p}: bundle outside {BUNDLES_DIR}; configs execute code, pass trust_config=True if you trust it")
    return p


@contextmanager
def _typed_errors():
    """MONAI wraps errors raised inside config expressions/instantiation in a RuntimeError ("Failed to evaluate …"):
    re-raise the project's typed error underneath, if there is one."""
    try:
        yield
    except RuntimeError as e:
        err = unwrap(e)
        if err is e:
            raise
        raise err from e


def run_bundle(name_or_path: str | Path, config: str = "inference", trust_config: bool = False, logging_file: str | None = None,
               **overrides):
    """Initialise and run ``configs/<config>.json`` of a bundle with ``overrides`` (e.g. ``input_dir``, ``output_dir``,
    ``overwrite``, ``device``, ``num_samples``, or nested ids like ``inferer#num_steps``); returns the result of the
    config's ``run`` expression (the list of results when ``run`` holds several expressions). ``logging_file``: a
    logging config to use instead of the shared :data:`LOGGING_CONF` (messages to stderr)."""
    from monai.bundle import ConfigWorkflow

    root = bundle_path(name_or_path, trust_config)
    files = [root / "configs" / f"{c}.json" for c in ([OVERLAYS[config], config] if config in OVERLAYS else [config])]
    for cfg in files:
        if not cfg.is_file():
            raise InvalidValueError(f"{cfg}: no such config")
    wf_type = "infer" if "inference" in (config, OVERLAYS.get(config)) else ("train" if "train" in config else None)
    wf = ConfigWorkflow(config_file=[str(f) for f in files], meta_file=str(root / "configs" / "metadata.json"), workflow_type=wf_type,
                        logging_file=str(logging_file or LOGGING_CONF), bundle_root=str(root), **{k.replace(".", "#"): v for k, v in overrides.items()})
    with _typed_errors():
        wf.initialize()
        result = wf.run()
        wf.finalize()
    return result[0] if isinstance(result, list) and len(result) == 1 else result


def bundle_prior(name_or_path: str | Path, trust_config: bool = False):
    """The unconditional diffusion prior a bundle's ``inference.json`` defines (its ``prior`` item: a
    :class:`~monai_diffrecon.diffusion.DiffusionPrior` with the bundle's verified weights), without running the bundle.
    Raises :class:`~monai_diffrecon.errors.InvalidValueError` for bundles without one (bridges, unrolled networks)."""
    from monai.bundle import ConfigParser

    from monai_diffrecon.diffusion import DiffusionPrior

    root = bundle_path(name_or_path, trust_config)
    parser = ConfigParser()
    parser.read_meta(str(root / "configs" / "metadata.json"))  # the configs read e.g. @_meta_#model_sha256
    parser.read_config(str(root / "configs" / "inference.json"))
    parser["bundle_root"] = str(root)
    if "prior" not in parser.get("", {}):
        raise InvalidValueError(f"{root.name}: its inference.json defines no 'prior' (an unconditional diffusion prior is needed)")
    with _typed_errors():
        prior = parser.get_parsed_content("prior")
    if not isinstance(prior, DiffusionPrior):
        raise InvalidValueError(f"{root.name}: 'prior' is a {type(prior).__name__}, not a DiffusionPrior")
    cin, cout = getattr(prior.network, "in_channels", None), getattr(prior.network, "out_channels", None)
    if cin is not None and cout is not None and cin != cout:
        raise InvalidValueError(f"{root.name}: its prior is conditional ({cin} input channels for {cout} image channels); "
                                "an unconditional prior is needed")
    prior.network.eval().requires_grad_(False)
    return prior


def bundle_inferer(name_or_path: str | Path, overrides: dict | None = None, trust_config: bool = False, config: str = "inference"):
    """The sampler a bundle's ``inference.json`` defines (its ``inferer`` item, with the bundle's verified weights and
    defaults), without running the bundle — what benchmarks score, so they measure exactly what a user runs.
    ``overrides``: config ids → values (e.g. ``{"model_path": ..., "model_sha256": ...}`` for candidate weights);
    ``config``: another inference config (an overlay such as ``inference_phantom_target`` is read over its base)."""
    from monai.bundle import ConfigParser

    root = bundle_path(name_or_path, trust_config)
    files = [root / "configs" / f"{c}.json" for c in ([OVERLAYS[config], config] if config in OVERLAYS else [config])]
    for cfg in files:
        if not cfg.is_file():
            raise InvalidValueError(f"{cfg}: no such config")
    parser = ConfigParser()
    parser.read_meta(str(root / "configs" / "metadata.json"))
    parser.read_config([str(f) for f in files])
    parser["bundle_root"] = str(root)
    for k, v in (overrides or {}).items():
        parser[k] = v
    if "inferer" not in parser.get("", {}):
        raise InvalidValueError(f"{root.name}: its inference.json defines no 'inferer'")
    with _typed_errors():
        inferer = parser.get_parsed_content("inferer")
    import torch

    prior = getattr(inferer, "prior", None)
    if isinstance(prior, torch.nn.Module):
        prior.eval().requires_grad_(False)
    return inferer


def describe_bundle(name_or_path: str | Path) -> dict:
    """Name, version, task and whether its weights are present, from ``configs/metadata.json``."""

    root = bundle_path(name_or_path, trust_config=True)
    meta = json.loads((root / "configs" / "metadata.json").read_text())
    return {"name": root.name, "version": meta.get("version"), "task": meta.get("task", ""),
            "weights": (root / "models" / "model.pt").is_file(), "model_sha256": meta.get("model_sha256", ""),
            "headline": meta.get("eval_metrics", {})}


def net_forward_args(meta: dict) -> dict:
    """Extra arguments of the bundle network's forward for ``verify_net_in_out``: the diffusion ``timesteps``, and for
    networks with the operator inside (metadata input ``"measurement"``, Diff-Unfolding) a measurement ``y`` and the
    operator ``A`` it came from (a blur when the measurement's format is ``"magnitude"``, else multi-coil MRI); any further image input (DB-CR's ``cloudy`` and ``sar``) as random data."""
    import torch

    extra = {"timesteps": torch.tensor([10], device="cpu")}
    inputs = meta["network_data_format"]["inputs"]
    if "measurement" in inputs:
        from monai_diffrecon.physics import Blur, ChannelsToComplex, MultiCoilMRI, birdcage_maps, gaussian_kernel

        shape = tuple(inputs["image"]["spatial_shape"])
        if inputs["measurement"].get("format") == "magnitude":  # a blurred image (the deblurring model)
            A = Blur(gaussian_kernel(1.5, 9))
        else:  # multi-coil k-space
            A = MultiCoilMRI(birdcage_maps(inputs["measurement"]["num_channels"], shape), torch.ones(1, 1, 1, shape[-1])) @ ChannelsToComplex()
        extra.update(y=A(torch.rand(1, inputs["image"]["num_channels"], *shape, device="cpu")), operator=A)
    for name, spec in inputs.items():  # further image inputs of the forward (e.g. DB-CR's cloudy image and SAR)
        if name not in ("image", "timesteps", "measurement") and spec.get("type") == "image":
            extra[name] = torch.rand(1, spec["num_channels"], *spec["spatial_shape"], device="cpu")
    return extra


def verify_bundle(name_or_path: str | Path, schema: str | Path | None = None) -> dict:
    """Check a bundle: metadata against MONAI's schema (``schema``: default the copy shipped in the package,
    :data:`META_SCHEMA`, so no internet is needed), the weights' sha256 against the metadata, and the network's
    input/output shapes against ``network_data_format``. Returns ``{check: "ok" | message}``; raises nothing."""

    from monai_diffrecon.networks.weights import sha256_file

    root = bundle_path(name_or_path, trust_config=True)
    meta_file, out = root / "configs" / "metadata.json", {}
    try:
        from monai.bundle import verify_metadata

        schema = Path(schema or META_SCHEMA)
        if not schema.is_file():  # verify_metadata would try to download into this path
            raise FileNotFoundError(f"{schema}: no such schema file")
        verify_metadata(meta_file=str(meta_file), filepath=str(schema))
        out["metadata"] = "ok"
    except Exception as e:  # noqa: BLE001 - reported, not raised
        out["metadata"] = f"{type(e).__name__}: {str(e)[:300]}"
    meta = json.loads(meta_file.read_text())
    model = root / "models" / "model.pt"
    if not model.is_file():
        out["weights"] = "models/model.pt missing"
    else:
        got = sha256_file(model)
        out["weights"] = "ok" if got == meta.get("model_sha256") else f"sha256 {got} != metadata {meta.get('model_sha256')!r}"
    for key in sorted(k for k in meta if k.endswith("_sha256") and k != "model_sha256"):  # further weights: <stem>_sha256 → models/<stem>.pt
        extra = root / "models" / f"{key[: -len('_sha256')]}.pt"
        if extra.is_file():
            got = sha256_file(extra)
            out[f"weights {extra.name}"] = "ok" if got == meta[key] else f"sha256 {got} != metadata {meta[key]!r}"
        else:
            out[f"weights {extra.name}"] = f"models/{extra.name} missing (metadata {key})"
    try:
        from monai.bundle import verify_net_in_out

        verify_net_in_out(net_id="network_def", meta_file=str(meta_file), config_file=str(root / "configs" / "inference.json"), device="cpu",
                          extra_forward_args=net_forward_args(meta))
        out["network"] = "ok"
    except Exception as e:  # noqa: BLE001
        out["network"] = f"{type(e).__name__}: {str(e)[:300]}"
    return out


def export_bundle(name_or_path: str | Path, archive: str | Path) -> Path:
    """Write a model-zoo style archive ``archive`` (.zip) of one bundle: ``<name>/configs`` (with the shared
    ``logging.conf``), ``models``, ``docs``, ``LICENSE``. Unzipped anywhere, it runs with only this package installed:
    ``python -m monai.bundle run --config_file <dir>/<name>/configs/inference.json --bundle_root <dir>/<name> …``.
    An existing ``archive`` is never replaced (:class:`~monai_diffrecon.errors.OutputError`)."""
    import os
    import tempfile
    import zipfile

    root = bundle_path(name_or_path, trust_config=True)
    out = Path(archive)
    if out.suffix != ".zip":
        raise OutputError(f"{archive}: the archive name must end in .zip")
    if os.path.lexists(out):
        raise OutputError(f"{archive}: exists; refusing to replace it (choose a new file name)")
    out.parent.mkdir(parents=True, exist_ok=True)
    members = [(f, f"{root.name}/{f.relative_to(root).as_posix()}") for sub in ("configs", "models", "docs")
               for f in sorted((root / sub).rglob("*")) if f.is_file()]
    members += [(root / "LICENSE", f"{root.name}/LICENSE")] if (root / "LICENSE").is_file() else []
    if not (root / "configs" / "logging.conf").is_file():
        members.append((LOGGING_CONF, f"{root.name}/configs/logging.conf"))
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.partial-", dir=out.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for src, arc in members:
                z.write(src, arc)
        os.chmod(tmp, 0o644)
        os.link(tmp, out)  # fails if `out` appeared meanwhile: never replaces a file
    except FileExistsError:
        raise OutputError(f"{archive}: exists; refusing to replace it (choose a new file name)") from None
    finally:
        os.unlink(tmp)
    return out
