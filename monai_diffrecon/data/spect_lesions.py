"""Out-of-family SPECT phantoms: the training-family patient plus what the training family never shows.

The clinical-safety test of issue 23 (item 7): the data must outrank the prior where they disagree. Each kind
starts from a training-family patient (:func:`~monai_diffrecon.data.spect_phantom.draw_patient`, state and defect
drawn) and adds, per ``kind``:

==============  ====================================================================================================
kind            what is added (uniform ranges; contrast = lesion uptake / normal myocardium)
==============  ====================================================================================================
``lung``        1–3 spherical nodules inside the lungs (μ of water), diameter 8–30 mm, contrast 0.3–1.5*
``breast``      female patient; 1–2 lesions inside the breasts, 8–30 mm, contrast 0.3–1.5*
``bone``        1–3 lesions in the spine, a rib (a band 2–10 mm under the chest wall) or the sternum; μ of bone;
                8–30 mm, contrast 0.3–1.5*
``liver``       1–3 lesions inside the liver, 8–30 mm, contrast 0.3–1.5* (* at least twice the local background:
                a liver of uptake ``l`` > 0.75 gives ``2 l`` – ``2 l + 0.3``)
``gut``         one intense gut loop (sphere 15–30 mm, contrast 1.0–2.5) 0–5 mm below the LV's lowest point
``hot_liver``   liver uptake 1.0–2.0 with its dome raised to 0–5 mm below the LV's lowest point (no focal lesion)
``implant``     a pacemaker/ICD can (semi-axes 20–35 × 4–8 × 18–30 mm, μ 0.6–2.0 cm⁻¹, no activity) under the
                anterior chest wall 60–110 mm above the heart, or a breast prosthesis (female, the breasts 1.3× deeper,
                an inner 0.7× ellipsoid of μ 0.12–0.30 cm⁻¹ and no activity); no focal lesion
``heart``       a heart outside both the training and the wide ranges: ``thin_wall`` (3–4.5 mm), ``thick_wall``
                (16–20 mm), ``dilated`` (long 60–70, short 42–50 mm, wall 6–9 mm), ``horizontal`` (elevation −10–2°)
                or ``vertical`` (elevation 58–75°); no focal lesion
==============  ====================================================================================================

Lesions are placed by rejection sampling on the analytic anatomy (the whole sphere inside its region and outside
the heart, ≥ 4 mm apart); every lesion is a hot focus, its uptake at least twice its region's background (the
recovery metric reads a cold or background-level lesion backwards: filling it in scores > 1); after 200 failed tries the diameter shrinks by 15 % (never below 8 mm; a lesion that
still does not fit is left out). Lesion voxels carry partial volume (3³ sub-samples per voxel: activity
``(1 − f) · background + f · uptake``); a lesion's mask is ``f ≥ 0.5`` plus the voxel holding its centre. The
anatomy does not depend on the grid. Recovery of a lesion in a reconstruction:
:func:`~monai_diffrecon.metrics.spect.lesion_recovery` (target: ≥ 0.8 × OSEM's for every lesion ≥ 12 mm).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import torch

from monai_diffrecon.data.spect_phantom import (
    MU_BONE_140KEV,
    MU_WATER_140KEV,
    Patient,
    _check_grid,
    _ellipsoid,
    _grid,
    _structures,
    draw_patient,
    lv_lowest_point,
    render_patient,
)
from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.evaluation.splits import seeds
from monai_diffrecon.physics.functional.devices import rand

__all__ = ["HEART_VARIANTS", "OOF_KINDS", "out_of_family_cases", "out_of_family_phantom"]

OOF_KINDS = ("lung", "breast", "bone", "liver", "gut", "hot_liver", "implant", "heart")
HEART_VARIANTS = ("thin_wall", "thick_wall", "dilated", "horizontal", "vertical")
_TRIES = 200


def _u(g: torch.Generator, lo: float = 0.0, hi: float = 1.0) -> float:
    return lo + (hi - lo) * float(rand((), g, dtype=torch.float64))


def out_of_family_cases(n: int) -> list[tuple[str, int]]:
    """The first ``n`` cases of the out-of-family test set: ``(kind, seed)``, kinds in the order of
    :data:`OOF_KINDS` (case ``i`` has kind ``OOF_KINDS[i % 8]``), each case its own seed from the split registry's
    ``"test_oof"`` range — so two kinds never share a patient or lesion draws. Build case ``i`` with
    ``out_of_family_phantom(kind, shape, voxel_size_mm, torch.Generator().manual_seed(seed))``.
    """
    return [(OOF_KINDS[i % len(OOF_KINDS)], s) for i, s in enumerate(seeds("spect", "test_oof", n))]


def _background(p: Patient, region: str) -> float:
    return {"lung": p.lung_uptake, "liver": p.liver_uptake}.get(region, p.background)


def _contrast(p: Patient, region: str, g: torch.Generator) -> float:
    """Lesion uptake / normal myocardium: uniform 0.3–1.5, floored at twice the region's background (hot focus)."""
    lo = max(0.3, 2.0 * _background(p, region))
    return _u(g, lo, max(1.5, lo + 0.3))


