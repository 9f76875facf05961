"""``diffrecon simulate {spect,mri,natural,satellite}``: example inputs in the formats the bundles read.

Every simulator writes through a staged folder (complete or absent) and only uses data that ships offline:

* ``spect`` — DICOM studies (NM TOMO projections + CT series) of the cardiac phantom with the truth as ``truth.npy``
  (:func:`~monai_diffrecon.workflows.spect.simulated_studies`, held-out seeds 30 000+);
* ``mri`` — fastMRI-style HDF5 files of held-out MNI152-based slices, 8 coils, R = 4 with ``reconstruction_rss``
  (:func:`~monai_diffrecon.workflows.mri.simulated_kspace_files`, seeds 60 000+);
* ``natural`` — held-out scikit-image photographs (never used for training; central square at 128², the size the
  bundles are evaluated at — a diffusion prior step at 512² costs ≈ 100× more on a CPU), one folder per image with
  ``truth.png`` and three measurements: ``blurred.png`` (camera-shake kernel ``kernel.npy``/``kernel.png``, σ = 0.02),
  ``noisy.png`` (σ = 0.05) and ``lowres.png`` (4× :class:`~monai_diffrecon.physics.Downsample`, σ = 0.02);
* ``satellite`` — simulated scenes: ``cloudy.tif`` (4 bands, DN), ``sar.tif`` (VV, VH in dB), ``clear.tif``
  (reference) and ``preview.png`` per scene. The three rasters are GeoTIFFs georeferenced like a Sentinel-2 10 m tile
  (WGS 84 / UTM zone 33N, EPSG:32633, upper-left corner of tile T33UUP at E 399 960 m, N 5 900 040 m; scene ``i``
  is the ``i``-th block of ``size`` pixels east of it), so the bundle's output can be checked to keep them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.io.staging import staged_directory

__all__ = ["SIMULATORS", "simulate"]

SIMULATORS = ("spect", "mri", "natural", "satellite")


def _natural(out: Path, n: int, seed: int, sigma: float = 0.02, size: int = 128, denoise_sigma: float = 0.05) -> list[Path]:
    from monai_diffrecon.data.natural import SKIMAGE_TEST, load_skimage, motion_blur_kernel
    from monai_diffrecon.physics import Blur, Downsample
    from monai_diffrecon.workflows.natural import write_png

    files = []
    for i in range(n):
        name = SKIMAGE_TEST[i % len(SKIMAGE_TEST)]
        g = torch.Generator().manual_seed(seed + i)
        x = load_skimage(name)[None]
        side = min(x.shape[-2:])  # the central square, area-resampled to `size` (as benchmarks/natural.py evaluates)
        top, left = (x.shape[-2] - side) // 2, (x.shape[-1] - side) // 2
        x = torch.nn.functional.interpolate(x[..., top:top + side, left:left + side], size=(size, size), mode="area").clamp(0, 1)
        k = motion_blur_kernel(64, 0.5, g)
        y = Blur(k)(x) + sigma * torch.randn(x.shape, generator=g, device="cpu")
        noisy = x + denoise_sigma * torch.randn(x.shape, generator=g, device="cpu")
        low = Downsample(4)(x)
        low = low + sigma * torch.randn(low.shape, generator=g, device="cpu")
        d = out / f"image_{i:03d}_{name}"
        d.mkdir(parents=True)
        write_png(d / "blurred.png", y[0, 0].numpy())
        write_png(d / "noisy.png", noisy[0, 0].numpy())
        write_png(d / "lowres.png", low[0, 0].numpy())
        write_png(d / "truth.png", x[0, 0].numpy())
        write_png(d / "kernel.png", (k / k.max()).numpy())
        np.save(d / "kernel.npy", k.numpy())
        files.append(d)
    return files


#: Sentinel-2 tile T33UUP (UTM zone 33N): EPSG code and the upper-left corner of the tile, metres
S2_TILE = {"epsg": 32633, "easting": 399_960.0, "northing": 5_900_040.0, "pixel_m": 10.0}


def _satellite(out: Path, n: int, seed: int, size: int = 128) -> list[Path]:
    import tifffile

    from monai_diffrecon.data.preview import preview_satellite
    from monai_diffrecon.data.satellite_sim import satellite_scene
    from monai_diffrecon.io.rasters import utm_geotags

    files = []
    for i in range(n):
        s = satellite_scene(size, torch.Generator().manual_seed(seed + i))
        d = out / f"scene_{i:03d}"
        d.mkdir(parents=True)
        east = S2_TILE["easting"] + i * size * S2_TILE["pixel_m"]  # scenes side by side along the tile's top row
        geo = {"photometric": "minisblack", "planarconfig": "separate",
               "extratags": utm_geotags(S2_TILE["epsg"], east, S2_TILE["northing"], S2_TILE["pixel_m"])}
        dn = {k: s[k].round().clamp(0, 10000).to(torch.int32).numpy().astype(np.uint16) for k in ("cloudy", "clear")}
        tifffile.imwrite(d / "cloudy.tif", dn["cloudy"], **geo)
        tifffile.imwrite(d / "clear.tif", dn["clear"], **geo)
        tifffile.imwrite(d / "sar.tif", s["sar"].numpy().astype(np.float32), **geo)
        preview_satellite(s, d / "preview.png")
        files.append(d)
    return files


def simulate(kind: str, output: str | Path, n: int = 2, seed: int | None = None, progress: bool = True, overwrite: bool = False) -> list[str]:
    """Write ``n`` example inputs of ``kind`` into the folder ``output``; returns the study paths. ``output`` follows the
    output rule of :mod:`monai_diffrecon.io.staging` (a non-empty folder only with ``overwrite`` and only if we wrote it)
    and is written through one staging folder."""
    if kind not in SIMULATORS:
        raise InvalidValueError(f"simulate: one of {', '.join(SIMULATORS)}, got {kind!r}")
    if n < 1:
        raise InvalidValueError(f"simulate: n must be ≥ 1, got {n}")
    out = Path(output)
    with staged_directory(out, overwrite) as tmp:
        if kind == "spect":
            from monai_diffrecon.workflows.spect import simulated_studies

            made = [Path(it["case"]) for it in simulated_studies(tmp, n, seed=seed, progress=progress)]
        elif kind == "mri":
            from monai_diffrecon.workflows.mri import simulated_kspace_files

            made = [Path(it["kspace"]) for it in simulated_kspace_files(tmp, n, seed=seed, progress=progress)]
        else:
            fn = _natural if kind == "natural" else _satellite
            from monai_diffrecon.evaluation.splits import seed_base

            made = fn(tmp, n, seed_base("natural_patches" if kind == "natural" else "satellite", "test") if seed is None else seed)
        names = [p.relative_to(tmp) for p in made]
    return [str(out / nm) for nm in names]
