"""Resumable training campaigns over a bundle's train config, a ledger of every session, and a promotion gate.

``diffrecon train BUNDLE`` (and ``benchmarks/gpu_train.py``, which runs one campaign per job) goes through here:

* :func:`bundle_parser` reads the bundle's ``configs/train.json`` (plus overlays such as ``train_kernel.json``) with
  MONAI's ``ConfigParser`` and the bundle's metadata — exactly what ``python -m monai.bundle run`` would parse — then
  applies the overrides (output folder, device, and the *recipe*: any other config id, e.g. ``batch_size`` or a
  prediction type).
* :func:`train` builds the config's ``trainer`` and steps it (``trainer.step()``, the same process function its
  ``run()`` uses) in a work folder **outside** the repository (default
  ``~/.cache/monai_diffrecon/train/<bundle>/<recipe id>``; a folder inside the checkout or the bundle is refused). The
  checkpoint (``trainer.save()``: atomic, the model, EMA, optimizer, learning-rate schedule, RNG states) is written every
  ``checkpoint_minutes`` of wall time and at the end. It stops at the wall budget, at the iteration target or on
  SIGTERM/SIGINT — in every case after finishing the current iteration and saving. ``resume=True`` continues from the
  checkpoint bit for bit (a run interrupted and resumed ends with the same parameters as one that was not); a work
  folder whose ``campaign.json`` records another bundle, config set or recipe is refused
  (:class:`~monai_diffrecon.errors.TrainingError`), as is an existing checkpoint without ``resume``.
* Every session appends one entry to the ledger (``benchmarks/results/training_ledger.json`` by default): bundle,
  configs, recipe and its id, iterations start → end, process CPU-hours, wall seconds, stop reason, device, torch
  version, commit, the command, the last losses and — if the config has a ``validation`` item (e.g.
  :class:`~monai_diffrecon.training.validation_loss`) — the validation curve measured at each checkpoint. The ledger is
  rewritten atomically under a file lock (parallel GPU jobs append to one ledger).
* :func:`promote` is the gate between a work folder and a bundle's ``models/``: the candidate EMA weights
  (``model.pt``) and the shipped ones are scored with the same metric on the same fixed draws — the config's
  ``validation`` item if it has one, else the trainer's own training loss on held-out data (the config's ``cohort``
  with ``split`` = ``"val"``, a disjoint seed range of the split registry, built in the work folder). Only a
  candidate with a strictly lower value is copied (size cap 25 MB); the bundle's metadata sha256 is updated and
  ``models/<name>.provenance.json`` records the sha256, both scores, the training commands and the ledger entries of
  the work folder. A refusal says by how much the candidate missed. For diffusion priors the metric is the x̂₀ MSE,
  each weights read with its own prediction type (the candidate's recipe; the shipped weights as the bundle's
  ``inference.json`` builds its prior, :func:`bundle_prediction`), so ε and EDM weights are judged alike; weights whose
  prediction type differs from the inference config's are never copied in (the bundle would read them wrongly).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from monai_diffrecon.errors import InvalidValueError, OutputError, TrainingError, WeightsError

__all__ = [
    "bundle_prediction",
    "work_recipe",
    "DEFAULT_LEDGER",
    "MAX_PROMOTE_MB",
    "REPO_ROOT",
    "append_ledger",
    "bundle_parser",
    "check_work_dir",
    "config_files",
    "default_ledger",
    "default_work_dir",
    "promote",
    "read_ledger",
    "recipe_id",
    "recipe_of",
    "train",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_LEDGER = REPO_ROOT / "benchmarks" / "results" / "training_ledger.json"
MAX_PROMOTE_MB = 25.0
# config ids a campaign sets itself: where and how the run happens, not what is trained (excluded from the recipe)
MECHANICS = frozenset({"bundle_root", "output_dir", "cohort_dir", "device", "progress", "max_iterations", "imports",
                       "trainer_config#checkpoint_every"})
# the held-out cohort the gate builds when the config has no validation item (small: it is only a loss estimate)
VAL_SIZES = {"n_patches": 512, "n_kernels": 512, "n_slices": 16, "n_scenes": 16, "n_volumes": 4}
# models/ file and metadata sha256 key a config's weights ship as
MODEL_FILES = {"train": ("model.pt", "model_sha256"), "train_kernel": ("kernel_model.pt", "kernel_model_sha256"),
               "train_autoencoder": ("autoencoder.pt", "autoencoder_sha256")}


# ---------------------------------------------------------------------------------------------- configs and recipes
def config_files(bundle_dir: str | Path, config: str = "train") -> list[str]:
    """The config files of ``config`` (``train``, ``train_kernel``, …): an overlay without its own ``trainer`` item is
    read over ``train.json`` (model-zoo convention), a self-contained config alone."""
    cfg_dir = Path(bundle_dir) / "configs"
    name = config if config.endswith(".json") else f"{config}.json"
    if not (cfg_dir / name).is_file():
        raise InvalidValueError(f"{cfg_dir / name}: no such train config")
    if name == "train.json":
        return [name]
    own = json.loads((cfg_dir / name).read_text())
    return [name] if "trainer" in own else ["train.json", name]


def bundle_parser(bundle_dir: str | Path, configs: list[str], output_dir: str | Path, device: str = "cpu", overrides: dict | None = None,
                  optional: dict | None = None, cohort_dir: str | Path | None = None, progress: bool = False):
    """A ``ConfigParser`` over the bundle's ``configs`` (+ metadata) with the output folder, device and ``overrides``
    set; ``optional`` overrides apply only to ids the config has (e.g. cohort sizes for a smoke run)."""
    from monai.bundle import ConfigParser

    root = Path(bundle_dir)
    parser = ConfigParser()
    if (root / "configs" / "metadata.json").is_file():
        parser.read_meta(str(root / "configs" / "metadata.json"))  # train configs read e.g. @_meta_#autoencoder_sha256
    parser.read_config([str(root / "configs" / f) for f in configs])
    parser["bundle_root"] = str(root)
    parser["output_dir"] = str(output_dir)
    if cohort_dir is not None:
        parser["cohort_dir"] = str(cohort_dir)
    parser["device"] = f"$torch.device('{device}')"
    if "progress" in parser:
        parser["progress"] = progress
    for k, v in (overrides or {}).items():
        parser[k] = v
    for k, v in (optional or {}).items():
        if k in parser:
            parser[k] = v
    return parser


def recipe_of(configs: list[str], overrides: dict | None) -> dict:
    """What is trained: the config files and the overrides that change training (campaign mechanics excluded)."""
    return {"configs": list(configs), "overrides": {k: v for k, v in sorted((overrides or {}).items()) if k not in MECHANICS}}


def recipe_id(recipe: dict) -> str:
    """``default`` for the bundle's own ``train.json`` unchanged, else the config stem + a 10-hex digest of the recipe."""
    if recipe["configs"] == ["train.json"] and not recipe["overrides"]:
        return "default"
    stem = Path(recipe["configs"][-1]).stem
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return stem if not recipe["overrides"] else f"{stem}-{digest}"


