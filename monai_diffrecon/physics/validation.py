"""Physics validation experiments with analytic answers and cross-checks against the field's libraries.

Each function runs one experiment and returns its figures as a dict; ``tests/physics`` asserts the thresholds and
``benchmarks/physics_report.py`` prints the same figures into ``benchmarks/results/physics.md``.

The cross-checks import PyTomography and sigpy (the ``test`` extra); the rest needs only torch.
"""

from __future__ import annotations

import math
import time

import torch

from monai_diffrecon.physics.coils import birdcage_maps, estimate_coil_maps
from monai_diffrecon.physics.ct import ParallelBeamCT
from monai_diffrecon.physics.functional.fft import fftc
from monai_diffrecon.physics.functional.psf import FWHM_TO_SIGMA
from monai_diffrecon.physics.masks import random_lines_mask
from monai_diffrecon.physics.mri import MultiCoilMRI
from monai_diffrecon.physics.spect import CollimatorPSF, SPECTProjector

__all__ = [
    "spect_count_conservation",
    "spect_attenuation_ratio",
    "spect_psf_linearity",
    "ct_gaussian_radon",
    "mri_parseval_and_coil_identity",
    "espirit_accuracy",
    "crosscheck_pytomography",
    "crosscheck_pytomography_osem",
    "crosscheck_sigpy_sense",
]


def _centered(n: int, s: float = 1.0) -> torch.Tensor:
    return (torch.arange(n, dtype=torch.float64) - (n - 1) / 2) * s


def _blob(shape, center_vox, sigma_vox) -> torch.Tensor:
    grids = torch.meshgrid(*[_centered(n) for n in shape], indexing="ij")
    r2 = sum((g - c) ** 2 for g, c in zip(grids, center_vox))
    return torch.exp(-r2 / (2 * sigma_vox**2))


def spect_count_conservation(n: int = 48, views: int = 60) -> dict:
    """Without attenuation every view of a smooth off-centre blob carries the blob's total activity."""
    x = _blob((n, n, 8), (9.0, -6.0, 0.0), 2.5)[None, None]
    P = SPECTProjector(torch.arange(views) * (360.0 / views), 4.0, object_shape=(n, n, 8), dtype=torch.float64)
    sums = P(x).sum(dim=(0, 1, 3, 4))
    rel = (sums / x.sum() - 1).abs()
    return {"max_rel_dev": float(rel.max()), "views": views}


def spect_attenuation_ratio(radius_mm: float = 100.0, mu: float = 0.15, voxel_mm: float = 2.0, views: int = 36) -> dict:
    """Blob at the centre of a uniform cylinder: attenuated / unattenuated view sums vs ``exp(−μR)``."""
    n = 2 * int(math.ceil(radius_mm / voxel_mm)) + 8
    z = 6
    ii, jj = torch.meshgrid(_centered(n, voxel_mm), _centered(n, voxel_mm), indexing="ij")
    cyl = ((ii**2 + jj**2) < radius_mm**2).to(torch.float64)
    mu_map = (cyl * mu)[:, :, None].expand(n, n, z).clone()
    x = _blob((n, n, z), (0.0, 0.0, 0.0), 2.0)[None, None]
    angles = torch.arange(views) * (360.0 / views)
    with_mu = SPECTProjector(angles, voxel_mm, mu_map, dtype=torch.float64)
    without = SPECTProjector(angles, voxel_mm, object_shape=(n, n, z), dtype=torch.float64)
    ratio = with_mu(x).sum(dim=(0, 1, 3, 4)) / without(x).sum(dim=(0, 1, 3, 4))
    expected = math.exp(-mu * radius_mm / 10.0)
    dev = (ratio / expected - 1).abs()
    return {"expected": expected, "min_ratio": float(ratio.min()), "max_ratio": float(ratio.max()), "max_rel_dev": float(dev.max())}


