"""Long-form per-case results (one row per case × method, the layout every ``benchmarks/results/*.json`` uses) and the
questions a results file answers: each method's mean with its 95 % CI, and paired differences between methods."""

from __future__ import annotations

from collections.abc import Sequence

from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.evaluation.stats import Estimate, bootstrap_mean, paired_difference

__all__ = ["Results"]


class Results:
    """Rows ``{case keys…, method_key: name, metric: value, …}``.

    Args:
        rows: the per-case rows.
        case_keys: the keys that identify a case (e.g. ``("image", "kernel")``); two methods are paired on them.
        method_key: the key naming the method.

    Example:
        >>> r = Results(rows, ("image", "kernel"))
        >>> r.estimate("TV", "psnr")                       # mean [95 % CI] over the cases
        >>> r.compare("ours", "TV", "psnr", seen=True)      # paired difference on the rows with seen == True
    """

    def __init__(self, rows: Sequence[dict], case_keys: Sequence[str], method_key: str = "method") -> None:
        if not rows:
            raise InvalidValueError("Results: no rows")
        self.rows, self.case_keys, self.method_key = list(rows), tuple(case_keys), method_key

    def methods(self) -> list[str]:
        return list(dict.fromkeys(r[self.method_key] for r in self.rows))

    def values(self, method: str, metric: str, **where) -> dict[tuple, float]:
        """``{case: value}`` of ``method`` on the rows matching ``where`` (``key=value``; a list/tuple value matches any
        of its items). Raises if a case appears twice (the case keys do not identify a case)."""
        out = {}
        for r in self.rows:
            if r[self.method_key] != method or not all(_match(r.get(k), v) for k, v in where.items()):
                continue
            case = tuple(r[k] for k in self.case_keys)
            if case in out:
                raise InvalidValueError(f"Results: case {case} of {method!r} appears twice; add its distinguishing key to case_keys")
            out[case] = float(r[metric])
        if not out:
            raise InvalidValueError(f"Results: no rows of {method!r} with {metric!r} where {where}")
        return out

    def estimate(self, method: str, metric: str, **where) -> Estimate:
        return bootstrap_mean(list(self.values(method, metric, **where).values()))

    def compare(self, a: str, b: str, metric: str, higher_is_better: bool = True, **where) -> Estimate:
        """Paired difference ``a − b`` (``b − a`` when lower is better, so positive always means ``a`` is better)."""
        va, vb = self.values(a, metric, **where), self.values(b, metric, **where)
        return paired_difference(va, vb) if higher_is_better else paired_difference(vb, va)

    def table(self, metric: str, methods: Sequence[str] | None = None, fmt: str = ".2f", **where) -> list[str]:
        """Markdown rows ``| method | mean [95 % CI] | n |`` for ``methods`` (default: all, in first-seen order)."""
        lines = [f"| method | {metric}: mean [95 % CI] | n |", "|---|---|---|"]
        for m in methods or self.methods():
            try:
                e = self.estimate(m, metric, **where)
            except InvalidValueError:
                continue
            lines.append(f"| {m} | {e.mean:{fmt}} [{e.low:{fmt}}, {e.high:{fmt}}] | {e.n} |")
        return lines


def _match(value, want) -> bool:
    return value in want if isinstance(want, (list, tuple, set)) else value == want
