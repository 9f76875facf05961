"""Statistics of paired per-case results: mean with a 95 % bootstrap confidence interval, and the paired difference
of two methods over the same cases with its interval — the only form in which an "A beats B" statement is made.

The interval is the percentile bootstrap of the mean (resampling cases with replacement, a fixed seed so that a
results file is reproducible). With few cases it is optimistic (it under-covers below about 10 cases); the number of
cases is always reported beside it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from monai_diffrecon.errors import InvalidValueError, ShapeError

__all__ = ["Estimate", "bootstrap_mean", "paired_difference"]

N_BOOT = 10_000


@dataclass(frozen=True)
class Estimate:
    """A mean over ``n`` cases with its ``level`` confidence interval ``[low, high]``."""

    mean: float
    low: float
    high: float
    n: int
    level: float = 0.95

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.mean:.2f} [{self.low:.2f}, {self.high:.2f}]"


def bootstrap_mean(values: Sequence[float], level: float = 0.95, n_boot: int = N_BOOT, seed: int = 0) -> Estimate:
    """Mean of ``values`` (one per case) with the percentile-bootstrap interval at ``level``.

    Raises:
        InvalidValueError: no values, NaN/Inf among them, or ``level`` outside (0, 1).
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size == 0 or not np.isfinite(v).all():
        raise InvalidValueError(f"bootstrap_mean: need one or more finite values, got {v.tolist()[:10]}")
    if not 0 < level < 1:
        raise InvalidValueError(f"level: must be in (0, 1), got {level}")
    if v.size == 1:
        return Estimate(float(v[0]), float(v[0]), float(v[0]), 1, level)
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(n_boot, v.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return Estimate(float(v.mean()), float(lo), float(hi), int(v.size), level)


def paired_difference(a: Mapping, b: Mapping, level: float = 0.95, n_boot: int = N_BOOT, seed: int = 0) -> Estimate:
    """``a − b`` over the cases both hold (``{case: value}``), with the bootstrap interval of its mean.

    Raises:
        ShapeError: the two methods were not run on the same cases (a paired comparison needs them all).
    """
    if set(a) != set(b):
        missing = sorted(map(str, set(a) ^ set(b)))[:5]
        raise ShapeError(f"paired_difference: the methods were run on different cases (e.g. {missing})")
    keys = sorted(a, key=str)
    return bootstrap_mean([a[k] - b[k] for k in keys], level, n_boot, seed)
