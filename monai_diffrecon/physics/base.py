"""One small linear-operator algebra shared by every forward model.

A :class:`LinearOperator` is a :class:`torch.nn.Module` that computes ``A x`` in :meth:`forward` and ``Aᴴ y`` in
:meth:`adjoint`. Everything else (``normal``, ``.H``, ``@`` composition, sums, scalar multiples, ``prox_l2``,
``pinv``, ``norm``) is derived here once, so a new operator only implements ``_forward`` and ``_adjoint`` and,
where its structure allows, closed forms for ``prox_l2`` / ``pinv``.

Shapes are declared, not discovered deep inside a run: each operator may set ``in_shape`` / ``out_shape`` (tuples
whose ``None`` entries match any size, the batch dimension included) and ``in_complex`` / ``out_complex``
(``True``: complex required, ``False``: real required, ``None``: either). ``A @ B`` checks ``B.out_shape`` against
``A.in_shape`` when it is built and raises :class:`~monai_diffrecon.errors.ShapeError` on a mismatch.

Parameters (masks, kernels, μ-maps, coil maps, angles) are registered buffers, so ``.to(device)``, ``.double()``
and ``state_dict`` work. :meth:`LinearOperator.to` is overridden so that a real dtype request keeps complex buffers
complex (``torch.nn.Module.to(torch.float64)`` would silently drop their imaginary part).

Example:
    >>> import torch
    >>> from monai_diffrecon.physics import Mask, Identity
    >>> A = Mask(torch.tensor([[1.0, 0.0], [1.0, 1.0]])[None, None])
    >>> B = 2.0 * Identity()
    >>> C = A @ B                      # C x = A(B x); C.H y = B.H(A.H y)
    >>> C(torch.ones(1, 1, 2, 2)).sum().item()
    6.0
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn

from monai_diffrecon.errors import DTypeError, InvalidValueError, ShapeError
from monai_diffrecon.physics.functional.devices import device_of, randn

__all__ = [
    "LinearOperator",
    "Compose",
    "Adjoint",
    "Sum",
    "Scaled",
    "Identity",
    "conjugate_gradient",
    "finite_checks",
    "ShapeSpec",
    "check_tensor",
    "check_angles",
]

ShapeSpec = tuple  # tuple[int | None, ...]

_CHECK_FINITE = [True]


@contextlib.contextmanager
def finite_checks(enabled: bool) -> Iterator[None]:
    """Turn the NaN/Inf check on operator inputs on or off inside a ``with`` block.

    The check costs one pass over the input; samplers that already validated their data may switch it off.
    """
    old = _CHECK_FINITE[0]
    _CHECK_FINITE[0] = bool(enabled)
    try:
        yield
    finally:
        _CHECK_FINITE[0] = old


def _fmt(spec: Sequence[int | None]) -> str:
    return "(" + ", ".join("*" if s is None else str(s) for s in spec) + ")"


def check_tensor(
    t: object,
    name: str,
    shape: Sequence[int | None] | None = None,
    complex_: bool | None = None,
    finite: bool = True,
) -> torch.Tensor:
    """Validate ``t`` against a shape spec and dtype kind; raise a typed error naming ``name``.

    Args:
        t: the tensor to check.
        name: argument name used in the error message.
        shape: expected shape, ``None`` entries match any size; ``None`` skips the check.
        complex_: ``True`` requires a complex dtype, ``False`` a real floating dtype, ``None`` accepts both.
        finite: also reject NaN/Inf (subject to :func:`finite_checks`).
    """
    if not isinstance(t, torch.Tensor):
        raise DTypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
    if not (t.is_floating_point() or t.is_complex()):
        raise DTypeError(f"{name}: expected a floating-point or complex tensor, got {t.dtype}")
    if complex_ is True and not t.is_complex():
        raise DTypeError(f"{name}: expected a complex tensor (complex64/complex128), got {t.dtype}")
    if complex_ is False and t.is_complex():
        raise DTypeError(f"{name}: expected a real tensor (float32/float64), got {t.dtype}")
    if shape is not None:
        ok = t.ndim == len(shape) and all(s is None or s == n for s, n in zip(shape, t.shape))
        if not ok:
            raise ShapeError(f"{name}: expected shape {_fmt(shape)}, got {tuple(t.shape)}")
    # one cheap reduction first (NaN/Inf propagate through a sum); the element-wise check only if it is not finite
    if finite and _CHECK_FINITE[0] and not bool(torch.isfinite(t.sum())) and not bool(torch.isfinite(t).all()):
        raise InvalidValueError(f"{name}: contains NaN or Inf")
    return t


def check_angles(angles_deg: object, name: str = "angles_deg") -> torch.Tensor:
    """Projection angles as a non-empty, finite, 1-D float64 tensor (degrees)."""
    angles = torch.as_tensor(angles_deg, dtype=torch.float64, device=device_of(angles_deg)).flatten()
    if angles.numel() == 0:
        raise ShapeError(f"{name}: need at least one view")
    return check_tensor(angles, name)


def _batch_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Real part of ⟨a, b⟩ per batch element, shaped ``(B, 1, ..., 1)`` for broadcasting."""
    dims = tuple(range(1, a.ndim))
    return (a.conj() * b).real.sum(dim=dims, keepdim=True) if dims else (a.conj() * b).real


