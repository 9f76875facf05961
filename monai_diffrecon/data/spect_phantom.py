"""Deterministic analytic thorax phantom for myocardial-perfusion SPECT (⁹⁹ᵐTc, 140 keV).

Object axes follow :class:`~monai_diffrecon.physics.SPECTProjector`: ``(X, Y, Z)`` with X towards the patient's
left, Y posterior, Z superior (DICOM LPS), centred on the centre of rotation. Structures (ellipsoids/cylinders in
mm): elliptical body (water, μ = 0.154 cm⁻¹), two lungs (μ = 0.04), spine (bone, μ = 0.28), liver, and a
left-ventricular myocardium shell with its blood pool, long axis tilted towards the left, anterior and inferior as
in a real heart. Activity is in relative units (myocardium 1.0); an optional perfusion defect lowers a wedge of
the anterior wall. Randomised anatomy (for training cohorts) comes from :func:`cardiac_phantom`'s ``generator``.
"""

from __future__ import annotations

import math

import torch

from monai_diffrecon.physics.functional.devices import rand

__all__ = ["cardiac_phantom", "grid_affine_lps", "MU_WATER_140KEV", "MU_LUNG_140KEV", "MU_BONE_140KEV"]

MU_WATER_140KEV = 0.154  # cm⁻¹
MU_LUNG_140KEV = 0.040
MU_BONE_140KEV = 0.280


def _grid(shape, voxel_mm, center_mm=(0.0, 0.0, 0.0)) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    vs = (voxel_mm,) * 3 if isinstance(voxel_mm, (int, float)) else tuple(voxel_mm)
    ax = [(torch.arange(n, dtype=torch.float64, device="cpu") - (n - 1) / 2) * v + c for n, v, c in zip(shape, vs, center_mm)]
    return torch.meshgrid(*ax, indexing="ij")


def grid_affine_lps(shape, voxel_mm, center_mm=(0.0, 0.0, 0.0)):
    """LPS affine (index → mm) of a phantom grid centred at ``center_mm`` (the centre of rotation is at 0)."""
    import numpy as np

    vs = (voxel_mm,) * 3 if isinstance(voxel_mm, (int, float)) else tuple(voxel_mm)
    a = np.diag([*vs, 1.0])
    a[:3, 3] = [c - (n - 1) / 2 * v for n, v, c in zip(shape, vs, center_mm)]
    return a


def _ellipsoid(x, y, z, c, r) -> torch.Tensor:
    return ((x - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2 + ((z - c[2]) / r[2]) ** 2


def cardiac_phantom(
    shape: tuple[int, int, int] = (64, 64, 64),
    voxel_size_mm: float | tuple[float, float, float] = 6.0,
    defect: bool = False,
    generator: torch.Generator | None = None,
    center_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> dict[str, torch.Tensor]:
    """Activity and attenuation maps of a thorax with a left ventricle.

    Args:
        shape: ``(X, Y, Z)`` voxels; the field of view should be ≥ 350 mm transverse to hold the body.
        voxel_size_mm: voxel size (isotropic float or ``(sx, sy, sz)``).
        center_mm: LPS position of the grid centre (the anatomy is fixed in space, so two grids — e.g. SPECT and
            CT — sampled with the same seed see the same patient).
        defect: add a perfusion defect: a wedge around the long axis with reduced uptake. Reference phantom: anterior,
            60° wide, residual 35 %; with a generator: random centre angle, 30–100° extent, apical reach and
            20–70 % residual uptake.
        generator: if given, jitter organ sizes/positions/uptakes (±10 %), heart orientation (±30 %) and wall
            thickness (7–13 mm) for training cohorts; ``None`` gives the fixed reference phantom.

    Returns:
        ``{"activity": (X, Y, Z) float32 ≥ 0, "mu": (X, Y, Z) float32 cm⁻¹, "myocardium": (X, Y, Z) bool,
        "defect": (X, Y, Z) bool}`` (the defect is part of the myocardium; empty without a defect).
    """

    def jit(v: float, rel: float = 0.1) -> float:
        if generator is None:
            return v
        return v * (1 + rel * (2 * float(rand((), generator, dtype=torch.float64)) - 1))

    x, y, z = _grid(shape, voxel_size_mm, center_mm)
    body = ((x / jit(165.0)) ** 2 + (y / jit(115.0)) ** 2) < 1
    lung_l = _ellipsoid(x, y, z, (jit(75.0), jit(5.0), jit(40.0)), (jit(55.0), jit(75.0), jit(110.0))) < 1
    lung_r = _ellipsoid(x, y, z, (-jit(75.0), jit(5.0), jit(40.0)), (jit(55.0), jit(75.0), jit(110.0))) < 1
    spine = (((x / 18.0) ** 2 + ((y - 75.0) / 18.0) ** 2) < 1) & body
    liver = _ellipsoid(x, y, z, (-jit(50.0), jit(5.0), -jit(85.0)), (jit(85.0), jit(70.0), jit(55.0))) < 1

    # left ventricle: ellipsoidal shell in a frame rotated about Z (towards the left) and X (towards inferior)
    c = (jit(30.0), -jit(35.0), (jit(1.0) - 1.0) * 100.0)  # z: ±10 mm
    a1, a2 = math.radians(jit(45.0, 0.3)), math.radians(jit(30.0, 0.3))
    xr, yr, zr = x - c[0], y - c[1], z - c[2]
    u = math.cos(a1) * xr + math.sin(a1) * yr
    v = -math.sin(a1) * xr + math.cos(a1) * yr
    w = zr
    u, w = math.cos(a2) * u - math.sin(a2) * w, math.sin(a2) * u + math.cos(a2) * w
    long_ax, short_ax, wall = jit(48.0), jit(33.0), jit(10.0, 0.3)
    outer = (u / long_ax) ** 2 + (v / short_ax) ** 2 + (w / short_ax) ** 2
    inner = (u / (long_ax - wall)) ** 2 + (v / (short_ax - wall)) ** 2 + (w / (short_ax - wall)) ** 2
    base = u < jit(18.0)  # open base of the ventricle (towards the atria)
    myo = (outer < 1) & (inner >= 1) & base
    pool = (inner < 1) & base

    act = torch.zeros(shape, dtype=torch.float64, device="cpu")
    wedge = torch.zeros(shape, dtype=torch.bool, device="cpu")
    act[body] = jit(0.08)
    act[lung_l | lung_r] = jit(0.02)
    act[liver] = jit(0.55)
    act[pool] = jit(0.12)
    act[myo] = 1.0
    if defect:
        # wedge around the long axis: centre angle, angular extent, apical extent and severity (residual uptake)
        if generator is None:
            centre, half, u_min, residual = 0.0, 30.0, -30.0, 0.35
        else:
            r = rand(4, generator, dtype=torch.float64).tolist()
            centre, half, u_min, residual = 360.0 * r[0], 15.0 + 35.0 * r[1], -long_ax * (0.2 + 0.8 * r[2]), 0.2 + 0.5 * r[3]
        ang = torch.rad2deg(torch.atan2(v, w))
        dang = torch.remainder(ang - centre + 180.0, 360.0) - 180.0
        wedge = myo & (dang.abs() < half) & (u > u_min)
        act[wedge] *= residual
    mu = torch.zeros(shape, dtype=torch.float64, device="cpu")
    mu[body] = MU_WATER_140KEV
    mu[(lung_l | lung_r) & body] = MU_LUNG_140KEV
    mu[spine] = MU_BONE_140KEV
    act[~body] = 0.0
    return {"activity": act.float(), "mu": mu.float(), "myocardium": myo & body, "defect": wedge & body}
