"""Raster files without GDAL: guarded ``.npy`` / TIFF reading and GeoTIFF georeferencing with ``tifffile``.

:func:`read_array` reads a ``.npy`` or TIFF file as a real-valued NumPy array or raises a typed error that names the
file (not an array file, truncated, pickled objects, complex or text dtype, empty). It serves the satellite rasters and
the natural-image blur kernels.

A GeoTIFF is a TIFF whose first page carries up to six georeferencing tags (OGC GeoTIFF 1.1,
https://docs.ogc.org/is/19-008r4/19-008r4.html): :data:`GEOTIFF_TAGS`. A raster derived pixel for pixel from a
GeoTIFF (same grid, e.g. a cloud-free prediction of a cloudy scene) keeps its georeferencing when these tags are
copied unchanged, which :func:`read_geotags` + ``tifffile.imwrite(..., extratags=tags)`` does. Rasters without
georeferencing (``.npy`` inputs, plain TIFFs) give no tags, and the output is then a plain TIFF.

Example::

    a = read_array("scene/cloudy.tif")                       # (4, H, W) or (H, W, 4), real dtype
    tags = read_geotags("scene/cloudy.tif")                  # [] for a plain TIFF or a .npy
    tifffile.imwrite("out/clear_pred.tif", pred, photometric="minisblack", planarconfig="separate", extratags=tags)
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from monai_diffrecon.errors import DTypeError, InvalidValueError

__all__ = ["GEOTIFF_TAGS", "read_array", "read_geotags", "utm_geotags"]

#: tag code → (name, TIFF data type code): 12 DOUBLE, 3 SHORT, 2 ASCII
GEOTIFF_TAGS = {
    33550: ("ModelPixelScaleTag", 12),
    33922: ("ModelTiepointTag", 12),
    34264: ("ModelTransformationTag", 12),
    34735: ("GeoKeyDirectoryTag", 3),
    34736: ("GeoDoubleParamsTag", 12),
    34737: ("GeoAsciiParamsTag", 2),
}

NPY_MAGIC = b"\x93NUMPY"


@contextmanager
def _quiet_tifffile():
    """tifffile logs what it cannot parse (``ERROR … invalid page offset``) before it raises; the caller turns the
    exception into one typed error, so the log line is dropped while reading."""
    lg = logging.getLogger("tifffile")
    old = lg.level
    lg.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        lg.setLevel(old)


def _unreadable(path: Path, what: str, e: Exception) -> InvalidValueError:
    return InvalidValueError(f"{path}: not a readable {what} ({type(e).__name__}: {' '.join(str(e).split())[:120]})")


def read_array(path: str | Path) -> np.ndarray:
    """A ``.npy`` file (never unpickled) or a TIFF (all pages stacked, ``tifffile.imread``) as a real-valued array.

    Raises:
        InvalidValueError: naming ``path``: not a ``.npy``/TIFF file, truncated, pickled objects.
        DTypeError: naming ``path``: complex, text or object values (real numbers expected).
    """
    path = Path(path)
    try:
        if path.suffix.lower() == ".npy":
            with open(path, "rb") as fh:
                if fh.read(len(NPY_MAGIC)) != NPY_MAGIC:
                    raise InvalidValueError(f"{path}: not a .npy file (no NumPy header)")
            a = np.load(path, allow_pickle=False)
        else:
            import tifffile

            with _quiet_tifffile():
                a = tifffile.imread(path)
    except InvalidValueError:
        raise
    except Exception as e:  # noqa: BLE001 - whatever numpy/tifffile raise for a damaged file is a bad input
        raise _unreadable(path, "array" if path.suffix.lower() == ".npy" else "TIFF", e) from None
    if a.dtype.kind not in "biuf":
        raise DTypeError(f"{path}: expected real numbers, got dtype {a.dtype}")
    return a


def read_geotags(path: str | Path) -> list[tuple]:
    """The GeoTIFF tags of ``path``'s first page as ``tifffile`` ``extratags`` entries ``(code, dtype, count, value,
    True)`` in code order; ``[]`` if it has none or ``path`` is not a TIFF (``.npy``).

    Raises:
        InvalidValueError: naming ``path``, if the TIFF cannot be read.
    """
    import tifffile

    path = Path(path)
    if path.suffix.lower() not in (".tif", ".tiff"):
        return []
    out = []
    try:
        with _quiet_tifffile(), tifffile.TiffFile(path) as tif:
            tags = tif.pages[0].tags
            for code, (_, dtype) in sorted(GEOTIFF_TAGS.items()):
                if code not in tags:
                    continue
                value = tags[code].value
                if dtype == 2:  # ASCII: tifffile counts the terminating NUL itself
                    out.append((code, dtype, 0, str(value), True))
                else:
                    value = tuple(np.asarray(value).reshape(-1).tolist())  # one number or a sequence
                    out.append((code, dtype, len(value), value, True))
    except Exception as e:  # noqa: BLE001 - any reader failure is a bad input file
        raise _unreadable(path, "TIFF", e) from None
    return out


def utm_geotags(epsg: int, easting: float, northing: float, pixel_m: float = 10.0,
                citation: str | None = None) -> list[tuple]:
    """GeoTIFF tags (``tifffile`` ``extratags``) of a north-up grid in a WGS 84 / UTM projection (``epsg`` 326zz
    north, 327zz south) as a Sentinel-2 tile carries them: the upper-left corner of pixel (0, 0) at
    ``(easting, northing)`` m, square ``pixel_m`` m pixels (10 m: bands B2, B3, B4, B8), pixel-is-area, metres.

    Args:
        epsg: the projected CRS, e.g. ``32633`` (UTM zone 33N).
        easting, northing: map coordinates of the raster's upper-left corner, metres.
        pixel_m: pixel size, metres.
        citation: GTCitationGeoKey text (default ``"WGS 84 / UTM zone <zz><N|S>"``).
    """
    if not (32601 <= epsg <= 32660 or 32701 <= epsg <= 32760):
        raise InvalidValueError(f"epsg: a WGS 84 / UTM code (32601-32660, 32701-32760), got {epsg}")
    if not pixel_m > 0:
        raise InvalidValueError(f"pixel_m: must be > 0, got {pixel_m}")
    ascii_params = (citation or f"WGS 84 / UTM zone {epsg % 100}{'N' if epsg < 32700 else 'S'}") + "|"
    # GeoKeyDirectory: header (version 1, revision 1.0, N keys), then (key, tag location, count, value) sorted by key
    keys = [(1024, 0, 1, 1),  # GTModelTypeGeoKey = ModelTypeProjected
            (1025, 0, 1, 1),  # GTRasterTypeGeoKey = RasterPixelIsArea
            (1026, 34737, len(ascii_params), 0),  # GTCitationGeoKey → GeoAsciiParams[0:len]
            (3072, 0, 1, int(epsg)),  # ProjectedCSTypeGeoKey
            (3076, 0, 1, 9001)]  # ProjLinearUnitsGeoKey = metre
    directory = (1, 1, 0, len(keys)) + tuple(v for k in keys for v in k)
    return [(33550, 12, 3, (float(pixel_m), float(pixel_m), 0.0), True),
            (33922, 12, 6, (0.0, 0.0, 0.0, float(easting), float(northing), 0.0), True),
            (34735, 3, len(directory), directory, True),
            (34737, 2, 0, ascii_params, True)]
