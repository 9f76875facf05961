"""Satellite GeoTIFF georeferencing (issue 20, item 9): simulated scenes are georeferenced like a Sentinel-2 10 m tile,
and ``diffrecon run satellite_cloud_removal`` writes ``clear_pred.tif`` with the cloudy input's GeoTIFF tags — codes,
types and values identical — whether the input is our simulated GeoTIFF (pixel scale + tiepoint) or a GDAL-style
band-last one (model transformation + GeoDoubleParams); a ``.npy`` input (no georeferencing) gives a plain TIFF."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import tifffile

from monai_diffrecon.cli import EXIT_OK, main
from monai_diffrecon.io.rasters import GEOTIFF_TAGS, read_geotags
from monai_diffrecon.simulate import S2_TILE, simulate
from tests.conftest import case_dirs


def _tags(path) -> dict:
    """The GeoTIFF tags of the first page, read with tifffile directly: ``{code: (TIFF type, value)}``."""
    with tifffile.TiffFile(path) as tif:
        tags = tif.pages[0].tags
        return {c: (int(tags[c].dtype), tags[c].value) for c in GEOTIFF_TAGS if c in tags}


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    out = tmp_path_factory.mktemp("geo") / "scenes"
    simulate("satellite", out, n=2, progress=False)
    return out


def _run(inp, out) -> None:
    assert main(["run", "satellite_cloud_removal", "--input", str(inp), "--output", str(out), "--quiet"]) == EXIT_OK


def test_simulated_scenes_are_georeferenced_like_a_sentinel2_tile(scenes):
    for i, scene in enumerate(sorted(p for p in scenes.iterdir() if p.is_dir())):
        for name in ("cloudy.tif", "sar.tif", "clear.tif"):
            with tifffile.TiffFile(scene / name) as tif:
                assert tif.is_geotiff and len(tif.pages) == 1  # one page of all bands, as GDAL expects
                geo = tif.geotiff_metadata
            assert int(geo["ProjectedCSTypeGeoKey"]) == S2_TILE["epsg"] == 32633 and int(geo["ProjLinearUnitsGeoKey"]) == 9001
            assert geo["ModelPixelScale"] == [10.0, 10.0, 0.0]
            assert geo["ModelTiepoint"] == [0.0, 0.0, 0.0, S2_TILE["easting"] + i * 128 * 10.0, S2_TILE["northing"], 0.0]
        assert tifffile.imread(scene / "cloudy.tif").shape == (4, 128, 128)


def test_bundle_output_keeps_the_simulated_georeferencing(scenes, tmp_path):
    inp = tmp_path / "in"
    shutil.copytree(scenes / "scene_001", inp / "scene_001")  # one scene; not at the tile's origin
    _run(inp, tmp_path / "out")
    (case,) = case_dirs(tmp_path / "out")
    src, got = _tags(inp / "scene_001" / "cloudy.tif"), _tags(case / "clear_pred.tif")
    assert set(src) == {33550, 33922, 34735, 34737} and got == src
    assert read_geotags(case / "clear_pred.tif") == read_geotags(inp / "scene_001" / "cloudy.tif")
    assert tifffile.imread(case / "clear_pred.tif").shape == (4, 128, 128)


def _gdal_style_scene(d, size: int = 64) -> dict:
    """A band-last, pixel-interleaved GeoTIFF pair as GDAL writes it, georeferenced by a rotated ModelTransformation
    and a geographic CRS whose ellipsoid sits in GeoDoubleParams (all six tag kinds but scale/tiepoint)."""
    rng = np.random.default_rng(0)
    ascii_params = "WGS 84 custom ellipsoid|"
    keys = [(1024, 0, 1, 2), (1025, 0, 1, 1), (2048, 0, 1, 32767), (2049, 34737, len(ascii_params), 0),
            (2057, 34736, 1, 0), (2059, 34736, 1, 1)]  # geographic, pixel-is-area, user-defined, citation, a, 1/f
    directory = (1, 1, 0, len(keys)) + tuple(v for k in keys for v in k)
    transform = (1e-4, 2e-5, 0.0, 14.5, 2e-5, -1e-4, 0.0, 53.2, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)
    extratags = [(34264, 12, 16, transform, True), (34735, 3, len(directory), directory, True),
                 (34736, 12, 2, (6378137.0, 298.257223563), True), (34737, 2, 0, ascii_params, True)]
    d.mkdir(parents=True)
    tifffile.imwrite(d / "cloudy.tif", rng.integers(0, 4000, (size, size, 4)).astype(np.uint16), photometric="minisblack",
                     planarconfig="contig", extratags=extratags)
    tifffile.imwrite(d / "sar.tif", rng.normal(-12, 3, (size, size, 2)).astype(np.float32), photometric="minisblack",
                     planarconfig="contig", extratags=extratags)
    return _tags(d / "cloudy.tif")


def test_gdal_style_band_last_geotiff_keeps_transformation_and_double_params(tmp_path):
    src = _gdal_style_scene(tmp_path / "in" / "tile")
    assert set(src) == {34264, 34735, 34736, 34737}
    _run(tmp_path / "in", tmp_path / "out")
    (case,) = case_dirs(tmp_path / "out")
    assert _tags(case / "clear_pred.tif") == src
    assert tifffile.imread(case / "clear_pred.tif").shape == (4, 64, 64)  # band-first output, whatever the input layout


def test_npy_input_has_no_georeferencing_and_gives_a_plain_tiff(scenes, tmp_path):
    d = tmp_path / "in" / "scene"
    d.mkdir(parents=True)
    for stem in ("cloudy", "sar"):
        np.save(d / f"{stem}.npy", tifffile.imread(scenes / "scene_000" / f"{stem}.tif"))
    _run(tmp_path / "in", tmp_path / "out")
    (case,) = case_dirs(tmp_path / "out")
    assert _tags(case / "clear_pred.tif") == {} and read_geotags(d / "cloudy.npy") == []
