"""Scores up to an integer translation: a blind method recovers the image and the kernel only up to a shift
(``y = k * x = (k shifted by s) * (x shifted by −s)``), so blind deblurring is scored after the best integer shift
(|s| ≤ ``max_shift`` along each axis) — the same search for the kernel and for the image (issue protocol of the
Blind-PnPDM evaluation, arXiv 2505.22923, which aligns before scoring).

* :func:`best_shift` — the shift that minimises the MSE between ``est`` shifted and ``ref``, on the central region
  that no tried shift wraps into (circular for kernels, where ``crop=0`` keeps everything);
* :func:`kernel_rmse` — RMSE of two kernels after that shift;
* :func:`aligned_image_metrics` — PSNR and SSIM of an image after that shift, on the central crop.
"""

from __future__ import annotations

import math

import torch

from monai_diffrecon.errors import ShapeError

__all__ = ["best_shift", "kernel_rmse", "aligned_image_metrics"]


def _crop(x: torch.Tensor, c: int) -> torch.Tensor:
    return x[..., c:x.shape[-2] - c, c:x.shape[-1] - c] if c else x


def best_shift(est: torch.Tensor, ref: torch.Tensor, max_shift: int = 8, crop: int = 0) -> tuple[tuple[int, int], float]:
    """``((dy, dx), mse)``: the integer shift of ``est`` (``torch.roll`` on the last two axes, ``(…, H, W)`` real)
    that best matches ``ref`` on the region ``crop`` pixels in from each border, and its MSE there."""
    if est.shape != ref.shape:
        raise ShapeError(f"best_shift: est {tuple(est.shape)} and ref {tuple(ref.shape)} differ")
    if 2 * crop >= min(ref.shape[-2:]):
        raise ShapeError(f"best_shift: crop {crop} leaves nothing of {tuple(ref.shape[-2:])}")
    r, best = _crop(ref, crop), ((0, 0), math.inf)
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            mse = float((_crop(torch.roll(est, (dy, dx), (-2, -1)), crop) - r).pow(2).mean())
            if mse < best[1]:
                best = ((dy, dx), mse)
    return best


def kernel_rmse(est: torch.Tensor, truth: torch.Tensor, max_shift: int = 8) -> float:
    """RMSE between two kernels (both summing to 1) after the best integer shift (module doc)."""
    return math.sqrt(best_shift(est, truth, max_shift)[1])


def aligned_image_metrics(x: torch.Tensor, truth: torch.Tensor, max_shift: int = 8, data_range: float = 1.0) -> dict:
    """``{"psnr_aligned", "ssim_aligned", "shift"}`` of image ``x`` ``(H, W)`` against ``truth`` after the best integer
    shift, both scored on the central crop ``max_shift`` pixels in from each border (where no shift wraps)."""
    from monai.metrics import SSIMMetric

    (dy, dx), mse = best_shift(x, truth, max_shift, crop=max_shift)
    a = _crop(torch.roll(x, (dy, dx), (-2, -1)), max_shift).float()[None, None]
    b = _crop(truth, max_shift).float()[None, None]
    psnr = 10 * math.log10(data_range**2 / max(mse, 1e-20))
    return {"psnr_aligned": psnr, "ssim_aligned": float(SSIMMetric(spatial_dims=2, data_range=data_range)(a, b)), "shift": [dy, dx]}
