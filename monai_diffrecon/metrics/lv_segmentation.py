"""Automatic left-ventricular myocardium segmentation and long-axis estimation from a SPECT perfusion volume, so that
the 17-segment polar map (:mod:`monai_diffrecon.metrics.polar_map`) can be read on a user's study that has no mask.

The method is the classic threshold-and-shape approach of automatic perfusion quantification (e.g. "Automatic
quantification of myocardial perfusion SPECT", Germano et al., J Nucl Med 1995, in a simplified form), deterministic
and free of learned weights:

1. smooth the volume with a Gaussian of 4 mm σ (``scipy.ndimage.gaussian_filter``, σ in voxels = 4 / voxel size);
2. candidates: connected components (26-connectivity) above 50 %, 35 % and 25 % of the volume's maximum (a liver
   hotter than the heart still leaves the heart above the lower levels);
3. the LV is the candidate with the best plausibility score: volume 15–600 mL, hollow (its convex hull adds a
   blood-pool cavity of ≥ 25 % of its volume: the liver and gut are solid), its centre within
   120 mm of the grid centre (cardiac studies are centred on the heart) and not far to the patient's right
   (−X < −60 mm, where the liver is); among plausible candidates the score is the candidate's peak times a Gaussian
   fall-off of its distance from the centre (100 mm scale) times its hollowness, so a hotter but solid liver loses;
4. the myocardium is the component above 50 % of the *heart's* maximum (the peak inside the chosen candidate) that
   holds that peak, restricted to 80 mm around the candidate's centre; short-axis rings with a gap (a perfusion
   defect below the threshold) are completed: in every slab along the long axis whose ring is well defined, voxels
   at the ring's median radius ± its half thickness join the mask, so a defect is sampled rather than left out;
5. long axis (:func:`_long_axis`): the inward normal of the base opening, the largest flat face of the myocardium's
   convex hull (a defect's gap is bridged by the curved hull, so the axis does not tilt towards it), pointing from
   the open base to the closed apex (a large, severe defect is bridged by a flat face too: when the largest face
   would put the apex at an atypical place, a face at least half as large that puts it left/anterior/inferior wins);
   the blood-pool cavity's principal axis as a fallback; centre: the cavity's
   centroid (the voxels the convex hull adds).
6. 2 refinements: the rings are completed around the axis and the axis re-estimated on the completed wall.

Everything is in the voxel frame of the input ``(X, Y, Z)`` = LPS (X patient left, Y posterior, Z superior) with
millimetre voxel sizes; centre and axis are returned in voxel coordinates like
:func:`~monai_diffrecon.data.cardiac_views.lv_axes`. The typical apex direction is left, anterior and inferior
(``(+X, −Y, −Z)``); whether the found axis agrees is reported as a quality flag, not enforced.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from monai_diffrecon.errors import InvalidValueError, ShapeError

__all__ = ["dice", "segment_lv"]

SMOOTH_MM = 4.0
CANDIDATE_LEVELS = tuple(round(0.9 - 0.05 * k, 2) for k in range(14))  # 0.90 … 0.25 of the maximum
MAX_GROWTH = 2.5  # a candidate that grows more than this from one level to the next has merged with an organ
GROWTH_FROM_ML = 60.0  # (checked once it is this large: a partial ring at the top levels may grow faster)
NEAR_MM = 10.0
MYO_ML = (30.0, 400.0)  # plausible myocardium volumes of the final mask (a thresholded, blurred wall)
MAX_POOL_CONTRAST = 0.8  # cavity-to-wall mean ratio above which the 'cavity' is no blood pool
MAX_AXIS_Z = 0.95  # |cos| of the long axis with the body axis above which it is implausible (and AHA-undefined)
MYO_LEVEL = 0.5
VOLUME_ML = (15.0, 600.0)
MIN_HOLLOW = 0.18
MAX_CENTRE_MM = 120.0
MIN_X_MM = -60.0
APEX_TYPICAL = (1.0, -1.0, -1.0)  # left, anterior, inferior in LPS


def _voxel_sizes(voxel_size_mm) -> np.ndarray:
    vs = np.asarray([voxel_size_mm] * 3 if np.isscalar(voxel_size_mm) else list(voxel_size_mm), dtype=np.float64)
    if vs.shape != (3,) or not np.all(np.isfinite(vs)) or np.any(vs <= 0):
        raise InvalidValueError(f"voxel_size_mm: expected a positive size or three, got {voxel_size_mm!r}")
    return vs


def _ball(radius_mm: float, vs: np.ndarray) -> np.ndarray:
    """Boolean ball of ``radius_mm`` on a grid of voxel sizes ``vs`` (mm)."""
    r = np.maximum(1, np.floor(radius_mm / vs)).astype(int)
    g = np.mgrid[-r[0] : r[0] + 1, -r[1] : r[1] + 1, -r[2] : r[2] + 1].astype(np.float64)
    return ((g[0] * vs[0]) ** 2 + (g[1] * vs[1]) ** 2 + (g[2] * vs[2]) ** 2) <= max(radius_mm, float(vs.min())) ** 2


def _cavity(mask: np.ndarray) -> np.ndarray:
    """Voxels inside the convex hull of ``mask`` but not in it (the blood pool of a myocardial cup; a solid organ such
    as the liver leaves only a thin voxelisation shell)."""
    from scipy.spatial import ConvexHull, QhullError

    pts = np.argwhere(mask)
    out = np.zeros(mask.shape, dtype=bool)
    if len(pts) < 8:
        return out
    lo, hi = pts.min(0), pts.max(0) + 1
    box = np.indices(tuple(hi - lo)).reshape(3, -1).T + lo
    try:
        eq = ConvexHull(pts.astype(np.float64)).equations  # (F, 4): n·p + d ≤ 0 inside
    except (QhullError, ValueError):  # flat (coplanar) component: no volume to hold a cavity
        return out
    inside = np.ones(len(box), dtype=bool)
    for chunk in range(0, len(eq), 256):  # bounded memory: (box voxels × 256 facets) at a time
        e = eq[chunk : chunk + 256]
        inside &= ((box @ e[:, :3].T + e[:, 3]) <= 1e-9).all(1)
    out[tuple(box[inside].T)] = True
    return out & ~mask


def dice(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    """Dice overlap ``2|A∩B| / (|A| + |B|)`` of two boolean masks of the same shape (1 when both are empty)."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ShapeError(f"dice: masks {a.shape} and {b.shape} differ")
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def _fail(shape, reason: str) -> dict:
    return {"myocardium": torch.zeros(shape, dtype=torch.bool, device="cpu"), "centre": None, "axis": None, "ok": False, "reason": reason,
            "flags": {}}