def _batch_norm2(a: torch.Tensor) -> torch.Tensor:
    return _batch_dot(a, a)


def conjugate_gradient(
    apply: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    x0: torch.Tensor | None = None,
    tol: float = 1e-6,
    max_iter: int = 100,
    joint: bool = False,
) -> torch.Tensor:
    """Solve ``M x = b`` for a Hermitian positive (semi-)definite ``M``, independently per batch element.

    Args:
        apply: callable computing ``M x``; it must act on each batch element separately.
        b: right-hand side ``(B, ...)``, real or complex.
        x0: starting point (default zeros).
        tol: stop when ``‖b − M x‖ ≤ tol · ‖b‖`` for every batch element.
        max_iter: maximum number of iterations.
        joint: solve one system for the whole tensor instead of one per batch element — required when ``M``
            couples batch elements (operators with ``mixes_batch``, e.g. a slice batch forming one volume).

    Returns:
        ``x`` with the shape and dtype of ``b``. Differentiable (the iterations are unrolled).
    """
    if joint:
        shape = b.shape
        flat = conjugate_gradient(
            lambda v: apply(v.reshape(shape)).reshape(1, -1),
            b.reshape(1, -1),
            None if x0 is None else x0.reshape(1, -1),
            tol,
            max_iter,
        )
        return flat.reshape(shape)
    x = torch.zeros_like(b) if x0 is None else x0
    r = b - apply(x) if x0 is not None else b.clone()
    p = r
    rs = _batch_norm2(r)
    bnorm2 = _batch_norm2(b)
    thresh = (tol**2) * bnorm2
    tiny = torch.finfo(rs.dtype).tiny
    for _ in range(max_iter):
        if bool((rs <= thresh).all()):
            break
        mp = apply(p)
        denom = _batch_dot(p, mp)
        active = (rs > thresh) & (denom > tiny)
        alpha = torch.where(active, rs / torch.where(active, denom, torch.ones_like(denom)), torch.zeros_like(rs))
        x = x + alpha * p
        r = r - alpha * mp
        rs_new = _batch_norm2(r)
        beta = torch.where(active, rs_new / torch.where(rs > tiny, rs, torch.ones_like(rs)), torch.zeros_like(rs))
        p = r + beta * p
        rs = torch.where(active, rs_new, rs)
    return x


