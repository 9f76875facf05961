"""Cloud-removal metrics in the SEN12MS-CR conventions (values in [0, 1]): PSNR, SSIM (MONAI, per band averaged),
SAM — the mean spectral angle between predicted and reference pixel spectra, in degrees — and MAE."""

from __future__ import annotations

import math

import torch

__all__ = ["spectral_angle_deg", "cloud_removal_metrics"]


def spectral_angle_deg(pred: torch.Tensor, ref: torch.Tensor, eps: float = 1e-8) -> float:
    """Mean over pixels of ``arccos(⟨p, r⟩ / (‖p‖‖r‖))`` in degrees; ``(B, C, H, W)`` with the bands along C."""
    num = (pred * ref).sum(dim=1)
    den = pred.norm(dim=1) * ref.norm(dim=1)
    cos = (num / den.clamp_min(eps)).clamp(-1.0, 1.0)
    return float(torch.rad2deg(torch.arccos(cos)).mean())


def cloud_removal_metrics(pred: torch.Tensor, ref: torch.Tensor) -> dict:
    """``{"psnr", "ssim", "sam_deg", "mae"}`` of ``pred`` vs ``ref`` (``(B, C, H, W)`` in [0, 1])."""
    from monai.metrics import SSIMMetric

    pred, ref = pred.float().clamp(0, 1), ref.float()
    mse = float((pred - ref).pow(2).mean())
    ssim = float(SSIMMetric(spatial_dims=2, data_range=1.0)(pred, ref).mean())
    return {"psnr": 10 * math.log10(1.0 / max(mse, 1e-12)), "ssim": ssim, "sam_deg": spectral_angle_deg(pred, ref),
            "mae": float((pred - ref).abs().mean())}