def _complete_rings(myo: np.ndarray, c: np.ndarray, a_mm: np.ndarray, vs: np.ndarray) -> np.ndarray:
    """Voxels that close the short-axis rings of ``myo`` around the axis through ``c`` (voxels) along ``a_mm``: in each
    slab one voxel thick along the axis, outside the apical quarter, whose voxels form a ring (median radius ≥ 2× the
    half thickness), every voxel at the median radius ± the half thickness (80 % quantile of |r − median|)."""
    shape = myo.shape
    idx = np.indices(shape, dtype=np.float64).reshape(3, -1).T
    all_mm = (idx - c) * vs
    s_all = all_mm @ a_mm
    r_all = np.linalg.norm(all_mm - s_all[:, None] * a_mm, axis=1)
    step = float(vs.min())
    b_all = np.floor(s_all / step).astype(int)
    inside = myo.reshape(-1)
    s, radial, bins = s_all[inside], r_all[inside], b_all[inside]
    apex_start = s.max() - 0.25 * (s.max() - s.min())  # the apical quarter is closed: no rings there
    add = np.zeros(len(idx), dtype=bool)
    for b in np.unique(bins):
        sel = bins == b
        if sel.sum() < 8 or (b + 0.5) * step > apex_start:
            continue
        r_mid = float(np.median(radial[sel]))
        half = max(float(np.quantile(np.abs(radial[sel] - r_mid), 0.8)), 0.5 * step)
        if r_mid < 2.0 * half:  # a filled disc, not a ring
            continue
        add |= (b_all == b) & (np.abs(r_all - r_mid) <= half)
    return add.reshape(shape) & ~myo