def _sphere_points(n: int = 96) -> torch.Tensor:
    """Unit vectors (Fibonacci sphere), ``(n, 3)`` float64, plus the half-radius shell: ``(2n + 1, 3)`` offsets."""
    i = torch.arange(n, dtype=torch.float64, device="cpu") + 0.5
    zc = 1 - 2 * i / n
    phi = math.pi * (3 - math.sqrt(5)) * i
    r = (1 - zc**2).sqrt()
    d = torch.stack([r * torch.cos(phi), r * torch.sin(phi), zc], 1)
    return torch.cat([torch.zeros(1, 3, dtype=torch.float64, device="cpu"), d, 0.5 * d])


_DIRS = _sphere_points()


def _fits(p: Patient, centre, radius: float, region: str, placed: list[tuple[tuple[float, ...], float]]) -> bool:
    """Whether the sphere lies inside ``region`` (all sample points), outside the heart and apart from ``placed``."""
    for c2, r2 in placed:
        if math.dist(centre, c2) < radius + r2 + 4.0:
            return False
    pts = torch.tensor(centre, dtype=torch.float64, device="cpu") + radius * _DIRS
    s = _structures(p, pts[:, 0], pts[:, 1], pts[:, 2])
    inside = {"lung": s["lungs"], "liver": s["liver"] & ~s["lungs"], "breast": s["body"], "spine": s["body"],
              "rib": s["chest"], "sternum": s["chest"]}[region]
    ok = bool(inside.all()) and not bool(s["heart_env"].any())
    if region == "breast":
        ok &= bool(s["breasts"][0])  # centre in a breast
    elif region == "spine":
        ok &= bool(s["spine"][0])
    return ok


def _candidate(p: Patient, region: str, radius: float, g: torch.Generator) -> tuple[float, float, float]:
    a, b = p.body_lateral_mm, p.body_ap_mm
    cz = p.heart_centre_mm[2]
    if region == "lung":
        side = 1.0 if _u(g) < 0.5 else -1.0
        return (side * _u(g, 0.12 * a, 0.78 * a), _u(g, -0.61 * b, 0.69 * b), _u(g, cz - 70.0, cz + 100.0))
    if region == "liver":
        return (_u(g, -0.82 * a, 0.22 * a), _u(g, -0.56 * b, 0.64 * b), _u(g, cz - p.liver_dome_mm - 110.0, cz - p.liver_dome_mm))
    if region == "breast":
        side = 1.0 if _u(g) < 0.5 else -1.0
        ys = -b * math.sqrt(1 - 0.4**2) + 0.2 * p.breast_ap_mm
        return (side * 0.4 * a + _u(g, -1, 1) * p.breast_lateral_mm, ys + _u(g, -1, 1) * p.breast_ap_mm,
                cz + p.breast_z_mm + _u(g, -1, 1) * p.breast_vertical_mm)
    if region == "spine":
        return (_u(g, -18.0, 18.0), 0.65 * b + _u(g, -18.0, 18.0), _u(g, cz - 80.0, cz + 80.0))
    depth = radius + _u(g, 2.0, 10.0)  # rib / sternum: a band under the chest wall
    if region == "sternum":
        return (_u(g, -8.0, 8.0), -b + depth, _u(g, cz - 40.0, cz + 80.0))
    phi = _u(g, 0.0, 2 * math.pi)
    return ((a - depth) * math.cos(phi), (b - depth) * math.sin(phi), _u(g, cz - 60.0, cz + 90.0))


def _place(p: Patient, region: str, diameter: float, g: torch.Generator, placed) -> tuple[tuple[float, float, float], float] | None:
    d = diameter
    while True:
        for _ in range(_TRIES):
            c = _candidate(p, region, d / 2, g)
            if _fits(p, c, d / 2, region, placed):
                return c, d
        if d <= 8.0:
            return None
        d = max(8.0, 0.85 * d)


def _axes(shape, voxel_mm, center_mm) -> list[torch.Tensor]:
    vs = (voxel_mm,) * 3 if isinstance(voxel_mm, (int, float)) else tuple(voxel_mm)
    return [(torch.arange(n, dtype=torch.float64, device="cpu") - (n - 1) / 2) * v + c for n, v, c in zip(shape, vs, center_mm)]