def default_work_dir(bundle: str, rid: str) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "monai_diffrecon" / "train" / bundle / rid


#: written into every work folder a campaign creates: a non-empty folder without it (or a campaign's files) is not ours
WORK_MARKER = ".diffrecon-train"


def check_work_dir(work: str | Path, bundle_dir: str | Path, repo_root: str | Path | None = REPO_ROOT) -> Path:
    """The resolved work folder; refused (:class:`OutputError`) inside the bundle or the repository checkout (weights,
    cohorts and checkpoints must never land in a commit)."""
    w = Path(work).expanduser().resolve()
    for root, what in ((Path(bundle_dir).resolve(), "the bundle"), (Path(repo_root).resolve() if repo_root else None, "the repository")):
        if root is not None and (w == root or root in w.parents):
            raise OutputError(f"--work {work}: inside {what} ({root}); choose a folder outside it (default ~/.cache/monai_diffrecon/train)")
    if w.exists() and not w.is_dir():
        raise OutputError(f"--work {work}: exists and is not a folder")
    return w


def _repo_root_of(bundle_dir: Path) -> Path | None:
    """The git checkout holding this package (refused as a work folder), if there is one."""
    return REPO_ROOT if (REPO_ROOT / ".git").exists() or (REPO_ROOT / "pyproject.toml").exists() else None