def spect_psf_linearity(fwhm0_mm: float = 2.0, slope: float = 0.055, radius_mm: float = 150.0, voxel_mm: float = 2.0) -> dict:
    """Point-like sources at several depths (view 0): fitted FWHM(d) = a + b·d vs the configured ``a``, ``b``.

    The projected profile along the detector bins has variance ``σ_src² + σ_psf(d)²``; the source part is removed
    by subtracting the variance of the same projection without PSF.
    """
    n, z = 64, 9
    psf = CollimatorPSF(fwhm0_mm, slope)
    offsets_vox = [-20, -10, 0, 10, 20]  # along +Y, i.e. away from the view-0 detector (which sits at −Y)
    x = torch.zeros(len(offsets_vox), 1, n, n, z, dtype=torch.float64)
    for b, o in enumerate(offsets_vox):
        x[b, 0] = _blob((n, n, z), (0.0, float(o), 0.0), 1.0)
    angles = torch.tensor([0.0])
    with_psf = SPECTProjector(angles, voxel_mm, psf=psf, object_shape=(n, n, z), radii_mm=radius_mm, dtype=torch.float64)
    plain = SPECTProjector(angles, voxel_mm, object_shape=(n, n, z), dtype=torch.float64)

    def var_u(y: torch.Tensor) -> torch.Tensor:
        prof = y[:, 0, 0].sum(-1)  # (B, K)
        u = _centered(n)
        m = (prof * u).sum(-1) / prof.sum(-1)
        return (prof * (u - m[:, None]) ** 2).sum(-1) / prof.sum(-1)

    sig_psf_vox = (var_u(with_psf(x)) - var_u(plain(x))).clamp_min(0).sqrt()
    fwhm = sig_psf_vox * voxel_mm / FWHM_TO_SIGMA
    dist = torch.tensor([radius_mm + o * voxel_mm for o in offsets_vox], dtype=torch.float64)
    A = torch.stack([torch.ones_like(dist), dist], 1)
    coef = torch.linalg.lstsq(A, fwhm[:, None]).solution[:, 0]
    resid = fwhm - A @ coef
    return {
        "distances_mm": dist.tolist(),
        "fwhm_mm": fwhm.tolist(),
        "fit_a_mm": float(coef[0]),
        "fit_b": float(coef[1]),
        "rel_err_a": abs(float(coef[0]) / fwhm0_mm - 1),
        "rel_err_b": abs(float(coef[1]) / slope - 1),
        "max_fit_residual_mm": float(resid.abs().max()),
    }


def ct_gaussian_radon(n: int = 128, sigma: float = 6.0, pixel: float = 0.5, views: int = 180) -> dict:
    """Radon transform of a centred Gaussian vs ``√(2π)σ·exp(−s²/2σ²)``; max error per angle over the peak."""
    A = ParallelBeamCT(torch.arange(views) * (180.0 / views), n + 20, (n, n), pixel_size=pixel, dtype=torch.float64)
    ii, jj = torch.meshgrid(_centered(n, pixel), _centered(n, pixel), indexing="ij")
    x = torch.exp(-(ii**2 + jj**2) / (2 * sigma**2))
    y = A(x[None, None])[0, 0]
    s = _centered(n + 20, pixel)
    ref = math.sqrt(2 * math.pi) * sigma * torch.exp(-(s**2) / (2 * sigma**2))
    err = (y - ref).abs().amax(dim=1) / ref.max()
    return {"max_err_over_peak": float(err.max()), "views": views}


def mri_parseval_and_coil_identity(shape=(64, 48), coils: int = 8) -> dict:
    """``‖fftc(x)‖ = ‖x‖`` and, with ``Σ|S_c|² = 1`` and full sampling, ``AᴴA = I`` and ``‖Ax‖ = ‖x‖``."""
    g = torch.Generator().manual_seed(0)
    x = torch.complex(torch.randn(2, 1, *shape, generator=g, dtype=torch.float64), torch.randn(2, 1, *shape, generator=g, dtype=torch.float64))
    parseval = abs(float(fftc(x).norm() / x.norm()) - 1)
    maps = birdcage_maps(coils, shape, dtype=torch.complex128)
    A = MultiCoilMRI(maps, torch.ones(1, 1, 1, 1, dtype=torch.float64))
    ident = float((A.normal(x) - x).norm() / x.norm())
    iso = abs(float(A(x).norm() / x.norm()) - 1)
    return {"parseval_rel_err": parseval, "normal_minus_identity": ident, "isometry_rel_err": iso}


