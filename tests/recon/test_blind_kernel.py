"""The coarse-to-fine kernel estimate: a valid kernel (non-negative, sum 1, centred) closer to a motion-blur kernel than
a delta, from a training photograph (never a test image)."""

from __future__ import annotations

import pytest
import torch

from monai_diffrecon.data.natural import load_skimage, motion_blur_kernel
from monai_diffrecon.errors import InvalidValueError, ShapeError
from monai_diffrecon.metrics import kernel_rmse
from monai_diffrecon.physics.blur import Blur
from monai_diffrecon.recon import estimate_kernel
from monai_diffrecon.physics.blur import centroid_shift


def test_estimates_a_motion_kernel():
    img = load_skimage("astronaut")[0, 100:228, 180:308].double()
    k = motion_blur_kernel(32, 0.5, torch.Generator().manual_seed(3)).double()
    g = torch.Generator().manual_seed(0)
    y = Blur(k[None, None])(img[None, None])[0, 0] + 0.01 * torch.randn(img.shape, generator=g, dtype=torch.float64)
    est = estimate_kernel(y, 32)
    assert est.shape == (32, 32) and float(est.min()) >= 0 and float(est.sum()) == pytest.approx(1.0)
    assert centroid_shift(est) == (0, 0)
    delta = torch.zeros(32, 32, dtype=torch.float64)
    delta[16, 16] = 1.0
    assert kernel_rmse(est, k) < 0.6 * kernel_rmse(delta, k)


def test_bad_input():
    with pytest.raises(ShapeError):
        estimate_kernel(torch.zeros(1, 8, 8), 5)
    with pytest.raises(InvalidValueError):
        estimate_kernel(torch.zeros(16, 16), 2)
