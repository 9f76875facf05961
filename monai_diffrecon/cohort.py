"""Cohort inference: one bundle over a list of studies, sharded across ``torchrun`` ranks.

``diffrecon run BUNDLE --input cohort.json --output OUT`` reads a JSON list of study inputs (folders or files; strings,
or objects with an ``"input"`` key; relative paths are relative to the list file) and writes study ``i`` to
``OUT/<case id>/`` (the id from the input's folder or file name; the same layout as a single run), all through one
staging folder renamed into place at the end, so the cohort appears complete or not at all. Under ``torchrun --nproc_per_node=N`` (``RANK``/``WORLD_SIZE`` in the environment) rank ``r`` takes the
studies ``i ≡ r (mod N)``; each study's sampling is seeded by the bundle's ``seed`` alone, so the outputs equal a
single-process run. Every rank writes its records into the staging folder; the last rank to finish (a gloo barrier
when a process group can be formed, else the file count) merges them into ``OUT/summary.json`` with one entry per
study and renames the staging folder onto ``OUT``.

With ``keep_going`` a study that fails with a typed error (:class:`~monai_diffrecon.errors.DiffReconError`: unreadable
DICOM, bad k-space, …) is recorded in the summary and the run goes on; the CLI then exits with 3 (partial).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from monai_diffrecon.errors import DiffReconError, InvalidValueError

__all__ = ["read_cohort_list", "shard", "run_cohort", "dist_rank_world"]


def read_cohort_list(path: str | Path) -> list[str]:
    """Study inputs from a JSON list file (see module doc); typed errors name the file and the entry."""
    p = Path(path)
    try:
        items = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise InvalidValueError(f"{p}: not a readable JSON list of studies ({type(e).__name__}: {e})") from None
    if not isinstance(items, list) or not items:
        raise InvalidValueError(f"{p}: expected a non-empty JSON list of study inputs")
    out = []
    for i, it in enumerate(items):
        s = it.get("input") if isinstance(it, dict) else it
        if not isinstance(s, str) or not s:
            raise InvalidValueError(f"{p}: entry {i} is not a path (a string or an object with 'input')")
        q = Path(s) if Path(s).is_absolute() else (p.parent / s)
        if not q.exists():
            raise InvalidValueError(f"{p}: entry {i}: {q} does not exist")
        out.append(str(q.resolve()))
    return out


def dist_rank_world() -> tuple[int, int]:
    """``(rank, world_size)`` from torchrun's environment (``(0, 1)`` outside torchrun)."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def shard(n: int, rank: int, world: int) -> list[int]:
    """Indices of the studies rank ``rank`` of ``world`` processes: every index exactly once over all ranks."""
    if world < 1 or not 0 <= rank < world:
        raise InvalidValueError(f"rank {rank} / world size {world} is not a valid process layout")
    return list(range(rank, n, world))


def run_cohort(bundle: str, inputs: list[str], output_dir: str | Path, overrides: dict | None = None, keep_going: bool = False,
               trust_config: bool = False, rank: int | None = None, world: int | None = None, overwrite: bool = False) -> dict | None:
    """Run ``bundle`` on this rank's share of ``inputs``; returns the merged summary on the rank that wrote it, else
    ``None``. ``rank``/``world`` default to torchrun's environment. ``output_dir`` follows the output rule of
    :mod:`monai_diffrecon.io.staging` (checked on every rank before any study runs) and the layout of
    :mod:`monai_diffrecon.workflows.base`: ``OUT/<case id>/`` per study (the id from the input's name), ``summary.json``
    and ``manifest.json``, all staged in one hidden sibling folder that the merging rank renames into place."""
    import shutil

    from monai_diffrecon.bundles import run_bundle
    from monai_diffrecon.io.staging import check_output, commit_staging, new_staging
    from monai_diffrecon.workflows.base import SUMMARY, case_ids, make_summary

    if rank is None or world is None:
        rank, world = dist_rank_world()
    check_output(output_dir, inputs, overwrite)
    ids = case_ids([Path(p).stem if Path(p).is_file() else Path(p).name for p in inputs])
    stage = _shared_staging(output_dir, rank, world, new_staging)
    parts = stage / ".cohort"
    parts.mkdir(exist_ok=True)
    records = []
    for i in shard(len(inputs), rank, world):
        t0 = time.perf_counter()
        rec = {"case": ids[i], "input": inputs[i], "output": ids[i], "rank": rank}
        work = parts / f"work_{i:05d}"
        try:
            res = run_bundle(bundle, "inference", trust_config, input_dir=inputs[i], output_dir=str(work), **(overrides or {}))
            rec["metrics"] = res[0] if isinstance(res, list) and len(res) == 1 else res
            rec["status"] = "ok"
            inner = json.loads((work / SUMMARY).read_text())["cases"]
            if len(inner) == 1:  # the usual case: the study's folder becomes OUT/<case id>
                os.replace(work / inner[0]["output"], stage / ids[i])
            else:  # an entry holding several studies keeps its own per-study folders and summary
                (work / "manifest.json").unlink()
                os.replace(work, stage / ids[i])
        except DiffReconError as e:
            if not keep_going:
                shutil.rmtree(stage, ignore_errors=True)
                raise
            rec.update(status="failed", error=f"{type(e).__name__}: {e}")
        shutil.rmtree(work, ignore_errors=True)
        rec["seconds"] = round(time.perf_counter() - t0, 2)
        records.append(rec)
    tmp = parts / f".rank_{rank}.json.tmp"
    tmp.write_text(json.dumps(records, indent=1, default=str))
    tmp.replace(parts / f"rank_{rank}.json")
    _barrier(world)
    if rank != 0 and world > 1 and _has_group():
        return None
    done = sorted(parts.glob("rank_*.json"))
    if len(done) < world:  # no process group: the last rank to finish merges
        return None
    cases = sorted((r for f in done for r in json.loads(f.read_text())), key=lambda r: inputs.index(r["input"]))
    summary = make_summary(cases, bundle=bundle, world_size=world)
    shutil.rmtree(parts)
    (stage / SUMMARY).write_text(json.dumps(summary, indent=1, default=str))
    commit_staging(stage, output_dir, overwrite)
    return summary


def _shared_staging(output_dir, rank: int, world: int, new_staging) -> Path:
    """One staging folder for all ranks of this launch: rank 0 creates it and broadcasts its name over the gloo group
    (a fixed name from torchrun's run id when no group can be formed)."""
    if world <= 1:
        return new_staging(output_dir)
    _barrier(world)  # forms the group when the launcher gave a rendezvous address
    if not _has_group():
        return new_staging(output_dir, os.environ.get("TORCHELASTIC_RUN_ID", "cohort"))
    import torch.distributed as dist

    name = [str(new_staging(output_dir)) if rank == 0 else None]
    dist.broadcast_object_list(name, src=0)
    return Path(name[0])


def _has_group() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def _barrier(world: int) -> None:
    """A gloo barrier across the torchrun ranks (formed here if the launcher gave a rendezvous address)."""
    if world <= 1:
        return
    import torch.distributed as dist

    if not dist.is_available():
        return
    if not dist.is_initialized() and "MASTER_ADDR" in os.environ:
        dist.init_process_group("gloo")
    if dist.is_initialized():
        dist.barrier()
