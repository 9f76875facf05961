"""Real MR anatomy for *training*, read from files that ship inside installed wheels (nothing is downloaded).

Sources (each skipped when its package is not installed; the ``train`` extra installs them):

* ``matplotlib`` — ``mpl-data/sample_data/s1045.ima.gz``: one 256² sagittal T1-like head slice;
* ``nibabel`` — ``tests/data/example4d.nii.gz``: a 128 × 96 × 24 BOLD EPI volume (first frame), axial slices;
* ``heudiconv`` (Apache-2.0; found with ``importlib.util.find_spec``, never imported) — ``tests/data/b0dwiForFmap``:
  Siemens multiband diffusion volumes of one adult, 81 axial 152 × 150 slices each, stored as mosaics — the b = 5
  s/mm² (T2-weighted) volume ``+00001`` (``+00002`` repeats it; the b = 1500 ``+00003`` is mostly noise and skipped);
  and ``tests/data/axasc35.dcm``: a second subject's BOLD EPI, 35 axial 64² slices.

None of these subjects is in the held-out real evaluation set (pydicom's ``MR_small.dcm`` and its re-encodings,
dipy's T1 coronal slice and b0 slices; :func:`~monai_diffrecon.data.mri_sim.real_mr_slices`) nor is it the MNI152
template. Slices with less than 10 % of pixels above 0.1 × the 99.5th percentile are dropped (no tissue); each is
normalised to its 99.5th percentile and clipped to [0, 1].
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

__all__ = ["wheel_mr_slices", "WHEEL_SOURCES"]


def _pkg_dir(pkg: str) -> Path | None:
    spec = importlib.util.find_spec(pkg)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _norm(a) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return np.clip(a / (np.percentile(a, 99.5) + 1e-8), 0, 1)


def _has_tissue(s: np.ndarray) -> bool:
    return float((s > 0.1).mean()) >= 0.10


def _unmosaic(frame: np.ndarray, n: int) -> np.ndarray:
    """A Siemens mosaic (``ceil(√n)`` tiles per side) → ``(n, h, w)``."""
    k = int(np.ceil(np.sqrt(n)))
    h, w = frame.shape[0] // k, frame.shape[1] // k
    return frame[:k * h, :k * w].reshape(k, h, k, w).transpose(0, 2, 1, 3).reshape(k * k, h, w)[:n]


def _matplotlib() -> list[np.ndarray]:
    import gzip

    d = _pkg_dir("matplotlib")
    f = None if d is None else d / "mpl-data" / "sample_data" / "s1045.ima.gz"
    if f is None or not f.is_file():
        return []
    return [_norm(np.frombuffer(gzip.decompress(f.read_bytes()), dtype=np.uint16).reshape(256, 256))]


def _nibabel() -> list[np.ndarray]:
    d = _pkg_dir("nibabel")
    f = None if d is None else d / "tests" / "data" / "example4d.nii.gz"
    if f is None or not f.is_file():
        return []
    import nibabel as nib

    v = np.asarray(nib.load(str(f)).dataobj)[..., 0]
    return [s for s in (_norm(v[:, :, k]) for k in range(v.shape[2])) if _has_tissue(s)]


def _heudiconv() -> list[np.ndarray]:
    d = _pkg_dir("heudiconv")
    if d is None:
        return []
    import warnings

    import pydicom

    data = d / "tests" / "data"
    files = [data / "b0dwiForFmap" / "b0dwi_for_fmap+00001.dcm", data / "axasc35.dcm"]
    out = []
    for f in files:
        if not f.is_file():
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(str(f))
            n = int(ds[0x0019, 0x100A].value)  # Siemens NumberOfImagesInMosaic
            vol = _unmosaic(ds.pixel_array, n)
        out += [s for s in map(_norm, vol) if _has_tissue(s)]
    return out


WHEEL_SOURCES = {"matplotlib": _matplotlib, "nibabel": _nibabel, "heudiconv": _heudiconv}


def wheel_mr_slices() -> list[tuple[str, np.ndarray]]:
    """Every training slice found, ``[(source, magnitude (H, W) in [0, 1])]`` (module doc)."""
    return [(name, s) for name, fn in WHEEL_SOURCES.items() for s in fn()]
