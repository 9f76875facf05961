"""Statistics of paired per-case results: mean with a 95 % bootstrap confidence interval, and the paired difference
of two methods over the same cases with its interval — the only form in which an "A beats B" statement is made.

The interval is the percentile bootstrap of the mean (resampling cases with replacement, a fixed seed so that a
results file is reproducible). With few cases it is optimistic (it under-covers below about 10 cases); the number of
cases is always reported beside it.

Two more statistics use the same resampling: :func:`unpaired_difference` (the means of two independent sets of cases,
e.g. two phantom families, each resampled on its own) and :func:`bootstrap_auc_difference` (the ROC AUC of two
decision variables read on the same labelled cases, the cases resampled jointly for both). :func:`share_within` is the
per-case agreement measure (the share of a vector's elements within a tolerance of a reference vector).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from monai_diffrecon.errors import InvalidValueError, ShapeError

__all__ = ["Estimate", "bootstrap_mean", "paired_difference", "unpaired_difference", "bootstrap_auc_difference", "share_within"]

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


def unpaired_difference(a: Sequence[float], b: Sequence[float], level: float = 0.95, n_boot: int = N_BOOT, seed: int = 0) -> Estimate:
    """``mean(a) − mean(b)`` of two independent sets of cases (e.g. different phantoms), with the percentile-bootstrap
    interval from resampling each set on its own; ``n`` is ``len(a) + len(b)``.

    Raises:
        InvalidValueError: an empty set, non-finite values, or ``level`` outside (0, 1).
    """
    va, vb = (np.asarray(v, dtype=np.float64).reshape(-1) for v in (a, b))
    if va.size == 0 or vb.size == 0 or not (np.isfinite(va).all() and np.isfinite(vb).all()):
        raise InvalidValueError(f"unpaired_difference: need finite values in both sets, got {va.size} and {vb.size} values")
    if not 0 < level < 1:
        raise InvalidValueError(f"level: must be in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    boots = va[rng.integers(0, va.size, size=(n_boot, va.size))].mean(axis=1) - vb[rng.integers(0, vb.size, size=(n_boot, vb.size))].mean(axis=1)
    lo, hi = np.quantile(boots, [(1 - level) / 2, 1 - (1 - level) / 2])
    return Estimate(float(va.mean() - vb.mean()), float(lo), float(hi), int(va.size + vb.size), level)


def _weighted_auc(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mann–Whitney AUC (ties count ½; larger score = positive) of each row of case multiplicities ``weights``
    ``(B, n)``; NaN for a row without a positive or without a negative."""
    pos, neg = scores[labels], scores[~labels]
    kernel = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    wp, wn = weights[:, labels], weights[:, ~labels]
    den = wp.sum(axis=1) * wn.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, np.einsum("bi,ij,bj->b", wp, kernel, wn) / np.where(den > 0, den, 1.0), np.nan)


def bootstrap_auc_difference(a: Mapping, b: Mapping, labels: Mapping, level: float = 0.95, n_boot: int = N_BOOT,
                             seed: int = 0) -> tuple[Estimate, dict]:
    """``AUC(a) − AUC(b)``: two decision variables (``{case: score}``, larger = positive) read on the same cases
    (``labels``: ``{case: bool}``, True = positive), each AUC the Mann–Whitney statistic (ties count ½). The
    percentile-bootstrap interval resamples the cases jointly (the same resampled cases for both AUCs, so the
    pairing is kept; the class sizes vary); a resample without a positive or without a negative is skipped.

    Returns:
        ``(estimate, extra)``: the difference with its interval (``n`` = number of cases) and ``{"auc_a", "auc_b",
        "n_positive", "n_negative", "skipped"}`` (``skipped``: resamples left out for lacking a class).

    Raises:
        ShapeError: ``a``, ``b`` and ``labels`` not on the same cases.
        InvalidValueError: no positive or no negative case, non-finite scores, or ``level`` outside (0, 1).
    """
    if not set(a) == set(b) == set(labels):
        raise ShapeError("bootstrap_auc_difference: a, b and labels must hold the same cases")
    if not 0 < level < 1:
        raise InvalidValueError(f"level: must be in (0, 1), got {level}")
    keys = sorted(a, key=str)
    sa, sb = (np.array([d[k] for k in keys], dtype=np.float64) for d in (a, b))
    y = np.array([bool(labels[k]) for k in keys])
    if y.all() or not y.any() or not (np.isfinite(sa).all() and np.isfinite(sb).all()):
        raise InvalidValueError(f"bootstrap_auc_difference: need finite scores and both classes, got {int(y.sum())} positives of {y.size}")
    ones = np.ones((1, y.size))
    auc_a, auc_b = float(_weighted_auc(sa, y, ones)[0]), float(_weighted_auc(sb, y, ones)[0])
    idx = np.random.default_rng(seed).integers(0, y.size, size=(n_boot, y.size))
    counts = np.zeros((n_boot, y.size))
    np.add.at(counts, (np.arange(n_boot)[:, None], idx), 1.0)
    boots = _weighted_auc(sa, y, counts) - _weighted_auc(sb, y, counts)
    kept = boots[np.isfinite(boots)]
    lo, hi = np.quantile(kept, [(1 - level) / 2, 1 - (1 - level) / 2])
    extra = {"auc_a": auc_a, "auc_b": auc_b, "n_positive": int(y.sum()), "n_negative": int((~y).sum()), "skipped": int(n_boot - kept.size)}
    return Estimate(auc_a - auc_b, float(lo), float(hi), int(y.size), level), extra


def share_within(values: Sequence[float], reference: Sequence[float], tolerance: float) -> float:
    """The share of the elements of ``values`` within ``±tolerance`` of the same elements of ``reference`` (a NaN on
    either side counts as outside).

    Raises:
        ShapeError: different lengths, or no elements.
    """
    v, r = np.asarray(values, dtype=np.float64).reshape(-1), np.asarray(reference, dtype=np.float64).reshape(-1)
    if v.shape != r.shape or v.size == 0:
        raise ShapeError(f"share_within: two equally long non-empty vectors required, got {v.size} and {r.size} elements")
    with np.errstate(invalid="ignore"):
        return float(np.mean(np.abs(v - r) <= tolerance))
