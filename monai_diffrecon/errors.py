"""Typed errors raised by monai_diffrecon.

Every error a user can trigger with bad input is a subclass of :class:`DiffReconError`, so a pipeline can catch
one type. The subclasses also derive from the matching built-in exception (``ValueError``, ``TypeError``, ...)
so code written against the standard library keeps working. Messages name the argument (or file) and what was
expected, e.g. ``"x: expected shape (B, 1, 64, 64), got (2, 1, 64, 63)"``.
"""

from __future__ import annotations

__all__ = [
    "unwrap",
    "DiffReconError",
    "ShapeError",
    "DTypeError",
    "InvalidValueError",
    "ConvergenceError",
    "DependencyError",
    "DicomError",
    "SeriesAssemblyError",
    "KSpaceError",
    "OutputError",
    "TrainingError",
    "WeightsError",
]


class DiffReconError(Exception):
    """Base class of every error raised on purpose by monai_diffrecon."""


class ShapeError(DiffReconError, ValueError):
    """A tensor has the wrong number of dimensions or the wrong size along one of them."""


class DTypeError(DiffReconError, TypeError):
    """A tensor has the wrong dtype (e.g. real where complex is required, or an integer tensor)."""


class InvalidValueError(DiffReconError, ValueError):
    """A value is out of its valid range: NaN/Inf, negative attenuation, non-positive spacing, ..."""


class ConvergenceError(DiffReconError, RuntimeError):
    """An iterative solver did not reach its tolerance and the caller asked for a hard failure."""


class DependencyError(DiffReconError, ImportError):
    """An optional dependency needed for this feature is not installed."""


class DicomError(DiffReconError, ValueError):
    """A DICOM file is unreadable, truncated, inconsistent or missing what the reader needs.

    Attributes:
        path: the offending file (or folder), as given.
        tag: keyword of the offending attribute when one is to blame (e.g. ``"PixelSpacing"``), else ``None``.

    The message never contains attribute *values* of patient-identifying tags.
    """

    def __init__(self, path: object, problem: str, tag: str | None = None) -> None:
        self.path = str(path)
        self.tag = tag
        self.problem = problem
        where = f" [{tag}]" if tag else ""
        super().__init__(f"{self.path}{where}: {problem}")


class SeriesAssemblyError(DicomError):
    """Slices cannot be assembled into one volume without guessing (two series, missing slice, duplicates, tilt…)."""


class KSpaceError(DiffReconError, ValueError):
    """A raw-data (k-space) file is unreadable or inconsistent."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        super().__init__(f"{self.path}: {problem}")


class OutputError(DiffReconError, ValueError):
    """Data cannot be written faithfully (NaN/Inf, values outside what the output format can represent, …)."""


class TrainingError(DiffReconError, RuntimeError):
    """Training cannot continue (NaN/Inf loss, incompatible checkpoint, …); the last good checkpoint is kept."""


class WeightsError(DiffReconError, ValueError):
    """Model weights are missing, do not match their recorded sha256, or are not a plain state dict."""


def unwrap(exc: BaseException) -> BaseException:
    """The first :class:`DiffReconError` in ``exc``'s cause chain (MONAI's ``Compose`` wraps transform errors in a
    ``RuntimeError("applying transform …")``), or ``exc`` itself."""
    e: BaseException | None = exc
    while e is not None:
        if isinstance(e, DiffReconError):
            return e
        e = e.__cause__ or e.__context__
    return exc
