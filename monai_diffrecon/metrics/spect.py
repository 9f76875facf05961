"""Image-quality metrics for myocardial-perfusion SPECT (volumes ``(X, Y, Z)`` in the same units as the truth).

* heart mask: the connected region of the (lightly smoothed) truth above half its maximum that contains the maximum
  (the myocardium), dilated by ``margin`` voxels — the region clinicians read;
* NRMSE ``‖x − t‖/‖t‖``, PSNR (peak = max of t) and 3D SSIM (scikit-image, on the mask's bounding box) inside it;
* defect contrast ``(mean normal myocardium − mean defect)/mean normal myocardium`` and defect contrast-to-noise
  ``(mean normal − mean defect)/std normal``, given the myocardium and defect masks;
* lesion recovery: the lesion-to-myocardium ratio of a reconstruction relative to the truth's (out-of-family
  phantoms of :mod:`monai_diffrecon.data.spect_lesions`).

The mask and the SSIM run in scipy / scikit-image, so they work on CPU copies; inputs may live on any device.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from monai_diffrecon.errors import InvalidValueError, ShapeError

__all__ = ["defect_metrics", "heart_mask", "lesion_recovery", "volume_metrics"]


def heart_mask(truth: torch.Tensor, margin: int = 2) -> torch.Tensor:
    from scipy import ndimage

    t = truth.detach().double().cpu().numpy()
    sm = ndimage.gaussian_filter(t, 0.7)
    lab, _ = ndimage.label(sm > 0.5 * sm.max())
    core = lab == lab[np.unravel_index(int(np.argmax(sm)), sm.shape)]
    return torch.from_numpy(ndimage.binary_dilation(core, iterations=margin)).to(truth.device)


def volume_metrics(x: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor | None = None) -> dict:
    from skimage.metrics import structural_similarity

    m = (heart_mask(truth) if mask is None else mask).cpu()
    xx, tt = x.detach().double().cpu(), truth.detach().double().cpu()
    err = xx[m] - tt[m]
    nrmse = float(err.norm() / tt[m].norm().clamp_min(1e-12))
    peak = float(tt[m].max())
    mse = float((err**2).mean())
    psnr = 10 * math.log10(peak**2 / mse) if mse > 0 else float("inf")
    nz = m.nonzero()
    lo, hi = nz.min(0).values, nz.max(0).values + 1
    crop = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    ssim = float(structural_similarity(tt[crop].numpy(), xx[crop].numpy(), data_range=peak, win_size=min(7, *[int(b - a) for a, b in zip(lo, hi)]) // 2 * 2 + 1 if min(int(b - a) for a, b in zip(lo, hi)) >= 3 else 3))
    return {"nrmse_heart": nrmse, "psnr_heart": psnr, "ssim_heart": ssim}


def defect_metrics(x: torch.Tensor, myocardium: torch.Tensor, defect: torch.Tensor) -> dict:
    defect = defect.to(x.device)
    normal = myocardium.to(x.device) & ~defect
    if not bool(defect.any()) or not bool(normal.any()):
        return {"defect_contrast": float("nan"), "defect_cnr": float("nan")}
    xn, xd = x[normal].double(), x[defect].double()
    contrast = float((xn.mean() - xd.mean()) / xn.mean().clamp_min(1e-12))
    cnr = float((xn.mean() - xd.mean()) / xn.std().clamp_min(1e-12))
    return {"defect_contrast": contrast, "defect_cnr": cnr}


def lesion_recovery(recon: torch.Tensor, phantom: dict, lesion: dict | torch.Tensor) -> float:
    """Lesion-to-myocardium recovery of a reconstruction relative to the truth (issue 23, out-of-family target).

    ``(mean_lesion(recon) / mean_myo(recon)) / (mean_lesion(truth) / mean_myo(truth))`` with the truth
    ``phantom["activity"]`` and the myocardium the normal LV wall (``phantom["myocardium"]`` minus
    ``phantom["defect"]`` and minus the lesion). 1 is perfect, < 1 a washed-out (or erased) lesion, > 1 one made
    hotter than it is; the ratio does not depend on the reconstruction's scale (counts, activity, …).

    Args:
        recon: ``(X, Y, Z)`` reconstruction (any non-negative units), on the phantom's grid.
        phantom: a phantom dict (:func:`~monai_diffrecon.data.spect_lesions.out_of_family_phantom`,
            :func:`~monai_diffrecon.data.cardiac_phantom`): ``"activity"`` and ``"myocardium"`` (``(X, Y, Z)``),
            optionally ``"defect"``.
        lesion: one of ``phantom["lesions"]`` (a dict with ``"mask"``) or an ``(X, Y, Z)`` bool mask.

    Raises:
        ShapeError: shapes differ. InvalidValueError: empty lesion or myocardium, non-finite values, or a
        non-positive mean where a ratio needs it.
    """
    mask = lesion["mask"] if isinstance(lesion, dict) else lesion
    truth = phantom["activity"]
    for name, t in (("recon", recon), ("lesion mask", mask), ("phantom['myocardium']", phantom["myocardium"])):
        if tuple(t.shape) != tuple(truth.shape):
            raise ShapeError(f"{name}: expected shape {tuple(truth.shape)} (the phantom's grid), got {tuple(t.shape)}")
    mask = mask.cpu().bool()
    myo = phantom["myocardium"].cpu().bool() & ~mask
    if "defect" in phantom:
        myo &= ~phantom["defect"].cpu().bool()
    if not bool(mask.any()):
        raise InvalidValueError("lesion: empty mask (the lesion has no voxel on this grid)")
    if not bool(myo.any()):
        raise InvalidValueError("phantom['myocardium']: no normal myocardium voxel outside the lesion and defect")
    x, t = recon.detach().double().cpu(), truth.detach().double().cpu()
    if not bool(torch.isfinite(x).all()):
        raise InvalidValueError("recon: contains NaN or Inf")
    xm, tm = float(x[myo].mean()), float(t[myo].mean())
    tl = float(t[mask].mean())
    if xm <= 0 or tm <= 0 or tl <= 0:
        raise InvalidValueError(f"recon: non-positive mean in the myocardium ({xm:.3g}) or truth means ({tm:.3g}, {tl:.3g})")
    return float(x[mask].mean()) / xm / (tl / tm)
