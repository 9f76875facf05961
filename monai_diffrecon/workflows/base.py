"""The loop every reconstruction bundle shares: one case per dataset item, typed errors surfaced unchanged, and one
output layout for one study or many.

Output layout (always the same)::

    OUT/
      <case id>/        one folder per case: the bundle's files (DICOM series folders, NIfTI, PNG, metrics.json)
      summary.json      {"n_cases", "ok", "failed", "cases": [{"case", "input", "output", "status", "metrics"}], "metrics"}
      manifest.json     written last: every file with size and sha256 (marks the folder as diffrecon's)

The case id is the study folder's or input file's name (letters, digits, ``._-`` kept; duplicates get ``_2``, ``_3``…).
The whole of ``OUT`` is written through one staging folder (:mod:`monai_diffrecon.io.staging`), so a failure or a
``kill -9`` leaves nothing under ``OUT``; the output folder is checked against the inputs and against existing files
before any computation (the rule in :func:`~monai_diffrecon.io.staging.check_output`).

Subclasses implement :meth:`CaseWorkflow.reconstruct` (item → results, metrics) and :meth:`CaseWorkflow.write`
(case folder, results, metrics); they stay thin.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import torch

from monai_diffrecon.errors import InvalidValueError, unwrap
from monai_diffrecon.io.staging import staged_directory

__all__ = ["CaseWorkflow", "summarize", "make_summary", "case_ids", "SUMMARY"]

SUMMARY = "summary.json"
logger = logging.getLogger("monai_diffrecon")


def summarize(metrics: list[dict]) -> dict:
    """Mean, standard deviation and 95 % bootstrap CI over cases of every numeric metric, and — for every metric the
    cases report for ``ours`` and for another method (keys ``ours_<m>`` and ``<method>_<m>``, e.g. ``ours_psnr`` and
    ``zero_filled_psnr``) — the paired difference ours − method with its 95 % CI (the evaluation harness's statistics;
    positive = ours higher)."""
    from monai_diffrecon.evaluation import bootstrap_mean, paired_difference

    keys = [k for k, v in metrics[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)] if metrics else []
    out = {"n_cases": len(metrics)}
    cols = {}
    for k in keys:
        vals = np.array([m[k] for m in metrics if isinstance(m.get(k), (int, float))], dtype=np.float64)
        vals = vals[np.isfinite(vals)]
        if not vals.size:
            continue
        e = bootstrap_mean(vals)
        out[k] = {"mean": float(vals.mean()), "std": float(vals.std(ddof=1)) if vals.size > 1 else 0.0, "ci95": [e.low, e.high]}
        cols[k] = {i: float(m[k]) for i, m in enumerate(metrics) if isinstance(m.get(k), (int, float)) and np.isfinite(m[k])}
    paired = {}
    for k in cols:
        if not k.startswith("ours_"):
            continue
        metric = k[len("ours_"):]
        for other in cols:
            if other != k and other.endswith("_" + metric) and not other.startswith("ours_"):
                common = cols[k].keys() & cols[other].keys()
                if common:
                    d = paired_difference({i: cols[k][i] for i in common}, {i: cols[other][i] for i in common})
                    paired[f"ours - {other[: -len(metric) - 1]}: {metric}"] = {"mean": d.mean, "ci95": [d.low, d.high], "n": d.n}
    if paired:
        out["paired_differences"] = paired
    return out


def make_summary(cases: list[dict], **extra) -> dict:
    """The ``summary.json`` document: one record per case (``case``, ``input``, ``output``, ``status``, ``metrics`` or
    ``error``) and mean ± sd of every numeric metric over the successful ones."""
    ok = [c for c in cases if c["status"] == "ok"]
    return {**extra, "n_cases": len(cases), "ok": len(ok), "failed": [c for c in cases if c["status"] != "ok"], "cases": cases,
            "metrics": summarize([c["metrics"] for c in ok if isinstance(c.get("metrics"), dict)])}


def case_ids(names: list[str]) -> list[str]:
    """Folder-safe, unique case ids from study/file names (module doc)."""
    out, seen = [], set()
    for i, n in enumerate(names):
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", n).strip("._") or f"case_{i:03d}"
        cid, k = base, 2
        while cid in seen or cid in (SUMMARY, "manifest.json"):
            cid, k = f"{base}_{k}", k + 1
        seen.add(cid)
        out.append(cid)
    return out


def _to_cpu(obj):
    """Tensors of a sampler output (dataclass, dict, list) moved to the CPU."""
    import dataclasses

    if isinstance(obj, torch.Tensor):
        return obj.cpu()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.replace(obj, **{f.name: _to_cpu(getattr(obj, f.name)) for f in dataclasses.fields(obj)})
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def _item_name(item, i: int) -> str:
    """The study's name from a raw datalist item: its ``case`` entry (a folder or file), else case_NNN."""
    p = item.get("case") if isinstance(item, dict) else None
    if not p:
        return f"case_{i:03d}"
    p = Path(str(p))
    return (p.stem if p.suffix.lower() in (".h5", ".mrd", ".ismrmrd", ".dcm", ".json") else p.name) or Path(p).resolve().name