def _sphere_fraction(shape, voxel_mm, center_mm, centre, radius: float, ss: int = 3) -> torch.Tensor:
    """Fraction of each voxel inside the sphere, ``(X, Y, Z)`` float64 (``ss³`` sub-samples, bounding box only)."""
    vs = (voxel_mm,) * 3 if isinstance(voxel_mm, (int, float)) else tuple(voxel_mm)
    frac = torch.zeros(shape, dtype=torch.float64, device="cpu")
    sub = (torch.arange(ss, dtype=torch.float64, device="cpu") + 0.5) / ss - 0.5
    idx, fine = [], []
    for ax, v, c in zip(_axes(shape, voxel_mm, center_mm), vs, centre):
        keep = ((ax - c).abs() <= radius + v).nonzero()[:, 0]
        if keep.numel() == 0:
            return frac
        idx.append(keep)
        fine.append(((ax[keep][:, None] + sub[None] * v) - c).reshape(-1) ** 2)
    inside = (fine[0][:, None, None] + fine[1][None, :, None] + fine[2][None, None, :]) < radius**2
    n = [len(i) for i in idx]
    f = inside.reshape(n[0], ss, n[1], ss, n[2], ss).double().mean((1, 3, 5))
    frac[idx[0][:, None, None], idx[1][None, :, None], idx[2][None, None, :]] = f
    return frac


def _centre_voxel(shape, voxel_mm, center_mm, centre) -> tuple[int, int, int] | None:
    vs = (voxel_mm,) * 3 if isinstance(voxel_mm, (int, float)) else tuple(voxel_mm)
    ijk = tuple(round((c - cc) / v + (n - 1) / 2) for c, cc, v, n in zip(centre, center_mm, vs, shape))
    return ijk if all(0 <= i < n for i, n in zip(ijk, shape)) else None


def _heart_variant(p: Patient, g: torch.Generator) -> tuple[Patient, str]:
    variant = HEART_VARIANTS[min(int(_u(g) * len(HEART_VARIANTS)), len(HEART_VARIANTS) - 1)]
    if variant == "thin_wall":
        return dataclasses.replace(p, wall_mm=_u(g, 3.0, 4.5)), variant
    if variant == "thick_wall":
        return dataclasses.replace(p, wall_mm=_u(g, 16.0, 20.0)), variant
    if variant == "dilated":
        return dataclasses.replace(p, lv_long_mm=_u(g, 60.0, 70.0), lv_short_mm=_u(g, 42.0, 50.0), wall_mm=_u(g, 6.0, 9.0)), variant
    if variant == "horizontal":
        return dataclasses.replace(p, heart_elevation_deg=_u(g, -10.0, 2.0)), variant
    return dataclasses.replace(p, heart_elevation_deg=_u(g, 58.0, 75.0)), variant


