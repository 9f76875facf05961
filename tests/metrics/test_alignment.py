"""Scores up to an integer shift (blind deblurring's protocol): the same search for kernels and images."""

from __future__ import annotations

import torch

from monai_diffrecon.metrics import aligned_image_metrics, best_shift, kernel_rmse
from monai_diffrecon.physics import gaussian_kernel


def test_a_shifted_image_scores_as_the_image_itself():
    g = torch.Generator().manual_seed(0)
    truth = torch.rand(48, 48, generator=g, dtype=torch.float64)
    shifted = torch.roll(truth, (2, -3), (0, 1))
    m = aligned_image_metrics(shifted, truth, max_shift=4)
    assert m["shift"] == [-2, 3] and m["psnr_aligned"] > 150 and m["ssim_aligned"] > 0.999
    noisy = (truth + 0.05 * torch.randn(truth.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    assert abs(aligned_image_metrics(torch.roll(noisy, (1, 1), (0, 1)), truth, 4)["psnr_aligned"]
               - aligned_image_metrics(noisy, truth, 4)["psnr_aligned"]) < 0.05  # same crop, same score


def test_kernel_and_image_use_the_same_shift_rule():
    k = gaussian_kernel(1.5, 15).double()
    assert kernel_rmse(torch.roll(k, (1, -2), (0, 1)), k) < 1e-12
    assert best_shift(torch.roll(k, (1, -2), (0, 1)), k)[0] == (-1, 2)
