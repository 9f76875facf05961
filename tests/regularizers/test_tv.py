"""Closed-form TV prox (arXiv 2412.07718): non-expansive, TV-decreasing, error growing with λ; exact reference."""

from __future__ import annotations

import itertools

import pytest
import torch

from monai_diffrecon.regularizers import tv_norm, tv_prox, tv_prox_exact
from monai_diffrecon.samplers import TVProx

CASES = list(itertools.product([False, True], ["replicate", "circular"], [(1, 1, 16, 16), (1, 1, 8, 8, 8)]))


def g(s=0):
    return torch.Generator().manual_seed(s)


@pytest.mark.parametrize("isotropic, boundary, shape", CASES)
def test_closed_form_is_firmly_non_expansive(isotropic, boundary, shape):
    for k in range(30):
        u = torch.randn(shape, dtype=torch.float64, generator=g(k))
        v = u + 0.3 * torch.randn(shape, dtype=torch.float64, generator=g(100 + k))
        lam = 0.02 * (k % 5 + 1)
        pu, pv = tv_prox(u, lam, isotropic=isotropic, boundary=boundary), tv_prox(v, lam, isotropic=isotropic, boundary=boundary)
        inner = float(((pu - pv) * (u - v)).sum())
        assert inner >= float(((pu - pv) ** 2).sum()) - 1e-12


@pytest.mark.parametrize("isotropic, boundary, shape", CASES)
def test_closed_form_never_increases_tv(isotropic, boundary, shape):
    for k in range(30):
        v = torch.rand(shape, dtype=torch.float64, generator=g(k)) * (k + 1)
        for lam in (0.001, 0.01, 0.1, 1.0):
            p = tv_prox(v, lam, isotropic=isotropic, boundary=boundary)
            assert float(tv_norm(p, isotropic=isotropic, boundary=boundary).sum()) <= float(tv_norm(v, isotropic=isotropic, boundary=boundary).sum()) + 1e-9


@pytest.mark.parametrize("isotropic", [False, True])
def test_error_against_the_exact_prox_grows_with_lambda(isotropic):
    v = torch.rand(1, 1, 32, 32, dtype=torch.float64, generator=g(3))
    errs = []
    for lam in (0.001, 0.003, 0.01, 0.03, 0.1):
        exact = tv_prox_exact(v, lam, isotropic=isotropic)
        errs.append(float((tv_prox(v, lam, isotropic=isotropic) - exact).norm() / exact.norm()))
    assert all(a < b for a, b in zip(errs, errs[1:]))
    assert errs[0] < 1e-3 and errs[-1] > 1e-2


def test_exact_prox_matches_the_two_sample_closed_form():
    for v1, v2, lam in [(0.0, 1.0, 0.2), (0.0, 1.0, 0.6), (2.0, -1.0, 0.25)]:
        v = torch.tensor([[[v1, v2]]], dtype=torch.float64)
        d = v2 - v1
        if abs(d) <= 2 * lam:
            ref = torch.full_like(v, (v1 + v2) / 2)
        else:
            s = 1 if d > 0 else -1
            ref = torch.tensor([[[v1 + s * lam, v2 - s * lam]]], dtype=torch.float64)
        torch.testing.assert_close(tv_prox_exact(v, lam, dims=(-1,)), ref, atol=1e-7, rtol=0)


def test_exact_prox_beats_the_approximation_on_the_objective():
    v = torch.rand(1, 1, 24, 24, dtype=torch.float64, generator=g(4))
    for lam in (0.01, 0.1):
        obj = lambda x: 0.5 * float(((x - v) ** 2).sum()) + lam * float(tv_norm(x).sum())  # noqa: E731
        assert obj(tv_prox_exact(v, lam)) <= obj(tv_prox(v, lam)) + 1e-9
        assert obj(tv_prox_exact(v, lam)) <= obj(v)


def test_axis_selection_and_consistency_step():
    v = torch.rand(2, 1, 6, 6, 10, dtype=torch.float64, generator=g(5))
    z_only = tv_prox(v, 0.05, dims=(-1,))
    # regularising only along z leaves each z-profile's sum unchanged (low-pass kept, high-pass zero-mean adjoint)
    torch.testing.assert_close(z_only.sum(-1), v.sum(-1))
    out = TVProx(0.05, dims=(-1,))({"x0": v})
    torch.testing.assert_close(out["x0"], z_only)
    with pytest.raises(Exception, match="boundary"):
        tv_prox(v, 0.1, boundary="mirror")
