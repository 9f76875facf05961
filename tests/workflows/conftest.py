"""Shared fixtures of the workflow tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_diffrecon.physics import Blur, Downsample, gaussian_kernel
from monai_diffrecon.workflows.natural import write_png


@pytest.fixture()
def cases(tmp_path):
    """Two natural-image case folders (32² random texture) with every task's measurement: ``blurred.png`` +
    ``kernel.npy`` (9 × 9 Gaussian), ``noisy.png``, ``lowres.png`` (4× Downsample) and ``truth.png``."""
    g = torch.Generator().manual_seed(0)
    root = tmp_path / "in"
    for i in range(2):
        d = root / f"image_{i}"
        d.mkdir(parents=True)
        x = (0.5 + 0.2 * torch.randn(1, 1, 32, 32, generator=g)).clamp(0, 1)
        k = gaussian_kernel(1.2, 9)
        write_png(d / "truth.png", x[0, 0])
        write_png(d / "blurred.png", (Blur(k)(x) + 0.01 * torch.randn(x.shape, generator=g)).clamp(0, 1)[0, 0])
        write_png(d / "noisy.png", (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)[0, 0])
        write_png(d / "lowres.png", Downsample(4)(x).clamp(0, 1)[0, 0])
        np.save(d / "kernel.npy", k.numpy())
    return root