def espirit_accuracy(n: int = 96, coils: int = 8, acceleration: float = 4.0) -> dict:
    """ESPIRiT maps from the ACS block of undersampled data vs the true birdcage maps.

    Similarity per pixel is ``|⟨Ŝ(p), S(p)⟩|`` (1 = same subspace; the per-pixel phase is free), inside the object.
    """
    ii, jj = torch.meshgrid(_centered(n), _centered(n), indexing="ij")
    obj = ((ii / (0.42 * n)) ** 2 + (jj / (0.34 * n)) ** 2) < 1
    img = obj * (1 + 0.3 * torch.cos(ii / 7.0)) * torch.exp(1j * 0.5 * jj / n)
    maps = birdcage_maps(coils, (n, n), dtype=torch.complex128)
    mask = random_lines_mask(n, acceleration, 24, generator=torch.Generator().manual_seed(3)).to(torch.float64)
    k = MultiCoilMRI(maps, mask)(img[None, None].to(torch.complex128))
    est = estimate_coil_maps(k[0])
    sim = (est[0].conj() * maps[0]).sum(0).abs()[obj]
    outside = (est[0].abs().sum(0) > 0)[~obj].double().mean()
    return {"mean_similarity": float(sim.mean()), "min_similarity": float(sim.min()), "support_leak_fraction": float(outside)}


def _pytomography_system(angles, voxel_mm, mu, psf, radius_mm, shape):
    from pytomography.metadata.SPECT import SPECTObjectMeta, SPECTPSFMeta, SPECTProjMeta
    from pytomography.projectors.SPECT import SPECTSystemMatrix
    from pytomography.transforms.SPECT import SPECTAttenuationTransform, SPECTPSFTransform

    X, Y, Z = shape
    om = SPECTObjectMeta(dr=(voxel_mm / 10,) * 3, shape=shape)
    pm = SPECTProjMeta((X, Z), (voxel_mm / 10, voxel_mm / 10), [float(a) for a in angles], radii=[radius_mm / 10] * len(angles))
    # our FWHM = a + b·d (mm) ⇔ PyTomography σ(d) = p0·d + p1 (cm): p0 = b·F, p1 = a/10·F
    psfm = SPECTPSFMeta((psf.slope * FWHM_TO_SIGMA, psf.fwhm0_mm / 10 * FWHM_TO_SIGMA), min_sigmas=4)
    transforms = [SPECTAttenuationTransform(attenuation_map=mu.float()), SPECTPSFTransform(psfm)]
    return SPECTSystemMatrix(transforms, [], om, pm)


def _thorax(n: int):
    ii, jj, kk = torch.meshgrid(*[_centered(n)] * 3, indexing="ij")
    body = ((ii / (0.41 * n)) ** 2 + (jj / (0.31 * n)) ** 2) < 1
    mu = body.float() * 0.15
    x = (torch.exp(-((ii - 0.12 * n) ** 2 + (jj + 0.08 * n) ** 2 + (kk - 0.05 * n) ** 2) / (2 * (0.06 * n) ** 2))
         + 0.3 * (((ii / (0.3 * n)) ** 2 + (jj / (0.23 * n)) ** 2) < 1).float()) * body
    return x.float(), mu


