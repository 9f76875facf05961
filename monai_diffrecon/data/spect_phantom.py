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

__all__ = ["cardiac_phantom", "MU_WATER_140KEV", "MU_LUNG_140KEV", "MU_BONE_140KEV"]

MU_WATER_140KEV = 0.154  # cm⁻¹
MU_LUNG_140KEV = 0.040
MU_BONE_140KEV = 0.280


def _grid(shape: tuple[int, int, int], voxel_mm: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    ax = [(torch.arange(n, dtype=torch.float64) - (n - 1) / 2) * voxel_mm for n in shape]
    return torch.meshgrid(*ax, indexing="ij")


def _ellipsoid(x, y, z, c, r) -> torch.Tensor:
    return ((x - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2 + ((z - c[2]) / r[2]) ** 2


def cardiac_phantom(
    shape: tuple[int, int, int] = (64, 64, 64),
    voxel_size_mm: float = 6.0,
    defect: bool = False,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """Activity and attenuation maps of a thorax with a left ventricle.

    Args:
        shape: ``(X, Y, Z)`` voxels; the field of view should be ≥ 350 mm transverse to hold the body.
        voxel_size_mm: isotropic voxel size.
        defect: add an anterior-wall perfusion defect (activity × 0.35 in a 60° wedge).
        generator: if given, jitter organ sizes/positions/uptakes (±10 %) for training cohorts; ``None`` gives the
            fixed reference phantom.

    Returns:
        ``{"activity": (X, Y, Z) float32 ≥ 0, "mu": (X, Y, Z) float32 cm⁻¹, "myocardium": (X, Y, Z) bool}``.
    """

    def jit(v: float, rel: float = 0.1) -> float:
        if generator is None:
            return v
        return v * (1 + rel * (2 * float(torch.rand((), generator=generator, dtype=torch.float64)) - 1))

    x, y, z = _grid(shape, voxel_size_mm)
    body = ((x / jit(165.0)) ** 2 + (y / jit(115.0)) ** 2) < 1
    lung_l = _ellipsoid(x, y, z, (jit(75.0), jit(5.0), jit(40.0)), (jit(55.0), jit(75.0), jit(110.0))) < 1
    lung_r = _ellipsoid(x, y, z, (-jit(75.0), jit(5.0), jit(40.0)), (jit(55.0), jit(75.0), jit(110.0))) < 1
    spine = (((x / 18.0) ** 2 + ((y - 75.0) / 18.0) ** 2) < 1) & body
    liver = _ellipsoid(x, y, z, (-jit(50.0), jit(5.0), -jit(85.0)), (jit(85.0), jit(70.0), jit(55.0))) < 1

    # left ventricle: ellipsoidal shell in a frame rotated about Z (towards the left) and X (towards inferior)
    c = (jit(30.0), -jit(35.0), jit(0.0))
    a1, a2 = math.radians(jit(45.0)), math.radians(jit(30.0))
    xr, yr, zr = x - c[0], y - c[1], z - c[2]
    u = math.cos(a1) * xr + math.sin(a1) * yr
    v = -math.sin(a1) * xr + math.cos(a1) * yr
    w = zr
    u, w = math.cos(a2) * u - math.sin(a2) * w, math.sin(a2) * u + math.cos(a2) * w
    outer = (u / jit(48.0)) ** 2 + (v / jit(33.0)) ** 2 + (w / jit(33.0)) ** 2
    inner = (u / 38.0) ** 2 + (v / 22.0) ** 2 + (w / 22.0) ** 2
    base = u < jit(18.0)  # open base of the ventricle (towards the atria)
    myo = (outer < 1) & (inner >= 1) & base
    pool = (inner < 1) & base

    act = torch.zeros(shape, dtype=torch.float64)
    act[body] = jit(0.08)
    act[lung_l | lung_r] = jit(0.02)
    act[liver] = jit(0.55)
    act[pool] = jit(0.12)
    act[myo] = 1.0
    if defect:
        ang = torch.atan2(v, w)
        wedge = myo & (ang.abs() < math.radians(30.0)) & (u > -30)
        act[wedge] *= 0.35
    mu = torch.zeros(shape, dtype=torch.float64)
    mu[body] = MU_WATER_140KEV
    mu[(lung_l | lung_r) & body] = MU_LUNG_140KEV
    mu[spine] = MU_BONE_140KEV
    act[~body] = 0.0
    return {"activity": act.float(), "mu": mu.float(), "myocardium": myo & body}
