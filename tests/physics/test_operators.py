"""Operator-specific behaviour: constructors' bad-input errors, composition checks, closed forms, utilities."""

from __future__ import annotations

import pytest
import torch

from monai_diffrecon.errors import DTypeError, InvalidValueError, ShapeError
from monai_diffrecon.physics import (
    Blur,
    CollimatorPSF,
    Compose,
    Decimate,
    Downsample,
    GaussianNoise,
    Identity,
    LinearOperator,
    Mask,
    MultiCoilMRI,
    ParallelBeamCT,
    PoissonNoise,
    SPECTProjector,
    birdcage_maps,
    conjugate_gradient,
    equispaced_mask,
    finite_checks,
    gaussian_kernel,
    poisson_disc_mask,
    random_lines_mask,
    rss,
)


def g(seed=0):
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------ MRI
def test_mri_rejects_real_maps_bad_mask_and_negative_mask():
    maps = birdcage_maps(4, (8, 8))
    with pytest.raises(DTypeError, match="coil_maps"):
        MultiCoilMRI(maps.real, torch.ones(1, 1, 8, 8))
    with pytest.raises(ShapeError, match="mask"):
        MultiCoilMRI(maps, torch.ones(1, 1, 8, 7))
    with pytest.raises(InvalidValueError, match="mask"):
        MultiCoilMRI(maps, -torch.ones(1, 1, 8, 8))
    bad = maps.clone()
    bad[0, 0, 0, 0] = complex("nan")
    with pytest.raises(InvalidValueError, match="coil_maps"):
        MultiCoilMRI(bad, torch.ones(8, 8))
    with pytest.raises(ShapeError, match="coil_maps"):
        MultiCoilMRI(maps[0], torch.ones(8, 8))


def test_mri_batch_mismatch_between_maps_and_data_is_an_error():
    A = MultiCoilMRI(torch.randn(2, 3, 8, 8, dtype=torch.complex64), torch.ones(8, 8))
    with pytest.raises(ShapeError, match="x"):
        A(torch.randn(3, 1, 8, 8, dtype=torch.complex64))


def test_mri_single_coil_prox_is_closed_form_and_matches_cg():
    maps = torch.ones(1, 1, 16, 16, dtype=torch.complex128)
    A = MultiCoilMRI(maps, random_lines_mask(16, 4, 4, generator=g()).double())
    z = torch.randn(2, 1, 16, 16, dtype=torch.complex128, generator=g(1))
    y = torch.randn(2, 1, 16, 16, dtype=torch.complex128, generator=g(2))
    closed = A.prox_l2(z, y, 0.5)
    cg = LinearOperator.prox_l2(A, z, y, 0.5, tol=1e-14, max_iter=500)
    torch.testing.assert_close(closed, cg, rtol=1e-10, atol=1e-10)
    x = torch.randn(2, 1, 16, 16, dtype=torch.complex128, generator=g(3))
    torch.testing.assert_close(A(A.pinv(A(x))), A(x))