def crosscheck_pytomography(n: int = 64, views: int = 64, voxel_mm: float = 4.42, radius_mm: float = 250.0) -> dict:
    """Our projector vs PyTomography's ``SPECTSystemMatrix`` (attenuation + PSF) on the same phantom and geometry.

    Both use the same angle convention, so no remapping is needed. Forward projections should agree to float32
    round-off; PyTomography's back-projection rotates back (not the exact adjoint), so it differs by ~1–2 %.
    """
    torch.set_num_threads(torch.get_num_threads())
    x, mu = _thorax(n)
    angles = torch.arange(views, dtype=torch.float64) * (360.0 / views)
    psf = CollimatorPSF(2.0, 0.055)
    ours = SPECTProjector(angles, voxel_mm, mu, psf, radii_mm=radius_mm)
    theirs = _pytomography_system(angles, voxel_mm, mu, psf, radius_mm, (n, n, n))
    y_ours = ours(x[None, None])[0, 0]
    y_theirs = theirs.forward(x)
    b_ours = ours.adjoint(y_theirs[None, None])[0, 0]
    b_theirs = theirs.backward(y_theirs)
    return {
        "forward_rel_diff": float((y_ours - y_theirs).norm() / y_theirs.norm()),
        "backward_rel_diff": float((b_ours - b_theirs).norm() / b_theirs.norm()),
        "shape": tuple(y_theirs.shape),
    }


def crosscheck_pytomography_osem(n: int = 64, views: int = 64, iterations: int = 4, subsets: int = 8, counts: float = 2e6) -> dict:
    """Our OSEM vs PyTomography's OSEM on the same noisy data and system model."""
    from pytomography.algorithms import OSEM
    from pytomography.likelihoods import PoissonLogLikelihood

    from monai_diffrecon.physics.noise import PoissonNoise
    from monai_diffrecon.recon.em import osem

    x, mu = _thorax(n)
    angles = torch.arange(views, dtype=torch.float64) * (360.0 / views)
    psf = CollimatorPSF(2.0, 0.055)
    ours = SPECTProjector(angles, 4.42, mu, psf, radii_mm=250.0)
    theirs = _pytomography_system(angles, 4.42, mu, psf, 250.0, (n, n, n))
    y = ours(x[None, None])
    y = PoissonNoise(normalize=False)(y * (counts / float(y.sum())), generator=torch.Generator().manual_seed(0))
    t0 = time.perf_counter()
    r_ours = osem(ours, y, iterations, subsets)[0, 0]
    t1 = time.perf_counter()
    r_theirs = OSEM(PoissonLogLikelihood(theirs, y[0, 0]))(iterations, subsets)
    t2 = time.perf_counter()
    body = mu > 0
    return {
        "rel_diff_body": float((r_ours - r_theirs)[body].norm() / r_theirs[body].norm()),
        "mean_ratio_body": float(r_ours[body].mean() / r_theirs[body].mean()),
        "seconds_ours": t1 - t0,
        "seconds_pytomography": t2 - t1,
    }


def crosscheck_sigpy_sense(shape=(64, 56), coils: int = 8, acceleration: float = 4.0) -> dict:
    """Our ``MultiCoilMRI`` vs ``sigpy.mri.linop.Sense`` (centred orthonormal FFT) on identical complex128 inputs."""
    import numpy as np
    import sigpy.mri as mr

    g = torch.Generator().manual_seed(1)
    maps = birdcage_maps(coils, shape, dtype=torch.complex128)
    mask = random_lines_mask(shape[1], acceleration, 12, generator=g).to(torch.float64)
    x = torch.complex(torch.randn(1, 1, *shape, generator=g, dtype=torch.float64), torch.randn(1, 1, *shape, generator=g, dtype=torch.float64))
    y = torch.complex(torch.randn(1, coils, *shape, generator=g, dtype=torch.float64), torch.randn(1, coils, *shape, generator=g, dtype=torch.float64))
    A = MultiCoilMRI(maps, mask)
    S = mr.linop.Sense(maps[0].numpy(), weights=np.broadcast_to(mask[0, 0].numpy(), shape).copy())
    fw_s = torch.from_numpy(S * x[0, 0].numpy())
    ad_s = torch.from_numpy(S.H * y[0].numpy())
    # sigpy's Sense applies sqrt(weights) on both sides; with a 0/1 mask that equals the mask
    fw = A(x)[0]
    ad = A.adjoint(y)[0, 0]
    return {
        "forward_rel_diff": float((fw - fw_s).norm() / fw_s.norm()),
        "adjoint_rel_diff": float((ad - ad_s).norm() / ad_s.norm()),
    }
