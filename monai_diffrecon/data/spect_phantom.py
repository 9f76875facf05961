"""Analytic thorax phantoms for myocardial-perfusion SPECT (⁹⁹ᵐTc, 140 keV): a fixed reference patient and random
patient families for training and for testing generalisation.

Object axes follow :class:`~monai_diffrecon.physics.SPECTProjector`: ``(X, Y, Z)`` with X towards the patient's
left, Y posterior, Z superior (DICOM LPS), centred on the centre of rotation. Activity is in relative units
(normal myocardium 1.0); μ in cm⁻¹ at 140 keV (water 0.154, lung 0.040, bone 0.280).

**Reference phantom** (``cardiac_phantom(generator=None)``, unchanged since issue 8 so tests and the demo keep their
numbers): elliptical body, two lungs, spine, liver and a left-ventricular (LV) shell with its blood pool; optional
anterior wedge defect (60°, residual 35 %). Its LV apex points right, anterior and *superior* (not anatomical; the
random families below put it left, anterior and inferior as in a real heart).

**Random patients** (:func:`draw_patient` → :func:`render_patient`, or ``cardiac_phantom(generator=g, family=...)``):
elliptical chest (body) with breasts for female patients (two soft-tissue ellipsoids anterior on the chest that
change μ and the outline), lungs cut by the diaphragm domes, spine, liver below the right hemidiaphragm, stomach
below the left hemidiaphragm (raised by ``left_dome_raise_mm``), three gut loops below the LV's lowest point
(``gut_gap_mm`` is the vertical clearance), LV (prolate ellipsoidal shell, open base), right-ventricular (RV)
free wall and cavity. Every draw maps one uniform quantile to the family's range, a fixed number of draws per
patient, so the same generator state gives the corresponding patient in either family, and the anatomy does not
depend on the grid (a CT grid and a SPECT grid drawn from the same seed see the same patient).

Heart frame: ``e_long`` is the base→apex unit vector
``(cos el · cos az, −cos el · sin az, −sin el)`` (azimuth from the patient's left towards anterior, elevation
below the transverse plane); the septal direction is the patient's right orthogonalised against it; short-axis
angles count 0° anterior, 90° septal, 180° inferior, 270° lateral. Axial position along the LV: 0 at the base
plane, 1 at the apex.

Ranges (uniform draws; ``wide`` extends each training range by about 40 % of its width on each side, clipped at
physical limits; the held-out family for "the gain drops by ≤ 1 dB on the wider held-out family", issue 23):

=========================  =====  ==================  ==================
parameter                  unit   train               wide
=========================  =====  ==================  ==================
body lateral semi-axis     mm     140 – 190           120 – 210
body AP semi-axis          mm     100 – 135           86 – 149
heart shift (each axis)    mm     −15 – 15            −27 – 27
heart azimuth              deg    30 – 60             18 – 72
heart elevation            deg    15 – 45             3 – 57
LV long semi-axis          mm     44 – 54             40 – 58
LV short semi-axis         mm     29 – 37             25.8 – 40.2
LV wall thickness          mm     7 – 13              4.6 – 15.4
RV wall uptake             rel.   0.2 – 0.45          0.1 – 0.55
liver uptake, stress       rel.   0.3 – 0.6           0.18 – 0.72
liver uptake, rest         rel.   0.5 – 1.0           0.3 – 1.2
body background, stress    rel.   0.05 – 0.09         0.034 – 0.106
body background, rest      rel.   0.08 – 0.13         0.06 – 0.15
blood pool, stress         rel.   0.08 – 0.14         0.056 – 0.164
blood pool, rest           rel.   0.12 – 0.2          0.088 – 0.232
lung uptake                rel.   0.01 – 0.04         0 – 0.052
stomach / gut loop uptake  rel.   0 – 0.8             0 – 1.12
gut gap below the LV       mm     8 – 30              0 – 38.8
liver dome below heart     mm     20 – 40             12 – 48
left hemidiaphragm raise   mm     0 – 20              0 – 28
breast lateral semi-axis   mm     40 – 65             30 – 75
breast AP semi-axis        mm     25 – 55             13 – 67
breast vertical semi-axis  mm     40 – 60             32 – 68
breast height vs heart     mm     −30 – 10            −46 – 26
defect extent              deg    20 – 120            5 – 160
defect residual uptake     rel.   0.1 – 0.8           0.02 – 0.95
defect centre angle        deg    0 – 360             0 – 360
defect axial centre        rel.   0.15 – 0.9          0.15 – 0.9
defect axial length        rel.   0.3 – 0.8           0.1 – 1
=========================  =====  ==================  ==================

Discrete draws (both families): female 50 %, stress 50 % (``state`` fixes it), a drawn defect is reversible
(ischaemia: present at stress, absent at rest) 50 % of the time, else fixed (scar: present in both). Stress has the
higher myocardial contrast (lower liver, background and pool). Fixed values: heart at ``(0.18 a, −0.30 b, 0)`` mm
plus the shift (``a``, ``b``: body semi-axes; moved posterior where the LV would come within 15 mm of the chest
wall); LV base plane at 0.375 of the long semi-axis behind the centre; RV wall 5 mm; spine radius 18 mm; gut loops
12–20 × 12–20 × 8–14 mm semi-axes within ±25 mm (X) / ±20 mm (Y) of the LV's lowest point. Wide bodies (semi-axis
over 192 mm, 9 of 40 draws) are clipped by a 64 × 6 mm grid: use a larger field of view for the wide family when that
matters. Out-of-family patients (focal lesions, implants, hearts outside both ranges):
:mod:`monai_diffrecon.data.spect_lesions`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import torch

from monai_diffrecon.errors import InvalidValueError, ShapeError
from monai_diffrecon.physics.functional.devices import rand

__all__ = [
    "FAMILIES",
    "MU_BONE_140KEV",
    "MU_LUNG_140KEV",
    "MU_WATER_140KEV",
    "PATIENT_RANGES",
    "Patient",
    "cardiac_phantom",
    "draw_patient",
    "grid_affine_lps",
    "lv_lowest_point",
    "render_patient",
]

MU_WATER_140KEV = 0.154  # cm⁻¹
MU_LUNG_140KEV = 0.040
MU_BONE_140KEV = 0.280

FAMILIES = ("train", "wide", "v1")

#: ``{parameter: {"train": (lo, hi), "wide": (lo, hi)}}`` — the table of the module docstring (a test keeps them equal)
PATIENT_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "body_lateral_mm": {"train": (140.0, 190.0), "wide": (120.0, 210.0)},
    "body_ap_mm": {"train": (100.0, 135.0), "wide": (86.0, 149.0)},
    "heart_shift_mm": {"train": (-15.0, 15.0), "wide": (-27.0, 27.0)},
    "heart_azimuth_deg": {"train": (30.0, 60.0), "wide": (18.0, 72.0)},
    "heart_elevation_deg": {"train": (15.0, 45.0), "wide": (3.0, 57.0)},
    "lv_long_mm": {"train": (44.0, 54.0), "wide": (40.0, 58.0)},
    "lv_short_mm": {"train": (29.0, 37.0), "wide": (25.8, 40.2)},
    "wall_mm": {"train": (7.0, 13.0), "wide": (4.6, 15.4)},
    "rv_uptake": {"train": (0.2, 0.45), "wide": (0.1, 0.55)},
    "liver_stress": {"train": (0.3, 0.6), "wide": (0.18, 0.72)},
    "liver_rest": {"train": (0.5, 1.0), "wide": (0.3, 1.2)},
    "background_stress": {"train": (0.05, 0.09), "wide": (0.034, 0.106)},
    "background_rest": {"train": (0.08, 0.13), "wide": (0.06, 0.15)},
    "pool_stress": {"train": (0.08, 0.14), "wide": (0.056, 0.164)},
    "pool_rest": {"train": (0.12, 0.2), "wide": (0.088, 0.232)},
    "lung_uptake": {"train": (0.01, 0.04), "wide": (0.0, 0.052)},
    "gut_uptake": {"train": (0.0, 0.8), "wide": (0.0, 1.12)},
    "gut_gap_mm": {"train": (8.0, 30.0), "wide": (0.0, 38.8)},
    "liver_dome_mm": {"train": (20.0, 40.0), "wide": (12.0, 48.0)},
    "left_dome_raise_mm": {"train": (0.0, 20.0), "wide": (0.0, 28.0)},
    "breast_lateral_mm": {"train": (40.0, 65.0), "wide": (30.0, 75.0)},
    "breast_ap_mm": {"train": (25.0, 55.0), "wide": (13.0, 67.0)},
    "breast_vertical_mm": {"train": (40.0, 60.0), "wide": (32.0, 68.0)},
    "breast_z_mm": {"train": (-30.0, 10.0), "wide": (-46.0, 26.0)},
    "defect_extent_deg": {"train": (20.0, 120.0), "wide": (5.0, 160.0)},
    "defect_residual": {"train": (0.1, 0.8), "wide": (0.02, 0.95)},
    "defect_angle_deg": {"train": (0.0, 360.0), "wide": (0.0, 360.0)},
    "defect_axial_centre": {"train": (0.15, 0.9), "wide": (0.15, 0.9)},
    "defect_axial_length": {"train": (0.3, 0.8), "wide": (0.1, 1.0)},
}
_N_DRAWS = 80  # uniform quantiles drawn per patient, whatever is used (fixed generator advance)
_BASE = 0.375  # LV base plane: u > −_BASE · long semi-axis (u along e_long from the LV centre)
_RV_WALL_MM = 5.0
_SPINE_R_MM = 18.0


@dataclasses.dataclass(frozen=True)
class Patient:
    """One drawn patient (all lengths in mm, angles in degrees, uptakes relative to normal myocardium = 1).

    ``gut_loops``: three ``(dx, dy, rx, ry, rz, gap, uptake)`` — offset of the loop centre from the LV's lowest point
    in X and Y, semi-axes, vertical clearance below that point and uptake. Positions of the abdomen follow the heart
    (:func:`render_patient` derives them), so replacing heart parameters (:func:`dataclasses.replace`) keeps the
    anatomy consistent. ``defect_shown`` is whether the image has the defect (``defect`` and not a reversible
    defect at rest).
    """

    family: str
    state: str
    female: bool
    body_lateral_mm: float
    body_ap_mm: float
    heart_shift_mm: tuple[float, float, float]
    heart_azimuth_deg: float
    heart_elevation_deg: float
    lv_long_mm: float
    lv_short_mm: float
    wall_mm: float
    rv_uptake: float
    liver_uptake: float
    background: float
    pool: float
    lung_uptake: float
    stomach_uptake: float
    gut_loops: tuple[tuple[float, ...], ...]
    liver_dome_mm: float
    left_dome_raise_mm: float
    breast_lateral_mm: float
    breast_ap_mm: float
    breast_vertical_mm: float
    breast_z_mm: float
    defect: bool
    reversible: bool
    defect_angle_deg: float
    defect_extent_deg: float
    defect_residual: float
    defect_axial_centre: float
    defect_axial_length: float

    @property
    def defect_shown(self) -> bool:
        return self.defect and not (self.reversible and self.state == "rest")

    @property
    def heart_centre_mm(self) -> tuple[float, float, float]:
        """LV centre, mm: ``(0.18 a, −0.30 b, 0)`` plus the shift, moved back (posterior) where the LV's front would
        come closer than 15 mm to the chest wall (small bodies with an anterior shift: 1 in 200 training and 20 in 200
        wide draws), so the heart stays inside the chest."""
        s, a, b = self.heart_shift_mm, self.body_lateral_mm, self.body_ap_mm
        cx, cy = 0.18 * a + s[0], -0.30 * b + s[1]
        ey = _heart_frame(self)[0][1]
        half_y = math.sqrt(self.lv_long_mm**2 * ey**2 + self.lv_short_mm**2 * (1 - ey**2))  # LV half-extent along Y
        wall_y = -b * math.sqrt(max(0.0, 1 - (cx / a) ** 2))
        return (cx, max(cy, wall_y + half_y + 15.0), s[2])


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


def _check_grid(shape, voxel_size_mm, center_mm) -> None:
    if len(tuple(shape)) != 3 or any(int(n) != n or n < 1 for n in shape):
        raise ShapeError(f"shape: expected three positive integers (X, Y, Z), got {tuple(shape)}")
    vs = (voxel_size_mm,) * 3 if isinstance(voxel_size_mm, (int, float)) else tuple(voxel_size_mm)
    if len(vs) != 3 or not all(math.isfinite(v) and v > 0 for v in vs):
        raise InvalidValueError(f"voxel_size_mm: expected a positive size or three, got {voxel_size_mm!r}")
    if len(tuple(center_mm)) != 3 or not all(math.isfinite(c) for c in center_mm):
        raise InvalidValueError(f"center_mm: expected three finite mm values, got {center_mm!r}")


def draw_patient(generator: torch.Generator, family: str = "train", defect: bool = False,
                 state: str | None = None) -> Patient:
    """Draw one patient of ``family`` (``"train"`` or ``"wide"``, ranges in the module docstring).

    Args:
        generator: the only source of randomness; exactly ``_N_DRAWS`` uniforms are drawn (on its device), so the
            draw count does not depend on ``family``, ``defect`` or ``state``.
        family: ``"train"`` (training ranges) or ``"wide"`` (the wider held-out family).
        defect: give the patient a perfusion defect (its size, severity, location and reversibility are drawn).
        state: ``"rest"`` or ``"stress"``; ``None`` draws it (50 %). The same generator state gives the same
            anatomy and defect in both states, so ``state="rest"`` and ``"stress"`` make a rest/stress pair.
    """
    if family not in ("train", "wide"):
        raise InvalidValueError(f"family: 'train' or 'wide' for a drawn patient, got {family!r}")
    if state not in (None, "rest", "stress"):
        raise InvalidValueError(f"state: 'rest', 'stress' or None, got {state!r}")
    q = iter(rand(_N_DRAWS, generator, dtype=torch.float64).tolist())

    def r(name: str) -> float:
        lo, hi = PATIENT_RANGES[name][family]
        return lo + next(q) * (hi - lo)

    drawn_stress = next(q) < 0.5
    st = state if state is not None else ("stress" if drawn_stress else "rest")
    female, reversible = next(q) < 0.5, next(q) < 0.5
    vals = {k: r(k) for k in ("body_lateral_mm", "body_ap_mm", "heart_azimuth_deg", "heart_elevation_deg", "lv_long_mm",
                              "lv_short_mm", "wall_mm", "rv_uptake", "lung_uptake", "liver_dome_mm", "left_dome_raise_mm",
                              "breast_lateral_mm", "breast_ap_mm", "breast_vertical_mm", "breast_z_mm", "defect_extent_deg",
                              "defect_residual", "defect_angle_deg", "defect_axial_centre", "defect_axial_length")}
    shift = (r("heart_shift_mm"), r("heart_shift_mm"), r("heart_shift_mm"))
    liver, background, pool = (r(f"{k}_{st}") for k in ("liver", "background", "pool"))  # the state's ranges
    stomach = r("gut_uptake")
    loops = tuple((-25 + 50 * next(q), -20 + 40 * next(q), 12 + 8 * next(q), 12 + 8 * next(q), 8 + 6 * next(q), r("gut_gap_mm"),
                   r("gut_uptake")) for _ in range(3))
    return Patient(family=family, state=st, female=female, heart_shift_mm=shift, liver_uptake=liver, background=background,
                   pool=pool, stomach_uptake=stomach, gut_loops=loops, defect=bool(defect), reversible=reversible, **vals)


def _heart_frame(p: Patient) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """Unit vectors ``(e_long, e_septal, e_anterior)`` of the heart frame (see module doc)."""
    az, el = math.radians(p.heart_azimuth_deg), math.radians(p.heart_elevation_deg)
    el_ = (math.cos(el) * math.cos(az), -math.cos(el) * math.sin(az), -math.sin(el))
    dot = -el_[0]  # patient's right (−1, 0, 0) orthogonalised against e_long
    s = (-1.0 - dot * el_[0], -dot * el_[1], -dot * el_[2])
    n = math.sqrt(sum(c * c for c in s))
    es = tuple(c / n for c in s)
    ea = (el_[1] * es[2] - el_[2] * es[1], el_[2] * es[0] - el_[0] * es[2], el_[0] * es[1] - el_[1] * es[0])
    if ea[2] - ea[1] < 0:  # anterior/superior side
        ea = tuple(-c for c in ea)
    return el_, es, ea


def lv_lowest_point(p: Patient) -> tuple[float, float, float]:
    """The lowest (most inferior, min Z) point of the LV's outer surface, mm (the inferior wall rests above it)."""
    el_, _, _ = _heart_frame(p)
    L, S = p.lv_long_mm, p.lv_short_mm
    ez = el_[2]
    m = [L * L * el_[i] * ez + S * S * ((1.0 if i == 2 else 0.0) - el_[i] * ez) for i in range(3)]  # M ẑ
    h = math.sqrt(m[2])
    c = p.heart_centre_mm
    return (c[0] - m[0] / h, c[1] - m[1] / h, c[2] - m[2] / h)