REFINEMENTS = 2
BASE_CONE_DEG = 15.0  # hull facets whose normals lie within this cone of each other form one plane
MIN_BASE_FRACTION = 0.08
TYPICAL_FACE_RATIO = 0.5  # a typical-apex face this large relative to the largest (atypical) face wins  # the base plane's share of the hull's area below which it is not trusted
ELONGATED = 1.4  # cavity variance ratio above which its principal axis is the long axis (fallback)


def _base_plane(myo: np.ndarray, vs: np.ndarray) -> tuple[np.ndarray, float]:
    """``(outward unit normal in mm space, area fraction)`` of the largest planar face of ``myo``'s convex hull.

    The ventricle is a cup open at the base: its hull's biggest flat face is the base opening (a disc of the
    ventricle's diameter), while the curved wall spreads its facet normals over all directions (a sphere puts
    1 − cos 15° ≈ 3.4 % of its area in a 15° cone); a perfusion defect's gap is bridged by the curved hull and does
    not tilt the face. The face is the facet set whose normals lie within 15° of the facet with the most such area."""
    from scipy.spatial import ConvexHull, QhullError

    pts = np.argwhere(myo).astype(np.float64) * vs
    try:
        hull = ConvexHull(pts)
    except (QhullError, ValueError):
        return np.zeros(3), 0.0
    n = hull.equations[:, :3]
    tri = pts[hull.simplices]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    close = (n @ n.T) > math.cos(math.radians(BASE_CONE_DEG))
    score = close.astype(np.float64) @ area
    k = int(np.argmax(score))
    typical = (-n @ np.asarray(APEX_TYPICAL)) > 0  # faces whose inward normal points left/anterior/inferior
    if not typical[k] and typical.any():
        # a large, severe defect is bridged by a flat hull face too; when the largest face would put the apex at an
        # atypical place, a typical face of at least half its area is the base (an atypical heart keeps its largest)
        k2 = int(np.argmax(np.where(typical, score, -1.0)))
        if score[k2] >= TYPICAL_FACE_RATIO * score[k]:
            k = k2
    m = (n * (area * close[k])[:, None]).sum(0)
    return m / np.linalg.norm(m), float(score[k] / area.sum())


