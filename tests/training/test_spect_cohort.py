"""The SPECT v2 training cohort (issue 23, item 1): the target is the full-dose, full-view reconstruction of the same
acquisition (the phantom target stays as a labelled option), scatter enters as the TEW estimate re-estimated from the
thinned windows at low dose, several acquisition modes of one phantom share its acquisition and reference, and a cached
cohort built with other settings is rebuilt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.modalities.spect import condition_channels, full_dose_reference, spect_scale
from monai_diffrecon.training.spect_cohort import (CONDITION, acquire_phantom, build_cohort, cached_cohort,
                                                   low_count_acquisition, simulate_volume)

SMALL = dict(size=16, voxel_mm=24.0, views=12)


@pytest.fixture(scope="module")
def acq():
    return acquire_phantom(123, **SMALL)


def test_reference_target_is_the_full_dose_reconstruction_at_the_examples_dose(acq):
    ref = full_dose_reference(acq["projector"], acq["counts"], acq["additive"])
    v = simulate_volume(123, acquisition=acq, reference=ref, mode="lowdose", dose=0.1, init_iterations=1, init_subsets=2)
    assert v["cond"].shape == (16, condition_channels(**CONDITION), 16, 16) and v["target"].shape == (16, 1, 16, 16)
    expected = (2 * ref * 0.1 / v["scale"] - 1)[0].permute(3, 0, 1, 2)
    assert torch.allclose(v["target"].float(), expected.float(), atol=2e-3 * float(expected.abs().max()))
    # computed internally when not given: the same reference
    v2 = simulate_volume(123, **SMALL, mode="lowdose", dose=0.1, init_iterations=1, init_subsets=2)
    assert torch.equal(v2["target"], v["target"])
    ph = simulate_volume(123, **SMALL, mode="lowdose", dose=0.1, init_iterations=1, init_subsets=2, target="phantom")
    assert torch.allclose(ph["target"].float(), (2 * acq["activity"] * 0.1 / ph["scale"] - 1).permute(2, 0, 1)[:, None].float(),
                          atol=2e-3 * float(ph["target"].float().abs().max()))
    with pytest.raises(InvalidValueError):
        simulate_volume(123, **SMALL, target="truth")


def test_scatter_is_re_estimated_from_the_thinned_windows(acq):
    assert acq["scatter_method"] == "tew" and acq["additive"] is not None
    low = low_count_acquisition(acq, "lowdose", 0.1, generator=torch.Generator().manual_seed(0))
    ratio = float(low["additive"].sum() / acq["additive"].sum())
    assert 0.07 < ratio < 0.13 and not torch.allclose(low["additive"], 0.1 * acq["additive"])
    few = low_count_acquisition(acq, "fewview", kept_views=3, generator=torch.Generator().manual_seed(0))
    assert few["counts"].shape[2] == few["additive"].shape[2] == few["projector"].num_views == 3
    none = acquire_phantom(123, **SMALL, scatter="none")
    assert none["additive"] is None and low_count_acquisition(none, "lowdose", 0.1)["additive"] is None


def test_cohort_shares_phantoms_and_is_rebuilt_when_settings_change(tmp_path):
    kw = dict(**SMALL, init_iterations=1, init_subsets=2, examples_per_phantom=2)
    data = cached_cohort(tmp_path / "c.pt", 3, "train", progress=False, **kw)
    assert [m["seed"] for m in data["meta"]][0] == [m["seed"] for m in data["meta"]][1] != data["meta"][2]["seed"]
    assert data["cond"].shape[0] == 3 * 16 and data["settings"]["target"] == "reference"
    again = cached_cohort(tmp_path / "c.pt", 3, "train", progress=False, **kw)
    assert torch.equal(again["target"], data["target"])
    other = cached_cohort(tmp_path / "c.pt", 3, "train", progress=False, **{**kw, "target": "phantom"})
    assert other["settings"]["target"] == "phantom" and not torch.equal(other["target"], data["target"])
    with pytest.raises(InvalidValueError):
        build_cohort(tmp_path / "d.pt", 1, "train", progress=False, examples_per_phantom=0)


def test_bundle_network_matches_the_cohorts_condition():
    cfg = json.loads((Path(__file__).resolve().parents[2] / "bundles" / "spect_cardiac_diffusion" / "configs" / "train.json").read_text())
    assert cfg["network_def"]["cond_channels"] == condition_channels(**CONDITION)
    assert cfg["target"] == "reference" and cfg["trainer_config"]["prediction"] == "edm"