def _structures(p: Patient, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> dict[str, torch.Tensor]:
    """Boolean masks of every structure (and heart-frame coordinates) at points ``x, y, z`` (mm, any common shape)."""
    a, b = p.body_lateral_mm, p.body_ap_mm
    chest = (x / a) ** 2 + (y / b) ** 2 < 1
    breasts = torch.zeros_like(chest)
    if p.female:
        bx = 0.4 * a
        ys = -b * math.sqrt(1 - 0.4**2)  # chest surface at |x| = 0.4 a
        cz = p.heart_centre_mm[2] + p.breast_z_mm
        rad = (p.breast_lateral_mm, p.breast_ap_mm, p.breast_vertical_mm)
        for sgn in (-1.0, 1.0):
            breasts |= _ellipsoid(x, y, z, (sgn * bx, ys + 0.2 * p.breast_ap_mm, cz), rad) < 1
    body = chest | breasts

    c = p.heart_centre_mm
    el_, es, ea = _heart_frame(p)
    dx, dy, dz = x - c[0], y - c[1], z - c[2]
    u = dx * el_[0] + dy * el_[1] + dz * el_[2]
    v = dx * es[0] + dy * es[1] + dz * es[2]
    w = dx * ea[0] + dy * ea[1] + dz * ea[2]
    L, S, t = p.lv_long_mm, p.lv_short_mm, p.wall_mm
    outer_q = (u / L) ** 2 + (v / S) ** 2 + (w / S) ** 2
    inner_q = (u / (L - t)) ** 2 + (v / (S - t)) ** 2 + (w / (S - t)) ** 2
    base = u > -_BASE * L
    lv_myo = (outer_q < 1) & (inner_q >= 1) & base
    lv_pool = (inner_q < 1) & base
    ru, rv, rw = u + 0.1 * L, v - 0.85 * S, w  # RV: on the septal side, slightly towards the base
    RL, RS, RA = 0.8 * L, 0.75 * S, 1.2 * S
    rv_outer = (ru / RL) ** 2 + (rv / RS) ** 2 + (rw / RA) ** 2 < 1
    rw_ = _RV_WALL_MM
    rv_inner = (ru / (RL - rw_)) ** 2 + (rv / (RS - rw_)) ** 2 + (rw / (RA - rw_)) ** 2 < 1
    rv_myo = rv_outer & ~rv_inner & (outer_q >= 1) & base
    rv_pool = rv_inner & (outer_q >= 1) & base
    heart_env = (outer_q < 1.2**2) | rv_outer  # heart and mediastinum around it: never lung

    low = lv_lowest_point(p)
    z_rd = c[2] - p.liver_dome_mm  # right hemidiaphragm (liver dome)
    z_ld = low[2] - 25.0 + p.left_dome_raise_mm  # left hemidiaphragm (stomach dome)
    liver = _ellipsoid(x, y, z, (-0.3 * a, 0.04 * b, z_rd - 55.0), (0.52 * a, 0.6 * b, 55.0)) < 1
    stomach = _ellipsoid(x, y, z, (0.4 * a, 0.1 * b, z_ld - 35.0), (0.25 * a, 0.3 * b, 35.0)) < 1
    gut = [_ellipsoid(x, y, z, (low[0] + g[0], low[1] + g[1], low[2] - g[5] - g[4]), g[2:5]) < 1 for g in p.gut_loops]
    spine = ((x / _SPINE_R_MM) ** 2 + ((y - 0.65 * b) / _SPINE_R_MM) ** 2 < 1) & chest
    lung_c, lung_r = (0.45 * a, 0.04 * b, c[2] + 40.0), (0.33 * a, 0.65 * b, 110.0)
    lung_l = (_ellipsoid(x, y, z, lung_c, lung_r) < 1) & (z > z_ld) & ~stomach
    lung_r_ = (_ellipsoid(x, y, z, (-lung_c[0], *lung_c[1:]), lung_r) < 1) & ~liver
    lungs = (lung_l | lung_r_) & chest & ~heart_env & ~spine
    for g in gut:
        lungs &= ~g
    return {"body": body, "chest": chest, "breasts": breasts, "lungs": lungs, "spine": spine, "liver": liver,
            "stomach": stomach, "gut": gut, "lv_myo": lv_myo, "lv_pool": lv_pool, "rv_myo": rv_myo, "rv_pool": rv_pool,
            "heart_env": heart_env, "u": u, "v": v, "w": w}


def render_patient(patient: Patient, shape: Sequence[int] = (64, 64, 64),
                   voxel_size_mm: float | tuple[float, float, float] = 6.0,
                   center_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> dict[str, torch.Tensor]:
    """Activity and attenuation maps of a drawn :class:`Patient` on a grid (same keys as :func:`cardiac_phantom`).

    Voxels take the structure at their centre (no partial volume). Returns ``{"activity": (X, Y, Z) float32 ≥ 0
    (normal myocardium 1), "mu": (X, Y, Z) float32 cm⁻¹, "myocardium": LV myocardium (X, Y, Z) bool, "defect":
    (X, Y, Z) bool}`` (the defect is part of the myocardium; empty unless ``patient.defect_shown``). The RV wall
    is not in ``"myocardium"``.
    """
    _check_grid(shape, voxel_size_mm, center_mm)
    shape = tuple(int(n) for n in shape)
    x, y, z = _grid(shape, voxel_size_mm, center_mm)
    s = _structures(patient, x, y, z)
    p = patient
    act = torch.zeros(shape, dtype=torch.float64, device="cpu")
    act[s["body"]] = p.background
    act[s["lungs"]] = p.lung_uptake
    act[s["liver"]] = p.liver_uptake
    act[s["stomach"]] = p.stomach_uptake
    for g, loop in zip(s["gut"], p.gut_loops):
        act[g] = loop[6]
    act[s["lv_pool"] | s["rv_pool"]] = p.pool
    act[s["rv_myo"]] = p.rv_uptake
    myo = s["lv_myo"]
    act[myo] = 1.0
    wedge = torch.zeros(shape, dtype=torch.bool, device="cpu")
    if p.defect_shown:
        ang = torch.rad2deg(torch.atan2(s["v"], s["w"]))  # 0 anterior, 90 septal, 180 inferior, 270 lateral
        dang = torch.remainder(ang - p.defect_angle_deg + 180.0, 360.0) - 180.0
        axial = (s["u"] + _BASE * p.lv_long_mm) / ((1 + _BASE) * p.lv_long_mm)  # 0 base → 1 apex
        wedge = myo & (dang.abs() < p.defect_extent_deg / 2) & ((axial - p.defect_axial_centre).abs() < p.defect_axial_length / 2)
        act[wedge] *= p.defect_residual
    mu = torch.zeros(shape, dtype=torch.float64, device="cpu")
    mu[s["body"]] = MU_WATER_140KEV
    mu[s["lungs"]] = MU_LUNG_140KEV
    mu[s["spine"]] = MU_BONE_140KEV
    body = s["body"]
    act[~body] = 0.0
    return {"activity": act.float(), "mu": mu.float(), "myocardium": myo & body, "defect": wedge & body}


def cardiac_phantom(
    shape: tuple[int, int, int] = (64, 64, 64),
    voxel_size_mm: float | tuple[float, float, float] = 6.0,
    defect: bool = False,
    generator: torch.Generator | None = None,
    center_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
    *,
    family: str = "train",
    state: str | None = None,
) -> dict[str, torch.Tensor]:
    """Activity and attenuation maps of a thorax with a left ventricle.

    Args:
        shape: ``(X, Y, Z)`` voxels; the field of view should be ≥ 350 mm transverse to hold the body.
        voxel_size_mm: voxel size (isotropic float or ``(sx, sy, sz)``).
        defect: add a perfusion defect. Reference phantom: anterior wedge, 60° wide, residual 35 %; random
            patients: drawn extent, severity, wall and basal–apical position (module doc), absent at rest when
            drawn reversible (the returned ``"defect"`` mask is then empty — use it, not this flag, as the label).
        generator: ``None`` gives the fixed reference phantom (``family`` is then not used and ``state`` must be
            ``None``); otherwise a random patient of ``family``.
        center_mm: LPS position of the grid centre (the anatomy is fixed in space, so two grids — e.g. SPECT and
            CT — sampled with the same seed see the same patient).
        family: ``"train"`` (patient variability for training, the default), ``"wide"`` (every range widened, the
            held-out generalisation family) or ``"v1"`` (the jittered reference of issue 8: organ sizes ±10 %,
            orientation ±30 %, wall 7–13 mm — kept to reproduce cohorts of the first shipped weights).
        state: ``"rest"`` / ``"stress"`` / ``None`` (drawn) for ``"train"`` and ``"wide"``.

    Returns:
        ``{"activity": (X, Y, Z) float32 ≥ 0, "mu": (X, Y, Z) float32 cm⁻¹, "myocardium": (X, Y, Z) bool,
        "defect": (X, Y, Z) bool}`` (the defect is part of the myocardium; empty without a defect).
    """
    if family not in FAMILIES:
        raise InvalidValueError(f"family: one of {FAMILIES}, got {family!r}")
    if state is not None and (generator is None or family == "v1"):
        raise InvalidValueError(f"state: only for random patients of the 'train' or 'wide' family, got {state!r}")
    _check_grid(shape, voxel_size_mm, center_mm)
    if generator is None or family == "v1":
        return _phantom_v1(shape, voxel_size_mm, defect, generator, center_mm)
    return render_patient(draw_patient(generator, family, defect, state), shape, voxel_size_mm, center_mm)


def _phantom_v1(shape, voxel_size_mm, defect, generator, center_mm) -> dict[str, torch.Tensor]:
    """The reference phantom (``generator=None``) and its jittered family of issue 8 (unchanged, bit for bit)."""

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
