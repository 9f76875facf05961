"""Satellite workflow (GeoTIFF in → GeoTIFF + PNG out) on simulated scenes with a tiny random DB-CR network; SAM on
known spectra; bad rasters as typed errors with nothing written."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import tifffile
import torch

from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.metrics.satellite import spectral_angle_deg
from monai_diffrecon.modalities.satellite import DBCRPrior
from monai_diffrecon.networks.dbcr import dbcr_network
from monai_diffrecon.samplers import DBCR
from monai_diffrecon.simulate import simulate
from monai_diffrecon.workflows.satellite import SatelliteCloudRemoval, satellite_datalist
from tests.conftest import case_dirs


def test_sam_of_known_spectra():
    a = torch.tensor([1.0, 0.0, 0.0, 0.0]).reshape(1, 4, 1, 1).expand(1, 4, 2, 2)
    b = torch.tensor([1.0, 1.0, 0.0, 0.0]).reshape(1, 4, 1, 1).expand(1, 4, 2, 2)
    assert spectral_angle_deg(a, b) == pytest.approx(45.0, abs=1e-4)
    assert spectral_angle_deg(b, 3 * b) == pytest.approx(0.0, abs=1e-2)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    out = tmp_path_factory.mktemp("sat") / "scenes"
    simulate("satellite", out, n=2, progress=False)
    return out


@pytest.mark.parametrize("use_sar", [True, False])
def test_cloud_removal_writes_geotiff_png_metrics(scenes, tmp_path, use_sar):
    torch.manual_seed(0)
    smp = DBCR(DBCRPrior(dbcr_network(size="tiny", use_sar=use_sar).eval()), num_steps=2)
    out = tmp_path / "out"
    m = SatelliteCloudRemoval(satellite_datalist(scenes), out, smp, use_sar=use_sar, progress=False).run()
    assert len(m) == 2 and all(k in m[0] for k in ("ours_psnr", "ours_sam_deg", "ours_mae", "cloudy_psnr")) and m[0]["nfe"] == 2
    case = case_dirs(out)[0]
    pred = tifffile.imread(case / "clear_pred.tif")
    assert pred.shape == (4, 128, 128) and pred.dtype == np.uint16
    assert (case / "preview.png").is_file() and json.loads((out / "summary.json").read_text())["n_cases"] == 2


@pytest.mark.parametrize("corruption, match", [("bands", "expected 4 bands"), ("nan", "NaN"), ("missing_sar", "no sar"),
                                               ("misregistered", "co-registered")])
def test_bad_rasters_are_typed_errors(scenes, tmp_path, corruption, match):
    import shutil

    case = tmp_path / "in" / "scene"
    shutil.copytree(scenes / "scene_000", case)
    if corruption == "bands":
        tifffile.imwrite(case / "cloudy.tif", np.zeros((3, 128, 128), np.uint16))
    elif corruption == "nan":
        a = tifffile.imread(case / "sar.tif")
        a[0, 0, 0] = math.nan
        tifffile.imwrite(case / "sar.tif", a)
    elif corruption == "missing_sar":
        (case / "sar.tif").unlink()
    elif corruption == "misregistered":
        tifffile.imwrite(case / "sar.tif", np.zeros((2, 64, 64), np.float32))
    smp = DBCR(DBCRPrior(dbcr_network(size="tiny").eval()))
    with pytest.raises(InvalidValueError, match=match):
        SatelliteCloudRemoval(satellite_datalist(case.parent), tmp_path / "o", smp, progress=False).run()
    assert not (tmp_path / "o").exists()  # the whole output is staged: no case folder, no metrics.json, nothing
