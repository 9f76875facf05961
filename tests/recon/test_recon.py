"""Classical reconstructions: MLEM/OSEM, FBP, CG-SENSE."""

from __future__ import annotations

import math

import pytest
import torch

from monai_diffrecon.data import cardiac_phantom
from monai_diffrecon.errors import InvalidValueError, ShapeError
from monai_diffrecon.physics import LEHR, MultiCoilMRI, ParallelBeamCT, PoissonNoise, SPECTProjector, birdcage_maps, equispaced_mask
from monai_diffrecon.recon import cg_sense, fbp, mlem, osem


@pytest.fixture(scope="module")
def spect_problem():
    ph = cardiac_phantom((32, 32, 24), 12.0)
    P = SPECTProjector(torch.arange(32) * 11.25, 12.0, ph["mu"], LEHR, radii_mm=260.0, dtype=torch.float64)
    x = ph["activity"].double()[None, None]
    y = P(x)
    y = PoissonNoise(normalize=False)(y * (3e5 / float(y.sum())), generator=torch.Generator().manual_seed(0))
    return P, x * (3e5 / float(P(x).sum())), y, ph


def _poisson_loglik(P, x, y):
    e = P(x)
    return float((y * torch.log(e.clamp_min(1e-12)) - e).sum())


def test_mlem_increases_likelihood_and_stays_nonnegative(spect_problem):
    P, _, y, _ = spect_problem
    lls, x = [], None
    for _ in range(4):
        x = mlem(P, y, iterations=2, x0=x)
        assert bool((x >= 0).all())
        lls.append(_poisson_loglik(P, x, y))
    assert all(b > a for a, b in zip(lls, lls[1:]))


def test_osem_converges_towards_truth_and_beats_no_correction(spect_problem):
    P, truth, y, ph = spect_problem
    body = ph["mu"] > 0
    err = lambda r: float((r[0, 0] - truth[0, 0])[body].norm() / truth[0, 0][body].norm())  # noqa: E731
    e1 = err(osem(P, y, 1, 8))
    e3 = err(osem(P, y, 3, 8))
    assert e3 < e1
    plain = SPECTProjector(P.angles_deg, 12.0, object_shape=(32, 32, 24), dtype=torch.float64)
    assert e3 < err(osem(plain, y, 3, 8))
    # OSEM preserves total counts approximately: forward projection of the estimate matches the data sum
    assert float(P(osem(P, y, 3, 8)).sum()) == pytest.approx(float(y.sum()), rel=0.02)


def test_osem_validates_inputs(spect_problem):
    P, _, y, _ = spect_problem
    with pytest.raises(InvalidValueError, match="counts"):
        osem(P, -y, 1, 4)
    with pytest.raises(InvalidValueError, match="subsets"):
        osem(P, y, 1, 64)
    with pytest.raises(ShapeError):
        osem(P, y[:, :, :5], 1, 4)


def test_fbp_reconstructs_disk_phantom():
    n = 96
    A = ParallelBeamCT(torch.arange(0, 180, 1.0), 136, (n, n), dtype=torch.float64)
    ii, jj = torch.meshgrid(torch.arange(n) - (n - 1) / 2, torch.arange(n) - (n - 1) / 2, indexing="ij")
    disk = (((ii**2 + jj**2) < 35**2).double() + 0.5 * (((ii - 8) ** 2 + (jj + 5) ** 2) < 8**2).double())
    rec = fbp(A, A(disk[None, None]))[0, 0]
    inner = (ii**2 + jj**2) < 30**2
    assert float((rec - disk)[inner].abs().mean()) < 0.03
    assert float(rec[(ii - 8) ** 2 + (jj + 5) ** 2 < 5**2].mean()) == pytest.approx(1.5, abs=0.05)


def test_cg_sense_recovers_image_at_moderate_acceleration():
    n = 48
    maps = birdcage_maps(8, (n, n), dtype=torch.complex128)
    mask = equispaced_mask(n, 2, 8).double()  # uniform R = 2: well-posed SENSE with 8 coils
    A = MultiCoilMRI(maps, mask)
    ii, jj = torch.meshgrid(torch.arange(n) - n / 2, torch.arange(n) - n / 2, indexing="ij")
    x = ((((ii / 20) ** 2 + (jj / 16) ** 2) < 1) * (1 + 0.5 * torch.sin(ii / 5))).to(torch.complex128)[None, None]
    rec = cg_sense(A, A(x), lam=1e-6, iterations=200, tol=1e-10)
    assert float((rec - x).norm() / x.norm()) < 1e-3
    zf = A.adjoint(A(x))
    assert float((zf - x).norm() / x.norm()) > 0.1