class LinearOperator(nn.Module):
    """Base class: a linear map ``A`` with its adjoint, as a ``torch.nn.Module``.

    Subclasses implement ``_forward(x)`` and ``_adjoint(y)`` (called after input validation) and set the shape
    attributes. They may override ``prox_l2`` / ``pinv`` with closed forms.

    Attributes:
        in_shape: expected shape of ``x`` (``None`` entries are free), or ``None`` if not known.
        out_shape: shape of ``y = A x`` for an input of ``in_shape``, or ``None``.
        in_complex: ``True`` if ``x`` must be complex, ``False`` if it must be real, ``None`` for either.
        out_complex: the same for ``y``.
    """

    in_shape: ShapeSpec | None = None
    out_shape: ShapeSpec | None = None
    in_complex: bool | None = None
    out_complex: bool | None = None
    #: True when output sample ``b`` depends on input samples other than ``b`` (the batch is one object);
    #: the generic CG solvers then solve one joint system instead of one per batch element.
    mixes_batch: bool = False

    # ------------------------------------------------------------------ core
    def _forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def check_input(self, x: torch.Tensor) -> torch.Tensor:
        """Validate an input ``x`` of the forward map (shape, dtype kind, finiteness)."""
        return check_tensor(x, "x", self.in_shape, self.in_complex)

    def check_output(self, y: torch.Tensor) -> torch.Tensor:
        """Validate an input ``y`` of the adjoint map."""
        return check_tensor(y, "y", self.out_shape, self.out_complex)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``A x``."""
        return self._forward(self.check_input(x))

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """``Aᴴ y`` (the exact adjoint for the real or complex Euclidean inner product)."""
        return self._adjoint(self.check_output(y))

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """``Aᴴ A x``."""
        return self._adjoint(self._forward(self.check_input(x)))

    @property
    def H(self) -> LinearOperator:
        """The adjoint as an operator (``A.H.H`` is ``A``)."""
        return Adjoint(self)

    # ------------------------------------------------------------- algebra
    def __matmul__(self, other: LinearOperator) -> LinearOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
        return Compose(self, other)

    def __add__(self, other: LinearOperator) -> LinearOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
        return Sum(self, other)

    def __sub__(self, other: LinearOperator) -> LinearOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
        return Sum(self, Scaled(-1.0, other))

    def __mul__(self, c: float | complex) -> LinearOperator:
        if isinstance(c, (int, float, complex)):
            return Scaled(c, self)
        return NotImplemented

    __rmul__ = __mul__

    def __neg__(self) -> LinearOperator:
        return Scaled(-1.0, self)

    # ----------------------------------------------------------- solvers
    def prox_l2(
        self,
        z: torch.Tensor,
        y: torch.Tensor,
        gamma: float | torch.Tensor,
        tol: float = 1e-6,
        max_iter: int = 100,
    ) -> torch.Tensor:
        """``argmin_x ½‖A x − y‖² + (1/2γ)‖x − z‖²``.

        Generic version: conjugate gradient on ``(AᴴA + I/γ) x = Aᴴ y + z/γ`` started at ``z``. Subclasses
        override it with a closed form where one exists.

        Args:
            z: proximal centre, shape of ``x``.
            y: measurement, shape of ``A x``.
            gamma: step ``γ > 0``; a float or a tensor broadcastable to ``x`` (e.g. ``(B, 1, 1, 1)``).
            tol: CG relative residual tolerance.
            max_iter: CG iteration cap.
        """
        z = self.check_input(z)
        y = self.check_output(y)
        inv_g = 1.0 / _positive(gamma, "gamma", z)
        rhs = self._adjoint(y) + inv_g * z
        return conjugate_gradient(
            lambda v: self._adjoint(self._forward(v)) + inv_g * v, rhs, z, tol, max_iter, joint=self.mixes_batch
        )

    def pinv(self, y: torch.Tensor, tol: float = 1e-6, max_iter: int = 100) -> torch.Tensor:
        """Minimum-norm least-squares solution ``A⁺ y``.

        Generic version: CG on the normal equations ``AᴴA x = Aᴴ y`` from ``x = 0`` (which converges to the
        minimum-norm solution). Operators with a cheap exact pseudo-inverse (masks, FFT-diagonal operators)
        override it.
        """
        y = self.check_output(y)
        return conjugate_gradient(
            lambda v: self._adjoint(self._forward(v)), self._adjoint(y), None, tol, max_iter, joint=self.mixes_batch
        )

    @torch.no_grad()
    def norm(
        self,
        shape: Sequence[int] | None = None,
        max_iter: int = 300,
        tol: float = 1e-10,
        generator: torch.Generator | None = None,
        dtype: torch.dtype | None = None,
    ) -> float:
        """Spectral norm ``‖A‖₂ = sqrt(λ_max(AᴴA))`` by power iteration with the Rayleigh quotient.

        For operators with per-sample parameters the norm of the batched (block-diagonal) operator is returned,
        i.e. the maximum over the batch. Convergence is slow when the top eigenvalues cluster; the estimate is
        always a lower bound.

        Args:
            shape: shape of ``x`` to iterate on; defaults to ``in_shape`` with free dims set to 1 (error if the
                operator does not know its input size).
            max_iter: iteration cap. tol: relative change of the estimate at which to stop.
            generator: random generator for the start vector (default: a fresh CPU one seeded with 0, so the start
                vector is the same on every device); drawn on its own device, then moved to the operator's.
            dtype: dtype of the iterate (default float64 / complex128 for accuracy).
        """
        if shape is None:
            if self.in_shape is None or any(s is None for s in self.in_shape[1:]):
                raise ShapeError(f"{type(self).__name__}.norm(): pass `shape`, the input size is not fixed")
            shape = tuple(1 if s is None else s for s in self.in_shape)
        dev = self._device()
        gen = generator if generator is not None else torch.Generator(device="cpu").manual_seed(0)
        real = torch.float64 if dtype is None else (dtype.to_real() if dtype.is_complex else dtype)
        v = randn(tuple(shape), gen, dtype=real, device=dev)
        if self.in_complex or (dtype is not None and dtype.is_complex):
            v = torch.complex(v, randn(tuple(shape), gen, dtype=real, device=dev))
        v = v / v.abs().pow(2).sum().sqrt()
        lam = 0.0
        for _ in range(max_iter):
            w = self.normal(v)
            lam_new = float(torch.vdot(v.flatten(), w.flatten()).real) if v.is_complex() else float((v * w).sum())
            wn = float(w.abs().pow(2).sum().sqrt())
            if wn == 0.0:
                return 0.0
            v = w / wn
            if abs(lam_new - lam) <= tol * abs(lam_new):
                lam = lam_new
                break
            lam = lam_new
        return math.sqrt(max(lam, 0.0))

    # ------------------------------------------------------------- dtypes
    def _device(self) -> torch.device:
        for t in self.buffers():
            return t.device
        return torch.device("cpu")

    def to(self, *args, **kwargs):  # noqa: D401 - same contract as nn.Module.to
        """Like :meth:`torch.nn.Module.to`, but a dtype request maps real buffers to the real dtype and complex
        buffers to the matching complex dtype (``complex64`` ↔ ``float32``, ``complex128`` ↔ ``float64``)."""
        device, dtype, non_blocking, _ = torch._C._nn._parse_to(*args, **kwargs)
        if dtype is None:
            return super().to(*args, **kwargs)
        if not (dtype.is_floating_point or dtype.is_complex):
            raise DTypeError(f"{type(self).__name__}.to(): dtype must be floating or complex, got {dtype}")
        real = dtype.to_real() if dtype.is_complex else dtype
        cplx = real.to_complex()

        def convert(t: torch.Tensor) -> torch.Tensor:
            if t.is_complex():
                return t.to(device, cplx, non_blocking)
            if t.is_floating_point():
                return t.to(device, real, non_blocking)
            return t.to(device, non_blocking=non_blocking)

        return self._apply(convert)

    def double(self):
        return self.to(torch.float64)

    def float(self):
        return self.to(torch.float32)

    @staticmethod
    def _like(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Cast buffer ``t`` to the precision and device of ``x`` (keeping ``t`` real or complex)."""
        real = x.real.dtype if x.is_complex() else x.dtype
        dtype = real.to_complex() if t.is_complex() else real
        if t.dtype == dtype and t.device == x.device:
            return t
        return t.to(device=x.device, dtype=dtype)

    def extra_repr(self) -> str:
        parts = []
        if self.in_shape is not None:
            parts.append(f"in_shape={_fmt(self.in_shape)}")
        if self.out_shape is not None:
            parts.append(f"out_shape={_fmt(self.out_shape)}")
        return ", ".join(parts)


