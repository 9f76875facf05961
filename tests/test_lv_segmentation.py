"""Automatic LV segmentation and short-axis geometry (issue 23, item 4): checked against the phantom's own myocardium
on a random phantom (with a defect) and on a noisy OSEM reconstruction of a simulated full-dose study."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from monai_diffrecon.data.cardiac_views import lv_axes
from monai_diffrecon.data.spect_phantom import cardiac_phantom
from monai_diffrecon.errors import InvalidValueError, ShapeError
from monai_diffrecon.metrics.lv_segmentation import dice, segment_lv
from monai_diffrecon.metrics.polar_map import aha17_labels, polar_map
from monai_diffrecon.physics.blur import Blur, gaussian_kernel


def _angle_deg(a: torch.Tensor, b: torch.Tensor) -> float:
    return math.degrees(math.acos(max(-1.0, min(1.0, float(a.double() @ b.double())))))


def _compare(volume: torch.Tensor, myocardium: torch.Tensor, voxel_mm: float):
    """(Dice, angle between the auto and the reference long axes in degrees, mean |Δ| of the 17 polar-map values in
    % of peak read on ``volume`` with the auto vs the phantom geometry, the segmentation)."""
    seg = segment_lv(volume, voxel_mm)
    assert seg["ok"], seg["reason"]
    _, ref_axis = lv_axes(myocardium.double())
    auto = polar_map(volume, aha17_labels(seg["myocardium"], seg["centre"], seg["axis"]))
    ref = polar_map(volume, aha17_labels(myocardium))
    return dice(seg["myocardium"], myocardium), _angle_deg(seg["axis"], ref_axis), float(np.nanmean(np.abs(auto - ref))), seg


@pytest.fixture(scope="module")
def osem_study():
    from monai_diffrecon.training.spect_cohort import SEED_BASE, simulate_volume

    torch.set_num_threads(1)
    v = simulate_volume(SEED_BASE["test"] + 14, mode="full")  # a study with a perfusion defect
    return v["x_init"][0, 0], v["myocardium"]


@pytest.mark.parametrize("defect", [False, True])
def test_random_phantom_segmentation_matches_the_phantom_myocardium(defect):
    ph = cardiac_phantom((64,) * 3, 6.0, defect=defect, generator=torch.Generator().manual_seed(3))
    blurred = Blur(gaussian_kernel((1.0,) * 3, size=(7,) * 3, dtype=torch.float64))(ph["activity"].double()[None, None])[0, 0]
    d, angle, dpm, seg = _compare(blurred, ph["myocardium"], 6.0)
    assert d >= 0.6 and angle <= 10.0 and dpm <= 8.0, (d, angle, dpm, seg["flags"])
    assert seg["myocardium"].dtype == torch.bool and seg["myocardium"].shape == (64, 64, 64)
    assert abs(float(seg["axis"].norm()) - 1) < 1e-9


def test_osem_reconstruction_segmentation_matches_the_phantom_myocardium(osem_study):
    x, myo = osem_study
    d, angle, dpm, _ = _compare(x, myo, 6.0)
    assert d >= 0.6 and angle <= 15.0 and dpm <= 10.0, (d, angle, dpm)


def test_segmentation_is_deterministic_and_finer_grids_work():
    ph = cardiac_phantom((64,) * 3, 6.0, defect=True, generator=torch.Generator().manual_seed(5))
    a, b = segment_lv(ph["activity"], 6.0), segment_lv(ph["activity"].clone(), 6.0)
    assert torch.equal(a["myocardium"], b["myocardium"]) and torch.equal(a["axis"], b["axis"])
    fine = cardiac_phantom((96,) * 3, 4.0, defect=True, generator=torch.Generator().manual_seed(5))  # 384 mm FOV
    d, angle, _, _ = _compare(fine["activity"], fine["myocardium"], 4.0)
    assert d >= 0.6 and angle <= 10.0, (d, angle)


def test_no_plausible_ventricle_is_reported_not_raised():
    g = torch.Generator().manual_seed(0)
    solid = torch.zeros(32, 32, 32)
    solid[8:24, 8:24, 8:24] = 1.0  # a solid block (liver-like): not hollow
    for vol in (torch.zeros(32, 32, 32), solid, torch.rand(32, 32, 32, generator=g)):
        seg = segment_lv(vol, 6.0)
        assert not seg["ok"] and seg["reason"] and not seg["myocardium"].any() and seg["axis"] is None


def test_bad_inputs_get_typed_errors():
    with pytest.raises(ShapeError):
        segment_lv(torch.zeros(8, 8), 6.0)
    with pytest.raises(InvalidValueError):
        segment_lv(torch.zeros(8, 8, 8), -1.0)
    with pytest.raises(InvalidValueError):
        segment_lv(torch.full((8, 8, 8), float("nan")), 6.0)
    with pytest.raises(ShapeError):
        dice(torch.zeros(2, 2, dtype=torch.bool), torch.zeros(3, 3, dtype=torch.bool))
    assert dice(torch.tensor([1, 1, 0, 0]).bool(), torch.tensor([1, 0, 1, 0]).bool()) == 0.5