def out_of_family_phantom(
    kind: str,
    shape: Sequence[int] = (64, 64, 64),
    voxel_size_mm: float | tuple[float, float, float] = 6.0,
    generator: torch.Generator | None = None,
    center_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
    defect: bool | None = None,
) -> dict:
    """A training-family patient with out-of-family content of ``kind`` (table in the module docstring).

    Args:
        kind: one of :data:`OOF_KINDS`.
        shape, voxel_size_mm, center_mm: the grid, as in :func:`~monai_diffrecon.data.cardiac_phantom`.
        generator: required; draws the patient, then what ``kind`` adds (seeds: :func:`out_of_family_cases`).
        defect: perfusion defect on/off; ``None`` draws it (50 %).

    Returns:
        ``{"activity", "mu", "myocardium", "defect"}`` as :func:`~monai_diffrecon.data.cardiac_phantom` plus
        ``"lesions": [{"mask": (X, Y, Z) bool, "diameter_mm": float, "centre_mm": (x, y, z), "region": str,
        "contrast": float, "background": float}]`` (lesion and local background uptake / normal myocardium),
        ``"implant": (X, Y, Z) bool`` (empty unless ``kind="implant"``), ``"variant": str`` (what was added) and
        ``"patient"`` (the drawn :class:`~monai_diffrecon.data.spect_phantom.Patient`).

    Example:
        >>> import torch
        >>> ph = out_of_family_phantom("lung", (32, 32, 32), 12.0, torch.Generator().manual_seed(85_000))
        >>> [l["region"] for l in ph["lesions"]][:1]
        ['lung']
    """
    if kind not in OOF_KINDS:
        raise InvalidValueError(f"kind: one of {OOF_KINDS}, got {kind!r}")
    if generator is None:
        raise InvalidValueError("generator: required (a torch.Generator seeded from the split registry's 'test_oof' seeds)")
    _check_grid(shape, voxel_size_mm, center_mm)
    shape = tuple(int(n) for n in shape)
    g = generator
    has_defect = (_u(g) < 0.5) if defect is None else bool(defect)
    p = draw_patient(g, "train", has_defect)
    variant = kind
    specs: list[tuple[str, float, float]] = []  # (region, diameter, contrast)
    if kind in ("breast",) or (kind == "implant" and _u(g) < 0.5):
        p = dataclasses.replace(p, female=True)
        if kind == "implant":
            variant = "prosthesis"
    if kind == "implant" and variant != "prosthesis":
        variant = "pacemaker"
    n_lesions = 1 + min(int(_u(g) * 3), 2)
    if kind in ("lung", "liver", "breast"):
        specs = [(kind, _u(g, 8.0, 30.0), _contrast(p, kind, g)) for _ in range(min(n_lesions, 2) if kind == "breast" else n_lesions)]
    elif kind == "bone":
        regions = [("spine", "rib", "sternum")[min(int(_u(g) * 3), 2)] for _ in range(n_lesions)]
        specs = [(r, _u(g, 8.0, 30.0), _contrast(p, r, g)) for r in regions]
    elif kind == "hot_liver":
        low = lv_lowest_point(p)
        gap = _u(g, 0.0, 5.0)
        p = dataclasses.replace(p, liver_uptake=_u(g, 1.0, 2.0), liver_dome_mm=p.heart_centre_mm[2] - low[2] + gap)
    elif kind == "heart":
        p, variant = _heart_variant(p, g)
    if kind == "implant" and variant == "prosthesis":
        p = dataclasses.replace(p, breast_ap_mm=1.3 * p.breast_ap_mm)

    ph = render_patient(p, shape, voxel_size_mm, center_mm)
    act, mu = ph["activity"].double(), ph["mu"].double()
    body = mu > 0
    implant = torch.zeros(shape, dtype=torch.bool, device="cpu")
    if kind == "implant":
        x, y, z = _grid(shape, voxel_size_mm, center_mm)
        a, b = p.body_lateral_mm, p.body_ap_mm
        if variant == "pacemaker":
            rad = (_u(g, 20.0, 35.0), _u(g, 4.0, 8.0), _u(g, 18.0, 30.0))
            side = 1.0 if _u(g) < 0.7 else -1.0  # usually left
            cx = side * _u(g, 0.3, 0.5) * a
            ys = -b * math.sqrt(max(0.0, 1 - (cx / a) ** 2))
            c = (cx, ys + rad[1] + 6.0, p.heart_centre_mm[2] + _u(g, 60.0, 110.0))
            mu_imp = _u(g, 0.6, 2.0)
            implant = (_ellipsoid(x, y, z, c, rad) < 1) & body
        else:
            ys = -b * math.sqrt(1 - 0.4**2) + 0.2 * p.breast_ap_mm
            rad = (0.7 * p.breast_lateral_mm, 0.7 * p.breast_ap_mm, 0.7 * p.breast_vertical_mm)
            cz = p.heart_centre_mm[2] + p.breast_z_mm
            mu_imp = _u(g, 0.12, 0.30)
            for sgn in (-1.0, 1.0):
                implant |= (_ellipsoid(x, y, z, (sgn * 0.4 * a, ys, cz), rad) < 1) & body
        mu[implant] = mu_imp
        act[implant] = 0.0

    lesions: list[dict] = []
    placed: list[tuple[tuple[float, ...], float]] = []
    if kind == "gut":
        low = lv_lowest_point(p)
        d, contrast, gap = _u(g, 15.0, 30.0), _u(g, 1.0, 2.5), _u(g, 0.0, 5.0)
        placed.append(((low[0] + _u(g, -10.0, 10.0), low[1] + _u(g, -10.0, 10.0), low[2] - gap - d / 2), d))
        specs_done = [("gut", d, contrast)]
    else:
        specs_done = []
        for region, d, contrast in specs:
            got = _place(p, region, d, g, [(c, dd / 2) for c, dd in placed])
            if got is not None:
                placed.append(got)
                specs_done.append((region, got[1], contrast))
    for (c, d), (region, _, contrast) in zip(placed, specs_done):
        f = _sphere_fraction(shape, voxel_size_mm, center_mm, c, d / 2) * body
        mask = (f >= 0.5) & body
        cv = _centre_voxel(shape, voxel_size_mm, center_mm, c)
        if cv is not None and bool(body[cv]):
            mask[cv] = True
        act = (1 - f) * act + f * contrast
        if region == "lung":
            mu[mask] = torch.clamp(mu[mask], min=MU_WATER_140KEV)
        elif region in ("spine", "rib", "sternum"):
            mu[mask] = MU_BONE_140KEV
        lesions.append({"mask": mask, "diameter_mm": float(d), "centre_mm": tuple(float(v) for v in c), "region": region,
                        "contrast": float(contrast), "background": _background(p, region)})
    return {"activity": act.float(), "mu": mu.float(), "myocardium": ph["myocardium"], "defect": ph["defect"],
            "lesions": lesions, "implant": implant, "variant": variant, "patient": p}