def test_mri_acceleration_and_mask_generators():
    m = random_lines_mask(256, 4, 20, generator=g(0))
    assert m.shape == (1, 1, 1, 256)
    assert m[0, 0, 0, 128 - 10 : 128 + 10].all()
    fracs = [float(random_lines_mask(256, 4, 20, generator=g(s)).mean()) for s in range(20)]
    assert sum(fracs) / len(fracs) == pytest.approx(0.25, abs=0.01)
    torch.testing.assert_close(random_lines_mask(64, 4, generator=g(5)), random_lines_mask(64, 4, generator=g(5)))
    e = equispaced_mask(64, 4, 8)
    assert float(e.sum()) == 64 / 4 + 8 - 2  # two centre lines coincide with the equispaced grid
    for W, R, acs in ((128, 8, 10), (128, 4, 20), (320, 4, 26), (96, 6, 8)):  # fastMRI's rule: lines + ACS = W / R
        f = equispaced_mask(W, R, acs, offset=1, match_acceleration=True)
        assert abs(float(f.sum()) - W / R) <= 1.0 and bool(f[0, 0, 0, W // 2])
    with pytest.raises(InvalidValueError, match="ACS lines alone"):
        equispaced_mask(128, 8, 20, match_acceleration=True)
    p = poisson_disc_mask((96, 80), 5, (16, 16), generator=g(1))
    assert p.shape == (1, 1, 96, 80)
    assert 1 / float(p.mean()) == pytest.approx(5, rel=0.05)
    assert p[0, 0, 40:56, 32:48].all()
    # variable density: the centre is sampled more densely than the periphery
    assert float(p[0, 0, 28:68, 20:60].mean()) > 1.5 * float(p[0, 0, :16].mean())
    torch.testing.assert_close(p, poisson_disc_mask((96, 80), 5, (16, 16), generator=g(1)))


def test_birdcage_maps_are_rss_normalised_2d_and_3d():
    m2 = birdcage_maps(8, (32, 24))
    torch.testing.assert_close(rss(m2), torch.ones(1, 1, 32, 24), rtol=1e-5, atol=1e-5)
    m3 = birdcage_maps(8, (6, 16, 16), rings=2)
    torch.testing.assert_close(rss(m3), torch.ones(1, 1, 6, 16, 16), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(m3[0, 0, 0], m3[0, 0, -1])  # rings make the maps vary along D


# ----------------------------------------------------------------- SPECT
def test_spect_rejects_bad_physics_inputs():
    ang = torch.arange(0, 360, 30.0)
    with pytest.raises(InvalidValueError, match="attenuation_map"):
        SPECTProjector(ang, 4.0, -0.1 * torch.ones(8, 8, 2))
    with pytest.raises(InvalidValueError, match="HU"):
        SPECTProjector(ang, 4.0, 1000.0 * torch.ones(8, 8, 2))
    with pytest.raises(ShapeError, match="object_shape"):
        SPECTProjector(ang, 4.0)
    with pytest.raises(InvalidValueError, match="radii_mm"):
        SPECTProjector(ang, 4.0, psf=(2.0, 0.05), object_shape=(8, 8, 2))
    with pytest.raises(ShapeError, match="radii_mm"):
        SPECTProjector(ang, 4.0, psf=(2.0, 0.05), object_shape=(8, 8, 2), radii_mm=[100.0, 120.0])
    with pytest.raises(InvalidValueError, match="voxel_size_mm"):
        SPECTProjector(ang, (4.0, 3.0, 4.0), object_shape=(8, 8, 2))
    with pytest.raises(InvalidValueError, match="voxel_size_mm"):
        SPECTProjector(ang, 0.0, object_shape=(8, 8, 2))
    with pytest.raises(InvalidValueError, match="psf"):
        CollimatorPSF(-1.0, 0.05)
    nan_angles = ang.clone()
    nan_angles[2] = float("nan")
    with pytest.raises(InvalidValueError, match="angles_deg"):
        SPECTProjector(nan_angles, 4.0, object_shape=(8, 8, 2))


def test_spect_state_dict_reload_rebuilds_attenuation_tables():
    ang = torch.arange(0, 360, 30.0)
    a = SPECTProjector(ang, 4.0, torch.full((8, 8, 2), 0.15), dtype=torch.float64)
    b = SPECTProjector(ang, 4.0, torch.zeros(8, 8, 2), dtype=torch.float64)
    x = torch.rand(1, 1, 8, 8, 2, dtype=torch.float64, generator=g())
    assert not torch.allclose(a(x), b(x))
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(b(x), a(x))


def test_spect_select_views_and_few_view_are_consistent_with_full():
    P = SPECTProjector(torch.arange(0, 360, 10.0), 4.0, torch.full((8, 8, 3), 0.1), (2.0, 0.05), radii_mm=40.0, dtype=torch.float64)
    x = torch.rand(1, 1, 8, 8, 3, dtype=torch.float64, generator=g())
    Pf, idx = P.few_view(4)
    assert idx.tolist() == [0, 9, 18, 27]
    torch.testing.assert_close(Pf(x), P(x)[:, :, idx])
    with pytest.raises(ShapeError):
        P.select_views([36])


def test_finite_checks_can_be_disabled():
    A = Identity()
    x = torch.tensor([[float("nan")]])
    with pytest.raises(InvalidValueError):
        A(x)
    with finite_checks(False):
        assert torch.isnan(A(x)).all()


# ------------------------------------------------------------- algebra
def test_composition_checks_shapes_and_kinds_at_build_time():
    P = SPECTProjector(torch.arange(0, 360, 30.0), 4.0, object_shape=(8, 8, 2))
    M = Mask(torch.ones(1, 1, 12, 8, 2))
    M.in_shape = (None, 1, 12, 8, 2)
    Compose(M, P)  # y of P is (B, 1, 12, 8, 2): fine
    with pytest.raises(ShapeError, match="SPECTProjector produces"):
        Mask(torch.ones(1, 1, 11, 8, 2)) @ P
    mri = MultiCoilMRI(birdcage_maps(2, (8, 8)), torch.ones(8, 8))
    with pytest.raises(DTypeError, match="complex"):
        mri @ ParallelBeamCT(torch.arange(0, 180, 22.5), 8)  # shapes agree, kinds do not
    with pytest.raises(TypeError):
        mri @ torch.ones(3)


def test_scaled_prox_uses_inner_closed_form():
    A = 3.0 * Blur(gaussian_kernel(1.0, dtype=torch.float64))
    z = torch.randn(1, 1, 9, 9, dtype=torch.float64, generator=g())
    y = torch.randn(1, 1, 9, 9, dtype=torch.float64, generator=g(1))
    x = A.prox_l2(z, y, 0.2)
    grad = A.adjoint(A(x) - y) + (x - z) / 0.2
    assert float(grad.norm()) < 1e-10


def test_downsample_closed_form_prox_matches_cg_and_filters():
    for filt in ("gaussian", "box", None):
        D = Downsample(2, filt).double()
        z = torch.randn(2, 1, 8, 8, dtype=torch.float64, generator=g())
        y = torch.randn(2, 1, 4, 4, dtype=torch.float64, generator=g(1))
        torch.testing.assert_close(D.prox_l2(z, y, 0.3), LinearOperator.prox_l2(D, z, y, 0.3, tol=1e-14, max_iter=500))
    with pytest.raises(InvalidValueError):
        Downsample(2, "lanczos")
    with pytest.raises(ShapeError, match="divisible"):
        Decimate(3)(torch.zeros(1, 1, 8, 9))


def test_blur_pinv_and_kernel_size_check():
    B = Blur(gaussian_kernel(0.6, dtype=torch.float64))
    x = torch.randn(1, 1, 16, 16, dtype=torch.float64, generator=g())
    torch.testing.assert_close(B.pinv(B(x)), x, rtol=1e-6, atol=1e-6)
    with pytest.raises(ShapeError, match="kernel"):
        Blur(gaussian_kernel(3.0))(torch.zeros(1, 1, 8, 8))
    with pytest.raises(ShapeError):
        Blur(torch.ones(3))


def test_conjugate_gradient_batched_solves_spd_systems():
    M = torch.tensor([[4.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
    b = torch.tensor([[1.0, 2.0], [0.0, 0.0], [3.0, -1.0]], dtype=torch.float64)
    x = conjugate_gradient(lambda v: v @ M.T, b, tol=1e-14, max_iter=10)
    torch.testing.assert_close(x @ M.T, b)


# ----------------------------------------------------------------- noise
def test_noise_models_are_reproducible_and_validated():
    y = torch.full((2, 1, 64, 64), 5.0)
    n1 = GaussianNoise(0.1)(y, generator=g(3))
    torch.testing.assert_close(n1, GaussianNoise(0.1)(y, generator=g(3)))
    assert float((n1 - y).std()) == pytest.approx(0.1, rel=0.05)
    yc = torch.zeros(1, 1, 64, 64, dtype=torch.complex64)
    nc = GaussianNoise(0.2)(yc, generator=g(4))
    assert float(nc.real.std()) == pytest.approx(0.2, rel=0.05) and float(nc.imag.std()) == pytest.approx(0.2, rel=0.05)
    p = PoissonNoise(gain=2.0)(y, generator=g(5))
    assert float(p.mean()) == pytest.approx(5.0, rel=0.02)
    assert float(p.var()) == pytest.approx(5.0 / 2.0, rel=0.1)
    counts = PoissonNoise(normalize=False)(y, generator=g(5))
    assert torch.equal(counts, counts.round())
    with pytest.raises(InvalidValueError, match="generator"):
        GaussianNoise(0.1)(y, generator=None)
    with pytest.raises(InvalidValueError, match="Poisson"):
        PoissonNoise()(-y, generator=g())
    with pytest.raises(InvalidValueError):
        GaussianNoise(-1.0)


def test_mri_expand_combine_restrict_speak_the_multicoil_kspace_domain():
    """MSM and SelfDB act through these (arXiv 2505.11853, 2501.03430): expand = F S x on the full grid, combine its
    left inverse (Σ|S|² = 1) and, with the operator's 0/1 mask, its adjoint; restrict(S) = the same coils on mask S."""
    gen = g()
    maps = birdcage_maps(6, (16, 16)).to(torch.complex128)
    mask = random_lines_mask(16, 2, 4, generator=gen).double()
    A = MultiCoilMRI(maps, mask)
    x = torch.randn(2, 1, 16, 16, dtype=torch.complex128, generator=gen)
    k = torch.randn(2, 6, 16, 16, dtype=torch.complex128, generator=gen)
    assert torch.allclose(A.combine(A.expand(x)), x, atol=1e-10)
    assert torch.allclose(A.expand(x, A.mask), A(x), atol=1e-12)
    assert torch.allclose(A.combine(k, A.mask), A.adjoint(k), atol=1e-12)
    # expand and combine are adjoint to each other on the full grid
    assert torch.allclose(torch.vdot(A.expand(x).flatten(), k.flatten()), torch.vdot(x.flatten(), A.combine(k).flatten()), atol=1e-9)
    S = torch.zeros(1, 1, 1, 16, dtype=torch.float64)
    S[..., ::3] = 1
    B = A.restrict(S)
    assert torch.equal(B.mask, S) and torch.equal(B.coil_maps, A.coil_maps)
    assert torch.allclose(B(x), A.expand(x, S), atol=1e-12)
    assert torch.allclose(B.adjoint(k), A.combine(k, S), atol=1e-12)
