"""The 17-segment polar map (bull's-eye) of the left ventricle and the summed-score rule: the clinical read-out of a
myocardial-perfusion SPECT study, used to score reconstructions on the task a cardiologist performs.

Segmentation follows the AHA standard ("Standardized myocardial segmentation and nomenclature for tomographic
imaging of the heart", Cerqueira et al., Circulation 2002): along the long axis the ventricle is split into an apical
cap (segment 17) and basal, mid and apical thirds of the rest; the basal and mid rings have six 60° segments
(anterior, anteroseptal, inferoseptal, inferior, inferolateral, anterolateral: 1–6 and 7–12) and the apical ring four
90° segments (anterior, septal, inferior, lateral: 13–16), the anterior segments centred on the anterior direction.

Geometry comes from a myocardium mask (for simulated studies the phantom's; a reader's manual reorientation in a
clinic), so that every reconstruction of a study is read on the same segments: the long axis and centre from
:func:`~monai_diffrecon.data.cardiac_views.lv_axes` (base → apex); the inferior wall is the diaphragmatic one, so the
anterior direction is the superior direction (+Z of the LPS voxel frame) projected on the short-axis plane, and
septal is the patient's right (−X) side of it. A segment's value is the mean of the volume over the
mask voxels in it; a polar map is expressed in percent of its hottest segment.

Scores (the summed-score rule on percent of peak uptake): ≥ 70 % → 0 (normal), 60–70 → 1, 50–60 → 2, 40–50 → 3,
< 40 → 4; the summed score (sum over the 17 segments) is the study's defect decision variable. Defect detectability over
a cohort is the AUC of that variable between studies with and without a defect (Mann–Whitney, ties count ½).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from monai_diffrecon.errors import InvalidValueError, ShapeError

__all__ = ["SCORE_THRESHOLDS", "SEGMENT_NAMES", "aha17_labels", "auc", "bullseye_rgb", "draw_bullseye", "polar_map", "read_polar_maps",
           "segment_scores", "summed_score"]

SEGMENT_NAMES = (
    "basal anterior", "basal anteroseptal", "basal inferoseptal", "basal inferior", "basal inferolateral", "basal anterolateral",
    "mid anterior", "mid anteroseptal", "mid inferoseptal", "mid inferior", "mid inferolateral", "mid anterolateral",
    "apical anterior", "apical septal", "apical inferior", "apical lateral", "apex",
)
SCORE_THRESHOLDS = (70.0, 60.0, 50.0, 40.0)  # percent of peak: at or above the first → 0, below the last → 4
APEX_FRACTION = 0.15  # the apical cap: the apical-most 15 % of the ventricle's length


def aha17_labels(myocardium: torch.Tensor, centre: torch.Tensor | None = None, axis: torch.Tensor | None = None) -> torch.Tensor:
    """``(X, Y, Z)`` int64 labels, 0 outside ``myocardium`` and 1–17 the AHA segment of each myocardial voxel.

    Args:
        myocardium: ``(X, Y, Z)`` bool mask of the left-ventricular wall (voxel frame X left, Y posterior, Z superior).
        centre, axis: the ventricle's centre and base → apex unit vector in voxel coordinates (default: estimated from
            the mask by :func:`~monai_diffrecon.data.cardiac_views.lv_axes`).
    """
    if myocardium.ndim != 3:
        raise ShapeError(f"myocardium: expected (X, Y, Z), got {tuple(myocardium.shape)}")
    m = myocardium.detach().bool().cpu()
    if int(m.sum()) < 17:
        raise InvalidValueError(f"myocardium: {int(m.sum())} voxels, too few for 17 segments")
    if centre is None or axis is None:
        from monai_diffrecon.data.cardiac_views import lv_axes

        c_est, a_est = lv_axes(m.double())
        centre = c_est if centre is None else centre
        axis = a_est if axis is None else axis
    c = centre.detach().double().cpu()
    a = axis.detach().double().cpu()
    a = a / a.norm()
    up = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64, device="cpu")
    ant = up - (up @ a) * a  # the wall opposite the diaphragmatic (inferior) one: +Z without its long-axis component
    if float(ant.norm()) < 1e-6:
        raise InvalidValueError("axis: the long axis is vertical; the anterior/inferior walls are undefined")
    ant = ant / ant.norm()
    sep = torch.linalg.cross(a, ant)
    if float(sep[0]) > 0:  # septal = towards the patient's right (−X)
        sep = -sep
    pts = m.nonzero().double() - c
    s = pts @ a  # along the long axis, towards the apex
    theta = torch.rad2deg(torch.atan2(pts @ sep, pts @ ant)) % 360.0  # 0 anterior, 90 septal, 180 inferior, 270 lateral
    lo, hi = float(s.min()), float(s.max())
    cap = hi - APEX_FRACTION * (hi - lo)
    third = (cap - lo) / 3
    six = (((theta + 30.0) % 360.0) // 60.0).long()  # 0..5: anterior, anteroseptal, inferoseptal, inferior, inferolateral, anterolateral
    four = (((theta + 45.0) % 360.0) // 90.0).long()  # 0..3: anterior, septal, inferior, lateral
    lab = torch.where(s < lo + third, 1 + six, torch.where(s < lo + 2 * third, 7 + six, 13 + four))
    lab = torch.where(s >= cap, torch.full_like(lab, 17), lab)
    out = torch.zeros(m.shape, dtype=torch.int64, device="cpu")
    out[m] = lab
    return out


def polar_map(volume: torch.Tensor, labels: torch.Tensor, normalise: bool = True) -> np.ndarray:
    """The 17 segment means of ``volume`` over ``labels`` (:func:`aha17_labels`), in percent of the hottest segment if
    ``normalise``. A segment without voxels is NaN."""
    if volume.shape != labels.shape:
        raise ShapeError(f"volume {tuple(volume.shape)} and labels {tuple(labels.shape)} differ")
    v = volume.detach().double().cpu().reshape(-1)
    lab = labels.detach().cpu().reshape(-1)
    sums = torch.zeros(18, dtype=torch.float64, device="cpu").index_add_(0, lab, v)
    counts = torch.zeros(18, dtype=torch.float64, device="cpu").index_add_(0, lab, torch.ones_like(v))
    means = (sums[1:] / counts[1:]).numpy()
    means[counts[1:].numpy() == 0] = np.nan
    if normalise:
        peak = np.nanmax(means)
        means = 100.0 * means / peak if peak > 0 else np.full_like(means, np.nan)
    return means


def segment_scores(percent: Sequence[float]) -> np.ndarray:
    """0–4 score of each segment's percent of peak uptake (module doc)."""
    p = np.asarray(percent, dtype=float)
    return sum((p < t).astype(int) for t in SCORE_THRESHOLDS)