def _positive(gamma: float | torch.Tensor, name: str, like: torch.Tensor) -> float | torch.Tensor:
    if isinstance(gamma, torch.Tensor):
        if not bool((gamma > 0).all()):
            raise InvalidValueError(f"{name}: must be > 0")
        return gamma.to(device=like.device, dtype=like.real.dtype if like.is_complex() else like.dtype)
    if not gamma > 0:
        raise InvalidValueError(f"{name}: must be > 0, got {gamma}")
    return float(gamma)


def _compatible(a: ShapeSpec | None, b: ShapeSpec | None) -> bool:
    if a is None or b is None:
        return True
    return len(a) == len(b) and all(p is None or q is None or p == q for p, q in zip(a, b))


def _complex_ok(produced: bool | None, required: bool | None) -> bool:
    return produced is None or required is None or produced == required


class Adjoint(LinearOperator):
    """``Aᴴ`` as an operator. Built by :attr:`LinearOperator.H`; ``Adjoint(A).H`` returns ``A`` itself."""

    def __init__(self, op: LinearOperator) -> None:
        super().__init__()
        self.op = op
        self.in_shape, self.out_shape = op.out_shape, op.in_shape
        self.in_complex, self.out_complex = op.out_complex, op.in_complex
        self.mixes_batch = op.mixes_batch

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op._adjoint(x)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.op._forward(y)

    @property
    def H(self) -> LinearOperator:
        return self.op


