"""APGM (FISTA) for ½‖Ax − y‖² + λR(x): reduces to the prox for A = I, to least squares for λ = 0, rejects bad input."""

from __future__ import annotations

import pytest
import torch

from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.physics import Identity, ParallelBeamCT
from monai_diffrecon.recon import apgm, least_squares_tv_objective
from monai_diffrecon.regularizers import tv_norm, tv_prox, tv_prox_exact


def test_identity_with_unit_step_is_the_prox():
    y = torch.randn(1, 1, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = apgm(Identity(), y, lambda v, tau: tv_prox_exact(v, tau, isotropic=True, max_iter=5000, tol=1e-12), 0.2, iterations=3, lipschitz=1.0)
    torch.testing.assert_close(x, tv_prox_exact(y, 0.2, isotropic=True, max_iter=5000, tol=1e-12))


def test_zero_lambda_is_least_squares():
    A = ParallelBeamCT(torch.arange(0, 180, 9.0), 12, (8, 8), dtype=torch.float64)
    eye = torch.eye(64, dtype=torch.float64).reshape(64, 1, 8, 8)
    M = A(eye).reshape(64, -1).T  # (V·D, 64)
    x_true = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y = A(x_true) + 0.01 * torch.randn(A(x_true).shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    ls = torch.linalg.lstsq(M, y.reshape(-1, 1)).solution.reshape(1, 1, 8, 8)
    iters = 2000
    x = apgm(A, y, lambda v, tau: v, 0.0, iterations=iters)
    f = lambda z: 0.5 * float((A(z) - y).pow(2).sum())  # noqa: E731
    L = float(torch.linalg.matrix_norm(M, 2)) ** 2
    assert f(ls) <= f(x) <= f(ls) + 2 * L * float(ls.pow(2).sum()) / (iters + 1) ** 2  # FISTA's O(1/k²) guarantee from x₀ = 0
    assert f(x) - f(ls) < 1e-3 * f(ls)


def test_objective_decreases_from_zero_with_closed_form_prox():
    A = ParallelBeamCT(torch.arange(0, 180, 12.0), 24, (16, 16), dtype=torch.float64)
    x_true = torch.zeros(1, 1, 16, 16, dtype=torch.float64)
    x_true[..., 4:12, 5:11] = 1.0
    y = A(x_true)
    tv = lambda x: tv_norm(x, isotropic=True)  # noqa: E731
    f = [float(least_squares_tv_objective(A, y, torch.zeros_like(x_true), 0.5, tv))]
    x = apgm(A, y, lambda v, tau: tv_prox(v, tau, isotropic=True), 0.5, iterations=100,
             callback=lambda k, xk: f.append(float(least_squares_tv_objective(A, y, xk, 0.5, tv))))
    assert len(f) == 101 and f[-1] < 0.01 * f[0]
    assert float((x - x_true).norm() / x_true.norm()) < 0.1


@pytest.mark.parametrize("kwargs", [{"lam": -1.0}, {"lam": float("nan")}, {"step_scale": 0.0}, {"step_scale": 1.5}, {"iterations": 0},
                                    {"lipschitz": 0.0}])
def test_bad_arguments(kwargs):
    args = {"lam": 0.1, **kwargs}
    lam = args.pop("lam")
    with pytest.raises(InvalidValueError):
        apgm(Identity(), torch.zeros(1, 1, 4, 4), lambda v, tau: v, lam, **args)
