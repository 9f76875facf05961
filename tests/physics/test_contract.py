"""One parametrised contract suite that every operator in the registry must pass (RELIABILITY T9)."""

from __future__ import annotations

import inspect

import pytest
import torch

import monai_diffrecon.physics as physics
from monai_diffrecon.errors import DTypeError, InvalidValueError, ShapeError
from monai_diffrecon.physics import Adjoint, LinearOperator
from monai_diffrecon.physics.testing import (
    OPERATORS,
    adjoint_error,
    explicit_matrix,
    linearity_error,
    normal_error,
    prox_gradient_error,
    random_like_domain,
)

NAMES = sorted(OPERATORS)


@pytest.fixture(params=NAMES)
def name(request):
    return request.param


def case64(name):
    return OPERATORS[name](torch.float64)


def test_adjoint_float64(name):
    c = case64(name)
    assert adjoint_error(c, torch.float64, draws=20, normalise="inner") <= 1e-12
    assert adjoint_error(c, torch.float64, draws=20, normalise="norms") <= 1e-14


def test_adjoint_float32(name):
    assert adjoint_error(OPERATORS[name](torch.float32), torch.float32, draws=20, normalise="norms") <= 1e-6


def test_linearity(name):
    assert linearity_error(case64(name)) <= 1e-12


def test_normal_is_adjoint_of_forward(name):
    assert normal_error(case64(name)) <= 1e-12


def test_prox_l2_optimality(name):
    assert prox_gradient_error(case64(name)) <= 1e-6


def test_adjoint_property_roundtrip(name):
    op = case64(name).op
    if isinstance(op, Adjoint):
        assert op.H.H.op is op.op
    else:
        assert op.H.H is op
    c = case64(name)
    y = random_like_domain(c.y_shape, c.y_complex, torch.float64, torch.Generator().manual_seed(4))
    torch.testing.assert_close(op.H(y), op.adjoint(y))


def test_norm_matches_dense_matrix_and_analytic(name):
    c = case64(name)
    dense = float(torch.linalg.matrix_norm(explicit_matrix(c), ord=2))
    shape = (1,) + tuple(c.x_shape[1:]) if not c.batch_fixed else c.x_shape
    power = LinearOperator.norm(c.op, shape, max_iter=2000, tol=1e-12)
    assert power == pytest.approx(dense, rel=1e-4)  # clustered top eigenvalues (MRI) converge slowly
    assert c.op.norm(shape) == pytest.approx(dense, rel=1e-3)  # default settings, closed forms where overridden
    if c.analytic_norm is not None:
        assert dense == pytest.approx(c.analytic_norm, rel=1e-6)


def test_batch_independence(name):
    c = case64(name)
    if c.batch_fixed:
        pytest.skip("per-sample parameters fix the batch size")
    shape = (3,) + tuple(c.x_shape[1:])
    x = random_like_domain(shape, c.x_complex, torch.float64, torch.Generator().manual_seed(5))
    y = c.op(x)
    for i in range(3):
        torch.testing.assert_close(y[i : i + 1], c.op(x[i : i + 1]), rtol=1e-12, atol=1e-12)


def test_dtype_conversion_keeps_complex_buffers(name):
    c32 = OPERATORS[name](torch.float32)
    c64 = case64(name)
    op = c32.op.to(torch.float64)
    for b in op.buffers():
        if b.is_complex():
            assert b.dtype == torch.complex128
        elif b.is_floating_point():
            assert b.dtype == torch.float64
    x = random_like_domain(c64.x_shape, c64.x_complex, torch.float64, torch.Generator().manual_seed(6))
    y = op(x)
    assert y.dtype == (torch.complex128 if c64.y_complex else torch.float64)
    # float32 tables promoted to float64 agree with the float64-built operator to float32 precision
    torch.testing.assert_close(y, c64.op(x), rtol=2e-5, atol=2e-5 * float(y.abs().max()))


def test_state_dict_roundtrip(name):
    a, b = case64(name).op, case64(name).op
    b.load_state_dict(a.state_dict())
    c = case64(name)
    x = random_like_domain(c.x_shape, c.x_complex, torch.float64, torch.Generator().manual_seed(7))
    torch.testing.assert_close(b(x), a(x))


def test_gradients_flow(name):
    c = case64(name)
    x = random_like_domain(c.x_shape, c.x_complex, torch.float64, torch.Generator().manual_seed(8)).requires_grad_()
    (c.op(x).abs() ** 2).sum().backward()
    torch.testing.assert_close(x.grad, 2 * c.op.normal(x.detach()), rtol=1e-10, atol=1e-10)
    y = random_like_domain(c.y_shape, c.y_complex, torch.float64, torch.Generator().manual_seed(9)).requires_grad_()
    (c.op.adjoint(y).abs() ** 2).sum().backward()
    torch.testing.assert_close(y.grad, 2 * c.op(c.op.adjoint(y.detach())), rtol=1e-10, atol=1e-10)


def test_bad_inputs_raise_typed_errors(name):
    c = case64(name)
    op = c.op
    x = random_like_domain(c.x_shape, c.x_complex, torch.float64, torch.Generator().manual_seed(10))
    bad = x.clone()
    bad.view(-1)[0] = float("nan")
    with pytest.raises(InvalidValueError, match="x"):
        op(bad)
    with pytest.raises(DTypeError):
        op(x.to(torch.int64) if not c.x_complex else x.real.to(torch.int64))
    if op.in_complex:
        with pytest.raises(DTypeError, match="complex"):
            op(x.real)
    if op.in_shape is not None and any(s is not None for s in op.in_shape[1:]):
        with pytest.raises(ShapeError, match="expected shape"):
            op(x[..., :-1])
        with pytest.raises(ShapeError):
            op(x[0])


def test_every_exported_operator_is_registered():
    covered = set()
    for name in NAMES:
        op = case64(name).op
        for m in op.modules():
            covered.add(type(m))
    exported = {
        obj
        for obj in vars(physics).values()
        if inspect.isclass(obj) and issubclass(obj, LinearOperator) and obj is not LinearOperator
    }
    missing = {cls.__name__ for cls in exported - covered}
    assert not missing, f"operators without a registry entry: {sorted(missing)}"
