"""Locating and running the project's MONAI bundles (``diffrecon run <bundle> --input … --output …``).

Bundles live in ``bundles/<name>/`` (MONAI model-zoo layout) next to the package in a source checkout; a path to
any bundle folder works too. Running goes through MONAI's ``ConfigWorkflow`` with the bundle's metadata, so the
same configs also run with ``python -m monai.bundle run --config_file bundles/<name>/configs/inference.json
--meta_file bundles/<name>/configs/metadata.json --input_dir … --output_dir …``.

Security: configs are executable (``_target_`` calls arbitrary callables even with ``MONAI_EVAL_EXPR=0``), so only
bundles inside this project's ``bundles/`` folder run unless ``trust_config=True`` is passed explicitly.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from monai_diffrecon.errors import InvalidValueError, unwrap

__all__ = ["BUNDLES_DIR", "bundle_path", "run_bundle", "bundle_prior", "list_bundles", "describe_bundle", "verify_bundle", "net_forward_args"]

BUNDLES_DIR = Path(__file__).resolve().parent.parent / "bundles"
# model-zoo convention: these configs only override their base (``--config_file "['inference.json','evaluate.json']"``)
OVERLAYS = {"evaluate": "inference", "multi_gpu_train": "train", "multi_gpu_evaluate": "inference", "train_kernel": "train", "score_pnp": "inference"}


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
    ``num_samples``, or nested ids like ``inferer#num_steps``); returns the result of the config's ``run`` expression
    (the list of results when ``run`` holds several expressions). ``logging_file``: a logging config to use instead of
    the bundle's ``configs/logging.conf``."""
    from monai.bundle import ConfigWorkflow

    root = bundle_path(name_or_path, trust_config)
    files = [root / "configs" / f"{c}.json" for c in ([OVERLAYS[config], config] if config in OVERLAYS else [config])]
    for cfg in files:
        if not cfg.is_file():
            raise InvalidValueError(f"{cfg}: no such config")
    wf_type = "infer" if "inference" in (config, OVERLAYS.get(config)) else ("train" if "train" in config else None)
    wf = ConfigWorkflow(config_file=[str(f) for f in files], meta_file=str(root / "configs" / "metadata.json"), workflow_type=wf_type,
                        logging_file=logging_file, bundle_root=str(root), **{k.replace(".", "#"): v for k, v in overrides.items()})
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


def describe_bundle(name_or_path: str | Path) -> dict:
    """Name, version, task and whether its weights are present, from ``configs/metadata.json``."""
    import json

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

    extra = {"timesteps": torch.tensor([10])}
    inputs = meta["network_data_format"]["inputs"]
    if "measurement" in inputs:
        from monai_diffrecon.physics import Blur, ChannelsToComplex, MultiCoilMRI, birdcage_maps, gaussian_kernel

        shape = tuple(inputs["image"]["spatial_shape"])
        if inputs["measurement"].get("format") == "magnitude":  # a blurred image (the deblurring model)
            A = Blur(gaussian_kernel(1.5, 9))
        else:  # multi-coil k-space
            A = MultiCoilMRI(birdcage_maps(inputs["measurement"]["num_channels"], shape), torch.ones(1, 1, 1, shape[-1])) @ ChannelsToComplex()
        extra.update(y=A(torch.rand(1, inputs["image"]["num_channels"], *shape)), operator=A)
    for name, spec in inputs.items():  # further image inputs of the forward (e.g. DB-CR's cloudy image and SAR)
        if name not in ("image", "timesteps", "measurement") and spec.get("type") == "image":
            extra[name] = torch.rand(1, spec["num_channels"], *spec["spatial_shape"])
    return extra


def verify_bundle(name_or_path: str | Path, schema: str | Path | None = None) -> dict:
    """Check a bundle: metadata against MONAI's schema (``schema``: a local copy, since the URL needs internet),
    the weights' sha256 against the metadata, and the network's input/output shapes against
    ``network_data_format``. Returns ``{check: "ok" | message}``; raises nothing."""
    import json

    from monai_diffrecon.networks.weights import sha256_file

    root = bundle_path(name_or_path, trust_config=True)
    meta_file, out = root / "configs" / "metadata.json", {}
    try:
        from monai.bundle import verify_metadata

        if schema is None:
            raise FileNotFoundError("no local schema given (pass --schema; the URL in metadata.json needs internet)")
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
    try:
        from monai.bundle import verify_net_in_out

        verify_net_in_out(net_id="network_def", meta_file=str(meta_file), config_file=str(root / "configs" / "inference.json"), device="cpu",
                          extra_forward_args=net_forward_args(meta))
        out["network"] = "ok"
    except Exception as e:  # noqa: BLE001
        out["network"] = f"{type(e).__name__}: {str(e)[:300]}"
    return out