def _item_paths(item) -> list[str]:
    """The files and folders a raw datalist item reads (values that are existing paths)."""
    return [str(v) for v in item.values() if isinstance(v, (str, Path)) and Path(v).exists()] if isinstance(item, dict) else []


class CaseWorkflow:
    """Base evaluator (module doc).

    Args:
        dataset: a MONAI ``Dataset`` (its ``data`` is the raw datalist, whose ``case`` entries name the studies).
        output_dir: the output folder (rule and layout in the module doc).
        progress: progress bars and one log line per case (to stderr).
        input_dir: the input the user gave; the output may not equal, contain or sit inside it (nor any datalist path).
        overwrite: replace an earlier, unmodified diffrecon output in ``output_dir``.
        device: where the sampler runs (``"cpu"``, ``"cuda"``, ``torch.device("cuda:1")``, the bundle's ``device`` key):
            :meth:`sample` moves the sampler (its priors), the measurement and the operator there and brings the
            result back to the CPU for writing; every random draw comes from a CPU generator seeded by ``seed``, so
            the noise is the same on every device.
    """

    empty_error: type[Exception] = InvalidValueError

    def __init__(self, dataset, output_dir, progress: bool = True, input_dir=None, overwrite: bool = False, device=None) -> None:
        self.dataset, self.output_dir, self.progress = dataset, Path(output_dir), progress
        self.input_dir, self.overwrite = input_dir, bool(overwrite)
        self.device = torch.device(device) if device is not None else torch.device("cpu")

    def sample(self, y: torch.Tensor, operator, seed: int | torch.Generator, num_samples: int = 1, **data):
        """``self.sampler(y, operator, …)`` on :attr:`device` (class doc); ``seed``: an int or a CPU generator to
        continue; ``data``: further per-case inputs of samplers that take them (e.g. SPECT's ``additive`` scatter
        estimate and ``ct`` image), tensors moved to the device, ``None`` values dropped. Returns the
        :class:`~monai_diffrecon.samplers.SamplerOutput` with its tensors on the CPU (the workflows build operators on
        the CPU; ``operator`` is moved back there afterwards)."""
        g = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(int(seed))
        if isinstance(self.sampler, torch.nn.Module):  # the presets are modules holding their priors
            self.sampler.to(self.device)
        op = operator.to(self.device) if operator is not None else None
        extra = {k: (v.to(self.device) if isinstance(v, torch.Tensor) else v) for k, v in data.items() if v is not None}
        out = self.sampler(y.to(self.device), op, generator=g, num_samples=num_samples, progress=self.progress, **extra)
        if op is not None:
            op.to("cpu")  # nn.Module.to moves in place: give the caller its operator back where it was made
        return _to_cpu(out)

    def reconstruct(self, item: dict) -> tuple[dict, dict]:  # pragma: no cover - abstract
        raise NotImplementedError

    def write(self, out_dir: Path, results: dict, metrics: dict) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _empty(self) -> Exception:
        return InvalidValueError(f"{self.input_dir or 'the dataset'}: no case to reconstruct")

    def run(self) -> list[dict]:
        """Reconstruct every case and write ``output_dir`` (module doc); returns the per-case metrics."""
        n = len(self.dataset)
        raw = list(getattr(self.dataset, "data", self.dataset))  # MONAI Dataset: its raw datalist; a list: itself
        raw = raw if len(raw) == n else [None] * n
        inputs = [self.input_dir, *(p for it in raw for p in _item_paths(it))]
        ids = case_ids([_item_name(it, i) for i, it in enumerate(raw)])
        records = []
        with staged_directory(self.output_dir, self.overwrite, inputs=inputs) as root:  # the output rule first
            if n == 0:
                raise self._empty()
            for i in range(n):
                try:
                    item = self.dataset[i]
                except RuntimeError as e:  # MONAI wraps transform errors; surface ours unchanged
                    raise unwrap(e) from e.__cause__
                results, metrics = self.reconstruct(item)
                (root / ids[i]).mkdir()
                self.write(root / ids[i], results, metrics)
                src = raw[i].get("case") if isinstance(raw[i], dict) else None
                records.append({"case": ids[i], "input": None if src is None else str(src), "output": ids[i], "status": "ok",
                                "metrics": metrics})
                if self.progress:
                    logger.info("%s: %s", ids[i], json.dumps({k: v for k, v in metrics.items() if not isinstance(v, dict)}))
            (root / SUMMARY).write_text(json.dumps(make_summary(records), indent=1, default=str))
        return [r["metrics"] for r in records]