def default_ledger(work: str | Path) -> Path:
    """The checkout's ``benchmarks/results/training_ledger.json``; from an installed package, ``training_ledger.json``
    beside the work folder."""
    return DEFAULT_LEDGER if DEFAULT_LEDGER.parent.is_dir() else Path(work).expanduser().resolve().parent / "training_ledger.json"


def _commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], check=False, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _atomic_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1, default=str)
        f.write("\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------- ledger
def read_ledger(path: str | Path) -> list[dict]:
    p = Path(path)
    if not p.is_file():
        return []
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise TrainingError(f"{p}: not a JSON ledger ({e.msg} at line {e.lineno})") from None
    return list(data.get("entries", [])) if isinstance(data, dict) else list(data)


def append_ledger(path: str | Path, entry: dict) -> None:
    """Append ``entry`` to the ledger at ``path`` (atomic rewrite under an exclusive lock)."""
    import fcntl

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p.with_name(p.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        entries = read_ledger(p)
        entries.append(entry)
        _atomic_json(p, {"about": "one entry per training session (monai_diffrecon.training.campaign): bundle, recipe, iterations "
                                  "start->end, process CPU-hours, wall time, device, commit, validation curve",
                         "entries": entries})
    with contextlib.suppress(OSError):
        p.with_name(p.name + ".lock").unlink()


# ---------------------------------------------------------------------------------------------- training
class _Stop:
    """SIGTERM/SIGINT set a flag; the loop finishes its iteration, saves and returns."""

    def __init__(self) -> None:
        self.signal: str | None = None
        self._previous: dict = {}

    def __enter__(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum, frame) -> None:
        self.signal = signal.Signals(signum).name

    def __exit__(self, *exc) -> None:
        for sig, h in self._previous.items():
            signal.signal(sig, h)


def _validate(validation, curve: list, trainer) -> None:
    if validation is None:
        return
    rep = validation.report()
    curve.append({"iteration": trainer.iteration, **{k: v for k, v in rep.items() if k != "iteration" and isinstance(v, (int, float))}})


def train(bundle: str | Path, config: str = "train", *, minutes: float | None = None, iterations: int | None = None,
          work: str | Path | None = None, resume: bool = False, device: str = "cpu", checkpoint_minutes: float = 3.0,
          overrides: dict | None = None, optional: dict | None = None, cohort_dir: str | Path | None = None,
          ledger: str | Path | None = "default", trust_config: bool = False, progress: bool = True, command: str | None = None,
          allow_repo: bool = False) -> dict:
    """Train ``bundle``'s ``config`` in a work folder for a wall budget / to an iteration target; returns the ledger entry.

    Args:
        bundle: a bundle name or folder. config: ``train`` or an overlay (``train_kernel``) / another train config.
        minutes: wall budget of this session (``None``: none). iterations: the iteration to stop at (default: the
            config's ``max_iterations``). work: the work folder (default :func:`default_work_dir`).
        resume: continue from the work folder's checkpoint (required when there is one).
        checkpoint_minutes: wall time between checkpoints. overrides: config ids to change (the recipe).
        optional: overrides applied only to ids the config has (smoke sizes). cohort_dir: where cohorts are cached
            (default: the work folder). ledger: the ledger to append to (``"default"``: :func:`default_ledger`; ``None``: none). command: recorded in the
            ledger (default: this process's argv). allow_repo: accept a work folder inside the checkout (never the bundle).
    """
    from monai_diffrecon.bundles import _typed_errors, bundle_path
    from monai_diffrecon.training.dsm import load_checkpoint, parameters_sha256

    root = bundle_path(bundle, trust_config)
    configs = config_files(root, config)
    overrides = dict(overrides or {})
    recipe = recipe_of(configs, overrides)
    rid = recipe_id(recipe)
    w = check_work_dir(work or default_work_dir(root.name, rid), root, None if allow_repo else _repo_root_of(root))
    state_file, ckpt = w / "campaign.json", w / "checkpoint.pt"
    ident = {"bundle": root.name, "recipe": recipe, "recipe_id": rid}
    if ckpt.exists() and not resume:
        raise OutputError(f"--work {w}: holds a checkpoint; pass --resume to continue it or choose another work folder")
    if resume and not ckpt.exists():
        raise TrainingError(f"--resume: no checkpoint in {w}")
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    if resume and state and {k: state.get(k) for k in ident} != json.loads(json.dumps(ident, default=str)):
        raise TrainingError(f"{w}: its checkpoint was trained with {state.get('bundle')} recipe {state.get('recipe_id')} "
                            f"{json.dumps(state.get('recipe'), default=str)}, not {root.name} recipe {rid}; refusing to resume")
    if w.is_dir() and any(w.iterdir()) and not any((w / n).exists() for n in (WORK_MARKER, "campaign.json", "checkpoint.pt")):
        raise OutputError(f"--work {w}: holds files this command did not write; choose a new or empty folder (nothing was changed)")
    w.mkdir(parents=True, exist_ok=True)
    (w / WORK_MARKER).touch()
    parser = bundle_parser(root, configs, w, device, overrides, optional, cohort_dir if cohort_dir is not None else w, progress=False)
    t_wall, t_cpu = time.time(), time.process_time()
    torch.manual_seed(int(parser["seed"]) if "seed" in parser and isinstance(parser["seed"], int) else 0)  # the network's initial weights
    with _typed_errors():
        trainer = parser.get_parsed_content("trainer")
        validation = parser.get_parsed_content("validation") if "validation" in parser else None
    if resume:
        sd = load_checkpoint(ckpt)
        if {k: v for k, v in sd.get("config", {}).items() if k not in ("max_iterations", "checkpoint_every")} != \
                {k: v for k, v in _asdict(trainer.cfg).items() if k not in ("max_iterations", "checkpoint_every")}:
            raise TrainingError(f"{ckpt}: trained with trainer config {sd.get('config')}, this run's is {_asdict(trainer.cfg)}; refusing to resume")
        trainer.load_state_dict(sd)
    target = int(iterations if iterations is not None else trainer.cfg.max_iterations)
    start = trainer.iteration
    if not state:
        state = {**json.loads(json.dumps(ident, default=str)), "created": _utc(), "validation_curve": []}
    curve: list = []
    deadline = t_wall + 60 * minutes if minutes is not None else float("inf")
    every = max(1.0, 60 * checkpoint_minutes)
    last_save, n_saves = time.time(), 0
    from tqdm.auto import tqdm

    bar = tqdm(total=target, initial=start, desc=f"train {root.name} ({rid})", disable=not progress, file=sys.stderr, dynamic_ncols=True,
               mininterval=2.0)
    reason = "iterations"
    try:
        with _Stop() as stop, _typed_errors():
            while trainer.iteration < target:
                if stop.signal:
                    reason = stop.signal
                    break
                if time.time() >= deadline:
                    reason = "wall budget"
                    break
                trainer.step()
                bar.update(1)
                bar.set_postfix(loss=f"{trainer.losses[-1]:.4g}", refresh=False)
                if time.time() - last_save >= every:
                    trainer.save()
                    _validate(validation, curve, trainer)
                    last_save, n_saves = time.time(), n_saves + 1
            if stop.signal:
                reason = stop.signal
            trainer.save()
            n_saves += 1
            if validation is not None and (not curve or curve[-1]["iteration"] != trainer.iteration):
                _validate(validation, curve, trainer)
    finally:
        bar.close()
    wall, cpu = time.time() - t_wall, time.process_time() - t_cpu
    state["validation_curve"] = list(state.get("validation_curve", [])) + curve
    state["iteration"] = trainer.iteration
    cmd = command or " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
    state.setdefault("sessions", []).append({"start": start, "end": trainer.iteration, "finished": _utc(), "command": cmd})
    _atomic_json(state_file, state)
    last = trainer.losses[-100:]
    entry = {
        "bundle": root.name, "configs": configs, "recipe": recipe["overrides"], "recipe_id": rid, "work": str(w),
        "iterations": {"start": start, "end": trainer.iteration, "target": target}, "stopped": reason,
        "cpu_hours": round(cpu / 3600, 5), "wall_seconds": round(wall, 1), "checkpoints": n_saves,
        "iterations_per_second": round((trainer.iteration - start) / max(wall, 1e-9), 3),
        "loss_last100": (sum(last) / len(last)) if last else None, "loss_label": getattr(trainer, "loss_label", "loss"),
        "ema_parameters_sha256": parameters_sha256(trainer.ema),
        "device": _device_name(device), "threads": torch.get_num_threads(), "torch": torch.__version__, "commit": _commit(),
        "command": cmd, "finished": _utc(),
        "validation_curve": curve or None,
    }
    if ledger is not None:
        append_ledger(default_ledger(w) if ledger == "default" else ledger, entry)
    return entry


def _asdict(cfg) -> dict:
    from dataclasses import asdict, is_dataclass

    return asdict(cfg) if is_dataclass(cfg) else dict(vars(cfg))


def _utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _device_name(device: str) -> str:
    d = torch.device(device)
    if d.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_name(d)
    import platform

    return f"cpu ({platform.processor() or platform.machine()})"


# ---------------------------------------------------------------------------------------------- promotion gate
@torch.no_grad()
def _score(parser, weights: dict, n_batches: int, batch_size: int | None, seed: int, prediction: str | None = None) -> tuple[float, str]:
    """The gate's metric of ``weights``, read as a network of ``prediction`` (default: the recipe's): for a diffusion
    prior (the config's validation item, or the trainer's own loss is the diffusion loss) the x̂₀ MSE on fixed draws —
    comparable across prediction types, so ε weights and EDM weights are judged alike; else the config's validation
    item, else the trainer loss on the val split."""
    from monai_diffrecon.diffusion.parameterization import Parameterization
    from monai_diffrecon.training.dsm import DenoisingScoreTrainer

    trainer = parser.get_parsed_content("trainer")
    diffusion = type(trainer).loss is DenoisingScoreTrainer.loss
    if diffusion:
        trainer.parameterization = Parameterization(prediction or trainer.cfg.prediction, trainer.cfg.sigma_data)
    if "validation" in parser:
        trainer.ema.load_state_dict(weights)
        rep = parser.get_parsed_content("validation").report()
        key = "validation_x0_mse" if "validation_x0_mse" in rep else next(k for k in rep if k.startswith("validation"))
        return float(rep[key]), f"{key} (the config's validation item, EMA weights)"
    trainer.network.load_state_dict(weights)
    trainer.network.eval()
    g = torch.Generator().manual_seed(seed)
    bs = batch_size or trainer.cfg.batch_size
    if diffusion:
        errs = [trainer.errors(trainer.network, trainer.batches(g, bs), g)["x0_mse"] for _ in range(n_batches)]
        return sum(errs) / len(errs), f"x̂₀-MSE on {n_batches}x{bs} fixed draws of the val split (t uniform)"
    losses = [float(trainer.loss(trainer.batches(g, bs), g)) for _ in range(n_batches)]
    return sum(losses) / len(losses), f"{trainer.loss_label} on {n_batches}x{bs} fixed draws of the val split (trainer loss)"


def work_recipe(work: str | Path) -> dict:
    """How a campaign's weights are read: ``prediction``, ``sigma_data``, ``precision`` of its checkpoint's DSMConfig
    (the keyword arguments of :class:`~monai_diffrecon.diffusion.DiffusionPrior` that match the training recipe)."""
    ck = torch.load(Path(work).expanduser() / "checkpoint.pt", map_location="cpu", weights_only=True)
    c = ck["config"]
    return {"prediction": c.get("prediction", "epsilon"), "sigma_data": c.get("sigma_data", 0.5), "precision": c.get("precision", "fp32")}


def bundle_prediction(bundle_dir: str | Path) -> str:
    """The prediction type the bundle's ``configs/inference.json`` builds its diffusion priors with (``"epsilon"``
    when not set); raises if its priors disagree."""
    path = Path(bundle_dir) / "configs" / "inference.json"
    if not path.is_file():
        return "epsilon"
    cfg = json.loads(path.read_text())
    found = set()

    def walk(node):
        if isinstance(node, dict):
            if str(node.get("_target_", "")).endswith("DiffusionPrior"):
                v = node.get("prediction", "epsilon")
                found.add(cfg.get(v[1:], v) if isinstance(v, str) and v.startswith("@") else v)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(cfg)
    if len(found) > 1:
        raise TrainingError(f"{path}: its diffusion priors use different prediction types {sorted(found)}")
    return found.pop() if found else "epsilon"


EVIDENCE_KEYS = ("candidate_sha256", "shipped_sha256", "metric", "passed")


def write_task_evidence(work: str | Path, doc: dict) -> Path:
    """Write a benchmark's task-change evidence to ``<work>/gate/task_evidence.json`` (atomically), the file
    :func:`promote` reads with ``evidence=``. ``doc`` must hold :data:`EVIDENCE_KEYS`; ``passed`` is a bool."""
    missing = [k for k in EVIDENCE_KEYS if k not in doc]
    if missing:
        raise TrainingError(f"task-change evidence for {work}: missing {', '.join(missing)}")
    out = Path(work).expanduser().resolve() / "gate" / "task_evidence.json"
    _atomic_json(out, {**doc, "passed": bool(doc["passed"])})
    return out


def _task_evidence(path: str | Path, cand: Path, shipped: Path) -> dict:
    """The task-change evidence file of :func:`promote`, checked against the two weight files it speaks of."""
    from monai_diffrecon.networks.weights import sha256_file

    p = Path(path).expanduser()
    try:
        doc = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise TrainingError(f"{p}: cannot read the task-change evidence ({e})") from None
    missing = [k for k in EVIDENCE_KEYS if k not in doc]
    if missing:
        raise TrainingError(f"{p}: not a task-change evidence file (missing {', '.join(missing)})")
    if doc["candidate_sha256"] != sha256_file(cand):
        raise WeightsError(f"{p}: made for other candidate weights than {cand} (sha256 differs); rerun the benchmark's gate")
    if shipped.is_file() and doc["shipped_sha256"] != sha256_file(shipped):
        raise WeightsError(f"{p}: compares against other shipped weights than {shipped} (sha256 differs); rerun the benchmark's gate")
    return {"metric": str(doc["metric"]), "passed": doc["passed"] is True, "differences": doc.get("differences"),
            "command": doc.get("command")}


def promote(bundle: str | Path, work: str | Path, *, trust_config: bool = False, n_batches: int = 20, batch_size: int | None = None,
            seed: int = 123, max_mb: float = MAX_PROMOTE_MB, device: str = "cpu", val_sizes: dict | None = None, dry_run: bool = False,
            evidence: str | Path | None = None) -> dict:
    """Copy the work folder's EMA weights into the bundle's ``models/`` only if they score better than the shipped ones.

    When the task changed (the shipped weights do not fit the recipe's network: a new condition, a new target) the
    x̂₀-MSE of the two cannot be compared; ``evidence`` is then required: a JSON file from the bundle's benchmark run on
    validation cases (e.g. ``benchmarks/spect.py --gate WORK``) holding ``candidate_sha256`` (must be the work
    folder's ``model.pt``), ``shipped_sha256`` (must be the bundle's current file), ``metric`` and ``passed`` (the
    paired difference candidate − shipped above 0 with its 95 % CI); the weights are promoted only if it passed.

    Returns ``{"promoted": bool, "metric", "candidate", "shipped", "relative_change", "reason", …}``; on promotion the
    metadata sha256 key is updated and ``models/<stem>.provenance.json`` is written. ``dry_run``: score only.
    """
    from monai_diffrecon.bundles import _typed_errors, bundle_path
    from monai_diffrecon.networks.weights import sha256_file

    root = bundle_path(bundle, trust_config)
    w = Path(work).expanduser().resolve()
    state_file, cand = w / "campaign.json", w / "model.pt"
    if not state_file.is_file() or not cand.is_file():
        raise TrainingError(f"{w}: no campaign.json + model.pt (train first with `diffrecon train {root.name}`)")
    state = json.loads(state_file.read_text())
    if state.get("bundle") != root.name:
        raise TrainingError(f"{w}: a campaign of {state.get('bundle')}, not {root.name}")
    configs, overrides = state["recipe"]["configs"], dict(state["recipe"]["overrides"])
    stem = Path(configs[-1]).stem
    model_file, sha_key = MODEL_FILES.get(stem, (f"{stem}_model.pt", f"{stem}_model_sha256"))
    shipped = root / "models" / model_file
    size_mb = cand.stat().st_size / 2**20
    if size_mb > max_mb:
        raise WeightsError(f"{cand}: {size_mb:.1f} MB, over the {max_mb:g} MB cap for shipped weights")
    gate = w / "gate"
    parser = bundle_parser(root, configs, gate, device, overrides, cohort_dir=gate)
    if "validation" not in parser:
        if "cohort#split" not in parser:
            raise TrainingError(f"{root.name}/{configs[-1]}: no 'validation' item and no cohort split to hold out; cannot gate")
        parser["cohort#split"] = "val"
        if "cohort#path" in parser:
            parser["cohort#path"] = str(gate / "val_cohort.pt")
        for k, v in {**VAL_SIZES, **(val_sizes or {})}.items():
            if k in parser:
                parser[k] = v
    cand_sd = torch.load(cand, map_location="cpu", weights_only=True)
    shipped_pred = bundle_prediction(root)
    with _typed_errors():
        trainer_cfg = parser.get_parsed_content("trainer").cfg
        cand_pred = getattr(trainer_cfg, "prediction", "epsilon")
        new, metric = _score(parser, cand_sd, n_batches, batch_size, seed, cand_pred)
        old = None
        if shipped.is_file():
            try:
                old_sd = torch.load(shipped, map_location="cpu", weights_only=True)
                old_sd = old_sd["ema"] if isinstance(old_sd, dict) and "ema" in old_sd and "model" in old_sd else old_sd
                old, _ = _score(parser, old_sd, n_batches, batch_size, seed, shipped_pred)
            except RuntimeError as e:
                if evidence is None:
                    raise WeightsError(f"{shipped}: does not fit this recipe's network ({str(e).splitlines()[0][:200]}); a task change "
                                       "is promoted only with --evidence FILE (the benchmark's validation comparison)") from None
    task = None
    if evidence is not None:
        task = _task_evidence(evidence, cand, shipped)
    rel = None if old is None else (new - old) / abs(old) if old else float("inf")
    res = {"bundle": root.name, "work": str(w), "metric": metric, "candidate": new, "shipped": old, "relative_change": rel,
           "candidate_iterations": state.get("iteration"), "model_file": str(shipped), "promoted": False, "dry_run": dry_run}
    if task is not None:
        res.update(metric=task["metric"], shipped=None, relative_change=None, evidence=str(evidence), task_evidence=task["differences"])
        if not task["passed"]:
            res["reason"] = f"task-change evidence {evidence}: not passed (candidate − shipped does not clear 0 with its 95 % CI); missed"
            return res
        old = None
    elif old is not None and not new < old:
        res["reason"] = (f"candidate {new:.6g} vs shipped {old:.6g}: {100 * rel:+.2f} % ({metric}); lower is better, "
                         f"missed by {new - old:.4g}")
        return res
    res["reason"] = (f"task change: validation evidence {evidence} passed" if task is not None else "no shipped weights" if old is None
                     else f"candidate {new:.6g} < shipped {old:.6g} ({100 * rel:+.2f} %)")
    if cand_pred != shipped_pred:
        res["reason"] += (f"; not promoted: the candidate predicts {cand_pred!r} but configs/inference.json builds its prior with "
                          f"prediction {shipped_pred!r} — set the prior's prediction (and sigma_data) there first, or the bundle would "
                          "read the new weights wrongly")
        return res
    if dry_run:
        return res
    shipped.parent.mkdir(parents=True, exist_ok=True)
    tmp = shipped.with_name(f".{shipped.name}.tmp")
    shutil.copyfile(cand, tmp)
    os.replace(tmp, shipped)
    digest = sha256_file(shipped)
    meta_path = root / "configs" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    if sha_key in meta or stem == "train":
        meta[sha_key] = digest
        fd, tmpm = tempfile.mkstemp(dir=meta_path.parent, prefix=".metadata.", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(meta, indent=4, ensure_ascii=False) + "\n")
        os.chmod(tmpm, 0o644)
        os.replace(tmpm, meta_path)
    prov = {"sha256": digest, "metadata_key": sha_key, "metric": res["metric"], "candidate": new, "replaced": old,
            "task_evidence": None if task is None else {"file": str(evidence), **task}, "recipe": state["recipe"],
            "recipe_id": state.get("recipe_id"), "iterations": state.get("iteration"), "sessions": state.get("sessions"),
            "training_commands": [x.get("command") for x in state.get("sessions", [])], "promoted": _utc(), "commit": _commit()}
    _atomic_json(shipped.with_name(f"{shipped.stem}.provenance.json"), prov)
    res.update(promoted=True, sha256=digest)
    return res
