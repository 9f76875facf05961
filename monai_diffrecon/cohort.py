"""Cohort inference: one bundle over a list of studies, sharded across ``torchrun`` ranks.

``diffrecon run BUNDLE --input cohort.json --output OUT`` reads a JSON list of study inputs (folders or files; strings,
or objects with an ``"input"`` key; relative paths are relative to the list file) and writes study ``i`` to
``OUT/case_XXX`` through the bundle's own staged output, so every study is written exactly once and completely or not
at all. Under ``torchrun --nproc_per_node=N`` (``RANK``/``WORLD_SIZE`` in the environment) rank ``r`` takes the
studies ``i ≡ r (mod N)``; each study's sampling is seeded by the bundle's ``seed`` alone, so the outputs equal a
single-process run. Every rank writes ``OUT/.cohort/rank_<r>.json``; the last rank to finish (a gloo barrier when a
process group can be formed, else the file count) merges them into ``OUT/summary.json`` with one entry per study.

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
               trust_config: bool = False, rank: int | None = None, world: int | None = None) -> dict | None:
    """Run ``bundle`` on this rank's share of ``inputs``; returns the merged summary on the rank that wrote it, else
    ``None``. ``rank``/``world`` default to torchrun's environment."""
    from monai_diffrecon.bundles import run_bundle

    if rank is None or world is None:
        rank, world = dist_rank_world()
    out = Path(output_dir)
    parts = out / ".cohort"
    parts.mkdir(parents=True, exist_ok=True)
    records = []
    for i in shard(len(inputs), rank, world):
        t0 = time.perf_counter()
        rec = {"case": i, "input": inputs[i], "output": f"case_{i:03d}", "rank": rank}
        try:
            res = run_bundle(bundle, "inference", trust_config, input_dir=inputs[i], output_dir=str(out / rec["output"]), **(overrides or {}))
            rec["metrics"] = res[0] if isinstance(res, list) and len(res) == 1 else res
            rec["status"] = "ok"
        except DiffReconError as e:
            if not keep_going:
                raise
            rec.update(status="failed", error=f"{type(e).__name__}: {e}")
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
    cases = sorted((r for f in done for r in json.loads(f.read_text())), key=lambda r: r["case"])
    summary = {"bundle": bundle, "n_cases": len(inputs), "ok": sum(r["status"] == "ok" for r in cases),
               "failed": [r for r in cases if r["status"] != "ok"], "world_size": world, "cases": cases}
    tmp = out / ".summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=1, default=str))
    tmp.replace(out / "summary.json")
    return summary


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
