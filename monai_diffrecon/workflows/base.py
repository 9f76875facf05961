"""The loop every reconstruction bundle shares: one case per dataset item, typed errors surfaced unchanged, each case
written through a staged folder (``output_dir`` for one case, ``output_dir/case_XXX`` for several) and a
``summary.json`` (mean ± sd of every numeric metric) for several cases.

Subclasses implement :meth:`CaseWorkflow.reconstruct` (item → results, metrics) and :meth:`CaseWorkflow.write`
(out_dir, results, metrics); they stay thin.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from monai_diffrecon.errors import InvalidValueError, unwrap

__all__ = ["CaseWorkflow", "summarize"]


def summarize(metrics: list[dict]) -> dict:
    """Mean and standard deviation over cases of every numeric metric."""
    keys = [k for k, v in metrics[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    out = {"n_cases": len(metrics)}
    for k in keys:
        vals = np.array([m[k] for m in metrics if isinstance(m.get(k), (int, float))], dtype=np.float64)
        out[k] = {"mean": float(vals.mean()), "std": float(vals.std(ddof=1)) if vals.size > 1 else 0.0}
    return out


class CaseWorkflow:
    """Base evaluator: ``dataset`` (MONAI Dataset), ``output_dir``, ``progress``; see module doc."""

    empty_error: type[Exception] = InvalidValueError

    def __init__(self, dataset, output_dir, progress: bool = True) -> None:
        self.dataset, self.output_dir, self.progress = dataset, Path(output_dir), progress

    def reconstruct(self, item: dict) -> tuple[dict, dict]:  # pragma: no cover - abstract
        raise NotImplementedError

    def write(self, out_dir: Path, results: dict, metrics: dict) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _empty(self) -> Exception:
        return InvalidValueError(f"{self.output_dir}: no case to reconstruct")

    def run(self) -> list[dict]:
        n = len(self.dataset)
        if n == 0:
            raise self._empty()
        all_metrics = []
        for i in range(n):
            try:
                item = self.dataset[i]
            except RuntimeError as e:  # MONAI wraps transform errors; surface ours unchanged
                raise unwrap(e) from e.__cause__
            results, metrics = self.reconstruct(item)
            self.write(self.output_dir if n == 1 else self.output_dir / f"case_{i:03d}", results, metrics)
            all_metrics.append(metrics)
            if self.progress:
                print(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, dict)}, indent=None))
        if n > 1:
            tmp = self.output_dir / ".summary.json.tmp"
            tmp.write_text(json.dumps(summarize(all_metrics), indent=2))
            tmp.replace(self.output_dir / "summary.json")
        return all_metrics