def _long_axis(myo: np.ndarray, vs: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """``(centre (3,) voxels, base → apex unit vector (3,) in mm space, how the axis was found)`` of a myocardial cup.

    The centre is the blood-pool cavity's centroid (:func:`_cavity`; the myocardium's if there is no cavity). The axis
    is the inward normal of the base opening (:func:`_base_plane`, "base plane") when that face holds ≥ 8 % of the
    hull's area; otherwise the cavity's principal axis when the cavity is elongated (largest variance ≥ 1.4× the
    second), else the direction from the cavity's centroid to the myocardium's (the wall mass sits towards the closed
    apex), oriented so that the axis line meets the wall at the apex ("cavity" / "offset")."""
    cav = _cavity(myo)
    mpts = np.argwhere(myo).astype(np.float64)
    c_myo = mpts.mean(0)
    c = np.argwhere(cav).astype(np.float64).mean(0) if cav.sum() >= 10 else c_myo
    normal, frac = _base_plane(myo, vs)
    if frac >= MIN_BASE_FRACTION and float(-normal @ ((c_myo - c) * vs)) >= 0:  # the apex side carries the wall mass
        return c, -normal, "base plane"
    if cav.sum() < 10:  # no cavity: the myocardium's own principal axis
        d = (mpts - c) * vs
        a = np.linalg.eigh(d.T @ d / len(d))[1][:, -1]
        offset = np.zeros(3)
    else:
        d = (np.argwhere(cav).astype(np.float64) - c) * vs
        evals, evecs = np.linalg.eigh(d.T @ d / len(d))
        offset = (c_myo - c) * vs
        if evals[-1] >= ELONGATED * evals[-2] or np.linalg.norm(offset) < 1e-6:
            a = evecs[:, -1]
        else:
            a = offset / np.linalg.norm(offset)
    m_mm = (mpts - c) * vs
    s = m_mm @ a
    radial = np.linalg.norm(m_mm - s[:, None] * a, axis=1)
    on_axis = radial <= max(float(vs.max()), 6.0)
    pos, neg = int((on_axis & (s > 0)).sum()), int((on_axis & (s < 0)).sum())
    if pos != neg and max(pos, neg) >= 2 * max(1, min(pos, neg)):
        return c, (a if pos > neg else -a), "cavity"
    return c, (a if float(offset @ a) >= 0 else -a), "offset"


def segment_lv(volume: torch.Tensor, voxel_size_mm: float | Sequence[float]) -> dict:
    """Segment the left-ventricular myocardium of a perfusion SPECT volume and find its long axis (module doc).

    Args:
        volume: ``(X, Y, Z)`` real, non-negative activity (any units; counts per voxel of a reconstruction) in LPS voxel
            axes (X patient left, Y posterior, Z superior).
        voxel_size_mm: voxel size in mm, isotropic (e.g. 6.0, 3.3) or ``(sx, sy, sz)``.

    Returns:
        ``{"myocardium": (X, Y, Z) bool, "centre": (3,) float64 voxel coordinates or None, "axis": (3,) float64 unit
        base → apex vector in voxel coordinates or None, "ok": bool, "reason": str, "flags": dict}``; ``ok`` is False
        with a ``reason`` and an empty mask when no plausible LV is found (never raises for that). ``flags``: quality
        indicators (``volume_ml``, ``hollowness``, ``level`` (the candidate's threshold fraction of the volume's
        maximum), ``ring_completed_voxels``, ``apex_typical`` (the apex points left/anterior/inferior as in most
        patients), ``axis_from`` ("base plane", "cavity" or "offset")).

    Raises:
        ShapeError: ``volume`` is not 3-D. InvalidValueError: a bad voxel size or non-finite values.
    """
    from scipy import ndimage

    if volume.ndim != 3:
        raise ShapeError(f"volume: expected (X, Y, Z), got {tuple(volume.shape)}")
    vs = _voxel_sizes(voxel_size_mm)
    v = volume.detach().double().cpu().numpy()
    if not np.isfinite(v).all():
        raise InvalidValueError("volume: contains NaN or Inf")
    shape = tuple(v.shape)
    v = np.clip(v, 0.0, None)
    if min(shape) < 4 or v.max() <= 0:
        return _fail(shape, "empty or tiny volume: no uptake to segment")
    sm = ndimage.gaussian_filter(v, sigma=SMOOTH_MM / vs, mode="nearest")
    voxel_ml = float(np.prod(vs)) / 1000.0
    grid_centre = (np.asarray(shape, dtype=np.float64) - 1) / 2
    structure = np.ones((3, 3, 3), dtype=bool)

    def plausible(comp: np.ndarray, level: float) -> tuple[float, str]:
        """The candidate's hollowness, or −1 and why it is not a left ventricle."""
        vol_ml = float(comp.sum()) * voxel_ml
        if not VOLUME_ML[0] <= vol_ml <= VOLUME_ML[1]:
            return -1.0, f"{vol_ml:.0f} mL at {level:.2f}"
        centre_mm = (np.argwhere(comp).mean(0) - grid_centre) * vs
        if np.linalg.norm(centre_mm) > MAX_CENTRE_MM or centre_mm[0] < MIN_X_MM:
            return -1.0, f"off-centre at {level:.2f}"
        hollow = float(_cavity(comp).sum()) / float(comp.sum())
        if hollow < MIN_HOLLOW:
            return -1.0, f"solid ({hollow:.2f}) at {level:.2f}"
        return hollow, ""

    # the seed: over all levels, the plausible (hollow, LV-sized, central) component with the best score: its peak,
    # its hollowness (≤ 1), a fall-off with distance from the grid centre (100 mm) and a preference for superior
    # positions (exp(z / 40 mm): the heart sits above the diaphragm, the liver, stomach and gut loops below it)
    seeds, rejected = [], []
    stack = []
    for lv in CANDIDATE_LEVELS:
        labels, n = ndimage.label(sm > lv * sm.max(), structure=structure)
        stack.append(labels)
        for k in range(1, n + 1):
            comp = labels == k
            h, why = plausible(comp, lv)
            if h < 0:
                rejected.append(why)
                continue
            centre_mm = (np.argwhere(comp).mean(0) - grid_centre) * vs
            d_mm = float(np.linalg.norm(centre_mm))
            score = float(sm[comp].max()) * min(h, 1.0) * math.exp(-0.5 * (d_mm / 100.0) ** 2 + centre_mm[2] / 40.0)
            seeds.append((score, len(stack) - 1, k, h))
    if not seeds:
        return _fail(shape, "no plausible left ventricle (hollow, 15-600 mL, near the centre): " + "; ".join(rejected[:6]))
    _, li, k, hollow = max(seeds)
    cand, level = stack[li] == k, CANDIDATE_LEVELS[li]
    seed_at = np.unravel_index(int(np.argmax(np.where(cand, sm, -np.inf))), shape)
    for lj in range(li + 1, len(CANDIDATE_LEVELS)):  # follow it down while it stays plausible (not merged)
        comp = stack[lj] == stack[lj][seed_at]
        h, _ = plausible(comp, CANDIDATE_LEVELS[lj])
        if h < 0 or (comp.sum() * voxel_ml > GROWTH_FROM_ML and comp.sum() > MAX_GROWTH * cand.sum()):
            break
        cand, level, hollow = comp, CANDIDATE_LEVELS[lj], h

    # the myocardium: 50 % of the heart's own maximum, within 10 mm of the candidate (not the organs it touches there)
    heart_peak = float(sm[seed_at])
    near = ndimage.binary_dilation(cand, structure=_ball(NEAR_MM, vs)) if level > MYO_LEVEL * heart_peak / sm.max() else cand
    labels, _ = ndimage.label(near & (sm > MYO_LEVEL * heart_peak), structure=structure)
    myo = labels == labels[seed_at]
    near = ndimage.binary_dilation(myo | _cavity(myo), structure=_ball(NEAR_MM, vs))  # the hull bridges a defect

    # geometry and ring completion, alternated: a defect's gap tilts the first axis; the completed wall corrects it
    full = myo
    for _ in range(REFINEMENTS):
        c, a_mm, apex_from = _long_axis(full, vs)
        add = _complete_rings(myo, c, a_mm, vs) & near
        full = myo | add
    completed = int((full & ~myo).sum())
    myo = full

    vol_ml = float(myo.sum()) * voxel_ml
    if not MYO_ML[0] <= vol_ml <= MYO_ML[1]:
        return _fail(shape, f"implausible myocardium: {vol_ml:.0f} mL (expected {MYO_ML[0]:.0f}-{MYO_ML[1]:.0f} mL)")
    cav = _cavity(myo)
    contrast = float(sm[cav].mean() / sm[myo].mean()) if cav.any() else 1.0
    if contrast > MAX_POOL_CONTRAST:
        return _fail(shape, f"implausible blood pool: cavity at {contrast:.0%} of the wall's mean (a ventricle's is lower)")
    if abs(float(a_mm[2])) > MAX_AXIS_Z:
        return _fail(shape, "implausible long axis: nearly vertical (superior-inferior)")
    a_vox = a_mm / vs
    a_vox = a_vox / np.linalg.norm(a_vox)
    flags = {"volume_ml": round(float(myo.sum()) * voxel_ml, 1), "hollowness": round(hollow, 3), "level": level,
             "ring_completed_voxels": completed, "pool_to_wall": round(contrast, 3), "axis_from": apex_from,
             "apex_typical": bool(float(a_mm @ np.asarray(APEX_TYPICAL)) > 0)}
    return {"myocardium": torch.from_numpy(myo), "centre": torch.from_numpy(c), "axis": torch.from_numpy(a_vox), "ok": True,
            "reason": "", "flags": flags}
