"""Satellite cloud-removal workflow behind ``satellite_cloud_removal``: GeoTIFF/NumPy in → GeoTIFF + PNG out.

A case is a folder (as ``diffrecon simulate satellite`` writes) with ``cloudy.tif`` (or ``.npy``; 4 bands B2, B3, B4,
B8 as Sentinel-2 DN 0–10000, band-first or band-last), ``sar.tif`` (or ``.npy``; VV, VH σ⁰ in dB) and optionally
``clear.tif`` (reference, metrics only). Inputs go through the SEN12MS-CR preprocessing
(:func:`~monai_diffrecon.modalities.satellite.sen12ms_normalize`) — so real SEN12MS-CR triplets load the same way — and
the sampler gets ``y = concat(cloudy, SAR)``. Output per case through one staged folder: ``clear_pred.tif`` (DN,
uint16, one page of 4 bands, planar), ``preview.png`` (cloudy RGB / prediction / reference / SAR VV) and
``metrics.json`` (PSNR, SSIM, SAM, MAE against ``clear.tif``, also for the cloudy input).

Georeferencing: ``clear_pred.tif`` is on the cloudy raster's pixel grid, so it carries the cloudy GeoTIFF's tags
unchanged (:data:`~monai_diffrecon.io.rasters.GEOTIFF_TAGS`: pixel scale, tiepoints, model transformation, GeoKey
directory, double and ASCII parameters) and opens in QGIS/GDAL at the input's place and CRS. A ``.npy`` (or plain TIFF)
cloudy input has no georeferencing; the output is then a plain TIFF.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from monai_diffrecon.modalities.satellite import sen12ms_normalize
from monai_diffrecon.errors import InvalidValueError, ShapeError
from monai_diffrecon.io.rasters import read_array, read_geotags
from monai_diffrecon.io.shape_guard import check_spatial_size, spatial_divisor
from monai_diffrecon.workflows.base import CaseWorkflow

__all__ = ["SatelliteCloudRemoval", "satellite_datalist", "read_raster"]


def _raster_file(folder: Path, stem: str) -> Path | None:
    """``stem.tif``/``.tiff``/``.npy`` in ``folder`` (first found), or ``None``."""
    return next((f for f in (folder / f"{stem}{e}" for e in (".tif", ".tiff", ".npy")) if f.is_file()), None)


def read_raster(folder: Path, stem: str, bands: int, required: bool = True) -> torch.Tensor | None:
    """``stem.tif``/``.tiff``/``.npy`` in ``folder`` as float32 ``(bands, H, W)``; typed errors name the file."""
    f = _raster_file(folder, stem)
    if f is None:
        if required:
            raise InvalidValueError(f"{folder}: no {stem}.tif/.tiff/.npy")
        return None
    a = read_array(f)
    if a.ndim == 3 and a.shape[0] != bands and a.shape[-1] == bands:
        a = np.moveaxis(a, -1, 0)  # band-last GeoTIFFs
    if a.ndim != 3 or a.shape[0] != bands:
        raise InvalidValueError(f"{f}: expected {bands} bands (band-first or band-last), got shape {a.shape}")
    if a.size == 0:
        raise ShapeError(f"{f}: empty raster, shape {a.shape}")
    t = torch.from_numpy(np.asarray(a, dtype=np.float32))
    if not bool(torch.isfinite(t).all()):
        raise InvalidValueError(f"{f}: contains NaN or Inf")
    return t


def satellite_datalist(input_dir: str | Path) -> list[dict]:
    """Case folders under ``input_dir`` (or ``input_dir`` itself) holding a ``cloudy`` raster."""
    root = Path(input_dir)
    if not root.exists():
        raise InvalidValueError(f"{root}: input folder not found")
    if not root.is_dir():
        raise InvalidValueError(f"{root}: a file; expected a scene folder holding cloudy.tif (or a folder of scene folders)")
    has = lambda p: any((p / f"cloudy{e}").is_file() for e in (".tif", ".tiff", ".npy"))  # noqa: E731
    cases = [root] if has(root) else sorted(p for p in root.iterdir() if p.is_dir() and has(p))
    return [{"case": str(c)} for c in cases]


class SatelliteCloudRemoval(CaseWorkflow):
    """Args: dataset (:func:`satellite_datalist` items), output_dir, sampler (``sampler(y, None, …)``, e.g.
    :class:`~monai_diffrecon.samplers.DBCR`), num_samples, seed, use_sar (False: the SAR raster is not read)."""

    def __init__(self, dataset, output_dir, sampler, num_samples: int = 1, seed: int = 0, use_sar: bool = True, method: str = "DB-CR",
                 progress: bool = True, input_dir=None, overwrite: bool = False,
                 device=None) -> None:
        super().__init__(dataset, output_dir, progress, input_dir, overwrite, device)
        self.sampler, self.num_samples, self.seed, self.use_sar, self.method = sampler, num_samples, seed, use_sar, method

    def _empty(self) -> Exception:
        return InvalidValueError(f"{self.input_dir or 'the dataset'}: no case folder with a cloudy raster")

    def reconstruct(self, item: dict) -> tuple[dict, dict]:
        from monai_diffrecon.metrics.satellite import cloud_removal_metrics

        t0 = time.perf_counter()
        case = Path(item["case"])
        cloudy_dn = read_raster(case, "cloudy", 4)
        geotags = read_geotags(_raster_file(case, "cloudy"))  # the output is on the cloudy raster's grid
        sar_db = read_raster(case, "sar", 2) if self.use_sar else torch.zeros(2, *cloudy_dn.shape[-2:], device="cpu")
        if sar_db.shape[-2:] != cloudy_dn.shape[-2:]:
            raise InvalidValueError(f"{case}: SAR {tuple(sar_db.shape[-2:])} and optical {tuple(cloudy_dn.shape[-2:])} are not co-registered")
        check_spatial_size(_raster_file(case, "cloudy"), cloudy_dn.shape[-2:], spatial_divisor(self.sampler), "raster")
        ref = read_raster(case, "clear", 4, required=False)  # read (and refused) before the sampler runs
        if ref is not None and ref.shape != cloudy_dn.shape:
            raise ShapeError(f"{_raster_file(case, 'clear')}: reference {tuple(ref.shape)} and cloudy "
                             f"{tuple(cloudy_dn.shape)} differ")
        cloudy, sar = sen12ms_normalize(cloudy_dn, sar_db)
        y = torch.cat([cloudy, sar])[None] if self.use_sar else cloudy[None]
        out = self.sample(y, None, self.seed, self.num_samples)
        pred = out.mean.clamp(0, 1)
        res = {"cloudy": cloudy, "pred": pred[0], "sar": sar, "std": out.std[0], "geotags": geotags}
        metrics = {"case": case.name, "seconds": round(time.perf_counter() - t0, 2), "nfe": out.nfe, "num_samples": self.num_samples}
        if ref is not None:
            ref, _ = sen12ms_normalize(ref, sar_db)
            res["ref"] = ref
            metrics.update({f"ours_{k}": v for k, v in cloud_removal_metrics(pred, ref[None]).items()})
            metrics.update({f"cloudy_{k}": v for k, v in cloud_removal_metrics(cloudy[None], ref[None]).items()})
        return res, metrics

    def write(self, out_dir: Path, results: dict, metrics: dict) -> None:
        import tifffile

        from monai_diffrecon.data.preview import save_panels

        def rgb(x):
            return np.clip(x[[2, 1, 0]].numpy().transpose(1, 2, 0) / 0.3, 0, 1)

        dn = (results["pred"] * 10000).round().clamp(0, 10000).numpy().astype(np.uint16)
        tifffile.imwrite(out_dir / "clear_pred.tif", dn, photometric="minisblack", planarconfig="separate",
                         extratags=results.get("geotags") or ())
        panels = [("cloudy RGB", rgb(results["cloudy"]), None), (f"{self.method} RGB", rgb(results["pred"]), None)]
        if "ref" in results:
            panels.append(("reference RGB", rgb(results["ref"]), None))
        panels.append(("SAR VV", results["sar"][0].numpy(), "gray"))
        title = f"{self.method}: NFE {metrics['nfe']}, {metrics['seconds']} s"
        if "ours_psnr" in metrics:
            title += f" — PSNR {metrics['ours_psnr']:.2f} dB, SAM {metrics['ours_sam_deg']:.2f}° (cloudy {metrics['cloudy_psnr']:.2f} dB)"
        save_panels(panels, out_dir / "preview.png", ncols=len(panels), title=title)
        (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
