"""The fast SPECT projector (per-view sparse rotation, trimmed depth planes, fused blur-and-sum) against the original
dense-matrix implementation kept as ``_DenseSPECTProjector``: same values to round-off, exact adjoint, sliced subsets."""

import pytest
import torch

from monai_diffrecon.physics.spect import LEHR, CollimatorPSF, SPECTProjector, _DenseSPECTProjector


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _configs():
    g = _gen(0)
    ang = torch.linspace(0.0, 340.0, 9, dtype=torch.float64)
    mu = torch.rand(12, 10, 5, generator=g, dtype=torch.float64) * 0.2  # X ≠ Y: some views have trimmed planes
    radii = 60.0 + 15.0 * torch.rand(9, generator=g, dtype=torch.float64)  # non-circular orbit
    cube = torch.rand(12, 12, 12, generator=g, dtype=torch.float64) * 0.2  # cubic, isotropic: one blur table serves both axes
    return {
        "cubic_attenuation_psf": ((ang, 4.0, cube, LEHR), {"radii_mm": radii}),
        "plain": ((ang, 4.0), {"object_shape": (12, 10, 5)}),
        "attenuation": ((ang, (4.0, 4.0, 5.0), mu), {}),
        "attenuation_psf": ((ang, (4.0, 4.0, 5.0), mu, LEHR), {"radii_mm": radii}),
        "psf_only": ((ang, 3.0, None, CollimatorPSF(3.0, 0.08)), {"object_shape": (12, 10, 5), "radii_mm": 50.0}),
    }


CONFIGS = _configs()


def _rel(a, b):
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-13), (torch.float32, 1e-5)])
def test_fast_projector_equals_dense_reference(name, dtype, tol):
    args, kw = CONFIGS[name]
    fast, ref = SPECTProjector(*args, dtype=dtype, **kw), _DenseSPECTProjector(*args, dtype=dtype, **kw)
    assert (fast._gu is not None and fast._gz is None) == (name == "cubic_attenuation_psf")
    g = _gen(1)
    X, Y, Z = fast.object_shape
    x = torch.rand(2, 1, X, Y, Z, generator=g, dtype=torch.float64).to(dtype)
    y = torch.rand(2, 1, 9, X, Z, generator=g, dtype=torch.float64).to(dtype)
    assert _rel(fast(x), ref(x)) < tol
    assert _rel(fast.adjoint(y), ref.adjoint(y)) < tol


def test_trimmed_planes_are_exercised_and_adjoint_is_exact():
    args, kw = CONFIGS["attenuation_psf"]
    P = SPECTProjector(*args, dtype=torch.float64, **kw)
    V, K, L = P._dims
    assert any(n < L for _, n in P._planes)  # the test geometry drops empty depth planes in some views
    g = _gen(2)
    x = torch.rand(3, 1, 12, 10, 5, generator=g, dtype=torch.float64)
    y = torch.rand(3, 1, V, 12, 5, generator=g, dtype=torch.float64)
    lhs, rhs = float((P(x) * y).sum()), float((x * P.adjoint(y)).sum())
    assert abs(lhs - rhs) <= 1e-13 * abs(lhs)


def test_select_views_slices_tables_equal_to_a_fresh_build():
    args, kw = CONFIGS["attenuation_psf"]
    P = SPECTProjector(*args, dtype=torch.float64, **kw)
    idx = [7, 2, 4]  # unordered on purpose
    sub = P.select_views(idx)
    fresh = SPECTProjector(args[0][idx], *args[1:], dtype=torch.float64, radii_mm=kw["radii_mm"][idx])
    g = _gen(3)
    x = torch.rand(2, 1, 12, 10, 5, generator=g, dtype=torch.float64)
    y = torch.rand(2, 1, 3, 12, 5, generator=g, dtype=torch.float64)
    assert _rel(sub(x), fresh(x)) < 1e-14
    assert _rel(sub.adjoint(y), fresh.adjoint(y)) < 1e-14
    assert torch.equal(sub(x), P(x)[:, :, idx])
    assert sub.num_views == 3 and torch.equal(sub.angles_deg, fresh.angles_deg) and torch.equal(sub.radii_mm, fresh.radii_mm)
    # a subset of a subset, and the reload hook rebuilds the same tables
    subsub = sub.select_views([1])
    assert torch.equal(subsub(x), P(x)[:, :, [2]])
    sub.load_state_dict(sub.state_dict())
    assert _rel(sub(x), fresh(x)) < 1e-14


def test_autograd_through_forward_gives_the_adjoint():
    args, kw = CONFIGS["attenuation_psf"]
    P = SPECTProjector(*args, dtype=torch.float64, **kw)
    g = _gen(4)
    x = torch.rand(1, 1, 12, 10, 5, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.rand(1, 1, 9, 12, 5, generator=g, dtype=torch.float64, requires_grad=True)
    (gx,) = torch.autograd.grad((P(x) * y.detach()).sum(), x)
    assert _rel(gx, P.adjoint(y.detach())) < 1e-13
    (gy,) = torch.autograd.grad((P.adjoint(y) * x.detach()).sum(), y)
    assert _rel(gy, P(x.detach())) < 1e-13


def test_float32_tables_on_a_float64_input_and_double_conversion():
    args, kw = CONFIGS["attenuation_psf"]
    P = SPECTProjector(*args, **kw)  # float32 tables
    ref = _DenseSPECTProjector(*args, dtype=torch.float64, **kw)
    x = torch.rand(1, 1, 12, 10, 5, generator=_gen(5), dtype=torch.float64)
    assert P(x).dtype == torch.float64 and _rel(P(x), ref(x)) < 1e-5
    assert _rel(P.double()(x), ref(x)) < 1e-5  # the tables were rounded to float32 before the conversion