class Compose(LinearOperator):
    """``A₁ A₂ … Aₙ`` (applied right to left). ``Compose(A, B) == A @ B``; adjoint ``Bᴴ Aᴴ``.

    Shapes and real/complex kinds of consecutive factors are checked at construction.
    """

    def __init__(self, *ops: LinearOperator) -> None:
        super().__init__()
        flat: list[LinearOperator] = []
        for op in ops:
            if not isinstance(op, LinearOperator):
                raise DTypeError(f"Compose: expected LinearOperator factors, got {type(op).__name__}")
            flat.extend(op.ops if isinstance(op, Compose) else [op])
        if len(flat) < 1:
            raise ShapeError("Compose: needs at least one operator")
        for left, right in zip(flat[:-1], flat[1:]):
            if not _compatible(right.out_shape, left.in_shape):
                raise ShapeError(
                    f"Compose: {type(right).__name__} produces {_fmt(right.out_shape)} but "
                    f"{type(left).__name__} expects {_fmt(left.in_shape)}"
                )
            if not _complex_ok(right.out_complex, left.in_complex):
                kind = "complex" if left.in_complex else "real"
                raise DTypeError(f"Compose: {type(left).__name__} expects {kind} input from {type(right).__name__}")
        self.ops = nn.ModuleList(flat)
        self.in_shape, self.in_complex = flat[-1].in_shape, flat[-1].in_complex
        self.out_shape, self.out_complex = flat[0].out_shape, flat[0].out_complex
        self.mixes_batch = any(op.mixes_batch for op in flat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for op in reversed(self.ops):
            x = op(x)
        return x

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        for op in self.ops:
            y = op.adjoint(y)
        return y

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        for op in reversed(self.ops):
            x = op._forward(x)
        return x

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        for op in self.ops:
            y = op._adjoint(y)
        return y


class Sum(LinearOperator):
    """``A + B`` (both map the same input to the same output space)."""

    def __init__(self, a: LinearOperator, b: LinearOperator) -> None:
        super().__init__()
        if not (_compatible(a.in_shape, b.in_shape) and _compatible(a.out_shape, b.out_shape)):
            raise ShapeError(
                f"Sum: {type(a).__name__} {_fmt(a.in_shape or ())}->{_fmt(a.out_shape or ())} and "
                f"{type(b).__name__} {_fmt(b.in_shape or ())}->{_fmt(b.out_shape or ())} differ"
            )
        self.a, self.b = a, b
        self.in_shape = a.in_shape if a.in_shape is not None else b.in_shape
        self.out_shape = a.out_shape if a.out_shape is not None else b.out_shape
        self.in_complex = a.in_complex if a.in_complex is not None else b.in_complex
        self.out_complex = a.out_complex if a.out_complex is not None else b.out_complex
        self.mixes_batch = a.mixes_batch or b.mixes_batch

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a._forward(x) + self.b._forward(x)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.a._adjoint(y) + self.b._adjoint(y)


class Scaled(LinearOperator):
    """``c · A`` for a Python scalar ``c``; adjoint ``conj(c) · Aᴴ``; inherits ``A``'s closed-form prox."""

    def __init__(self, c: float | complex, op: LinearOperator) -> None:
        super().__init__()
        self.c = complex(c) if isinstance(c, complex) else float(c)
        self.op = op
        self.in_shape, self.out_shape = op.in_shape, op.out_shape
        self.in_complex, self.out_complex = op.in_complex, op.out_complex
        self.mixes_batch = op.mixes_batch

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c * self.op._forward(x)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        c = self.c.conjugate() if isinstance(self.c, complex) else self.c
        return c * self.op._adjoint(y)

    def prox_l2(self, z, y, gamma, tol=1e-6, max_iter=100):
        # ½‖cAx − y‖² = ½|c|²‖Ax − y/c‖²  ⇒  prox_{cA}(z, y, γ) = prox_A(z, y/c, γ|c|²)
        if self.c == 0:
            return self.check_input(z).clone()
        return self.op.prox_l2(z, y / self.c, gamma * abs(self.c) ** 2, tol=tol, max_iter=max_iter)

    def norm(self, shape=None, **kwargs) -> float:
        return abs(self.c) * self.op.norm(shape, **kwargs)

    def extra_repr(self) -> str:
        return f"c={self.c}"


class Identity(LinearOperator):
    """``I``. Optional ``shape`` (``None`` entries free) enables shape checks and :meth:`norm` without arguments."""

    def __init__(self, shape: Sequence[int | None] | None = None) -> None:
        super().__init__()
        self.in_shape = self.out_shape = None if shape is None else tuple(shape)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return y

    def prox_l2(self, z, y, gamma, tol=1e-6, max_iter=100):
        z, y = self.check_input(z), self.check_output(y)
        g = _positive(gamma, "gamma", z)
        return (g * y + z) / (g + 1.0)

    def pinv(self, y, tol=1e-6, max_iter=100):
        return self.check_output(y)
