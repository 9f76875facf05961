"""Typed errors raised by monai_diffrecon.

Every error a user can trigger with bad input is a subclass of :class:`DiffReconError`, so a pipeline can catch
one type. The subclasses also derive from the matching built-in exception (``ValueError``, ``TypeError``, ...)
so code written against the standard library keeps working. Messages name the argument (or file) and what was
expected, e.g. ``"x: expected shape (B, 1, 64, 64), got (2, 1, 64, 63)"``.
"""

from __future__ import annotations

__all__ = [
    "DiffReconError",
    "ShapeError",
    "DTypeError",
    "InvalidValueError",
    "ConvergenceError",
    "DependencyError",
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