def summed_score(percent: Sequence[float]) -> int:
    """Sum of the 17 segment scores (0 = normal perfusion everywhere, 68 = no uptake)."""
    return int(segment_scores(percent).sum())


def auc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """Area under the ROC curve of a decision variable that is larger for positives (Mann–Whitney; ties count ½)."""
    pos, neg = np.asarray(positives, float), np.asarray(negatives, float)
    if pos.size == 0 or neg.size == 0:
        raise InvalidValueError(f"auc: needs positives and negatives, got {pos.size} and {neg.size}")
    return float(((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (pos.size * neg.size))


def draw_bullseye(ax, percent: Sequence[float], title: str = "", vmin: float = 0.0, vmax: float = 100.0, cmap: str = "inferno",
                  numbers: bool = False, fontsize: float = 6):
    """Draw a 17-segment bull's-eye of ``percent`` on a matplotlib axis (anterior up, septum left; apex in the
    centre), each segment labelled with its value (and its AHA number above it with ``numbers``). Returns the last
    patch (for a colour bar)."""
    from matplotlib import colormaps, colors
    from matplotlib.patches import Circle, Wedge

    p = np.asarray(percent, float)
    norm, cmap_ = colors.Normalize(vmin, vmax), colormaps[cmap]
    rings = ((3.0, 2.0, range(6), 60.0), (2.0, 1.0, range(6, 12), 60.0), (1.0, 0.5, range(12, 16), 90.0))
    patch = None
    for r_out, r_in, segs, width in rings:
        for k, seg in enumerate(segs):
            centre = 90.0 + k * width  # anterior at 12 o'clock, then counter-clockwise to the septum on the left
            patch = Wedge((0, 0), r_out, centre - width / 2, centre + width / 2, width=r_out - r_in,
                          facecolor=cmap_(norm(p[seg])) if math.isfinite(p[seg]) else "0.5", edgecolor="white", lw=0.8)
            ax.add_patch(patch)
            rc = (r_out + r_in) / 2
            ax.text(rc * math.cos(math.radians(centre)), rc * math.sin(math.radians(centre)), _label(seg, p[seg], numbers),
                    ha="center", va="center", fontsize=fontsize, color="white" if not p[seg] >= 60 else "black")
    ax.add_patch(Circle((0, 0), 0.5, facecolor=cmap_(norm(p[16])) if math.isfinite(p[16]) else "0.5", edgecolor="white", lw=0.8))
    ax.text(0, 0, _label(16, p[16], numbers), ha="center", va="center", fontsize=fontsize,
            color="white" if not p[16] >= 60 else "black")
    ax.set_xlim(-3.1, 3.1)
    ax.set_ylim(-3.1, 3.1)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=7)
    return patch


def _label(seg: int, value: float, numbers: bool) -> str:
    v = f"{value:.0f}" if math.isfinite(value) else "–"
    return f"#{seg + 1}\n{v}" if numbers else v


def read_polar_maps(volumes: dict[str, torch.Tensor], labels: torch.Tensor) -> dict[str, dict]:
    """The read-out of several reconstructions of one study on the same segments ``labels`` (:func:`aha17_labels`).

    Returns:
        ``{name: {"segments": [{"number": 1–17, "name", "percent": % of that map's hottest segment, "score": 0–4}],
        "summed_score": int}}``; a segment without voxels has percent and score ``None`` and does not count in the
        summed score.
    """
    out = {}
    for name, vol in volumes.items():
        pm = polar_map(vol, labels)
        sc = segment_scores(np.nan_to_num(pm, nan=100.0))
        segs = [{"number": i + 1, "name": SEGMENT_NAMES[i], "percent": None if not math.isfinite(pm[i]) else round(float(pm[i]), 2),
                 "score": None if not math.isfinite(pm[i]) else int(sc[i])} for i in range(17)]
        out[name] = {"segments": segs, "summed_score": int(sum(s["score"] for s in segs if s["score"] is not None))}
    return out


def bullseye_rgb(maps: dict[str, Sequence[float]], title: str = "", dpi: int = 110) -> np.ndarray:
    """``(H, W, 3)`` uint8 picture of one bull's-eye per entry of ``maps`` (``{name: 17 values in % of peak}``), side
    by side on one 0–100 % colour scale with a colour bar, each segment labelled with its AHA number and value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import cm, colors

    n = max(1, len(maps))
    fig, axes = plt.subplots(1, n, figsize=(3.0 * n + 0.6, 3.4 if title else 3.1), squeeze=False)
    for ax, (name, pm) in zip(axes.flat, maps.items()):
        draw_bullseye(ax, pm, name, numbers=True, fontsize=6.5)
        ax.title.set_fontsize(9)
    fig.colorbar(cm.ScalarMappable(colors.Normalize(0, 100), "inferno"), ax=list(axes.flat), fraction=0.03, pad=0.02,
                 label="% of peak")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return rgb
