"""The 17-segment polar map and the summed-score rule (issue 21, item 3: SPECT clinical task metrics)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_diffrecon.data.spect_phantom import cardiac_phantom
from monai_diffrecon.errors import InvalidValueError, ShapeError
from monai_diffrecon.metrics.polar_map import SEGMENT_NAMES, aha17_labels, auc, draw_bullseye, polar_map, segment_scores, summed_score

ANTERIOR = [i for i, n in enumerate(SEGMENT_NAMES) if n.endswith(" anterior")]  # basal, mid, apical anterior
INFERIOR = [i for i, n in enumerate(SEGMENT_NAMES) if n.endswith(" inferior")]


@pytest.fixture(scope="module")
def phantoms():
    return cardiac_phantom((64,) * 3, 6.0, defect=False), cardiac_phantom((64,) * 3, 6.0, defect=True)


def test_every_myocardial_voxel_gets_one_of_17_segments_and_none_is_empty(phantoms):
    normal, _ = phantoms
    lab = aha17_labels(normal["myocardium"])
    assert ((lab > 0) == normal["myocardium"]).all()
    counts = np.bincount(lab[normal["myocardium"]].numpy(), minlength=18)[1:]
    assert counts.size == 17 and counts.min() >= 10  # each segment holds a fair share of the wall
    assert counts[16] < counts.sum() / 5  # the apical cap is a cap, not a ring


def test_a_normal_heart_scores_zero_and_the_reference_anterior_defect_lands_in_the_anterior_wall(phantoms):
    normal, defect = phantoms
    pm = polar_map(normal["activity"], aha17_labels(normal["myocardium"]))
    assert np.nanmax(pm) == pytest.approx(100.0) and summed_score(pm) == 0
    pm = polar_map(defect["activity"], aha17_labels(defect["myocardium"]))
    scores = segment_scores(pm)
    assert scores[ANTERIOR[0]] >= 3 and scores[ANTERIOR[1]] >= 3  # 35 % residual uptake: severe
    assert scores[INFERIOR].sum() == 0  # the opposite wall is normal
    assert summed_score(pm) >= 6


def test_segment_scores_follow_the_percent_of_peak_thresholds():
    assert segment_scores([100, 70, 69.9, 60, 55, 45, 39.9]).tolist() == [0, 0, 1, 1, 2, 3, 4]
    assert summed_score([0.0] * 17) == 68


def test_auc_is_the_mann_whitney_statistic_with_ties_counted_half():
    assert auc([3, 4, 5], [0, 1, 2]) == 1.0
    assert auc([0, 1], [2, 3]) == 0.0
    assert auc([1, 1], [1, 1]) == 0.5
    assert auc([2, 0], [1]) == 0.5
    with pytest.raises(InvalidValueError):
        auc([], [1.0])


def test_bad_inputs_get_typed_errors(phantoms):
    normal, _ = phantoms
    with pytest.raises(ShapeError):
        aha17_labels(normal["myocardium"][0])
    with pytest.raises(InvalidValueError):
        aha17_labels(torch.zeros(8, 8, 8, dtype=torch.bool))
    with pytest.raises(ShapeError):
        polar_map(normal["activity"][:-1], aha17_labels(normal["myocardium"]))


def test_the_bullseye_draws_17_segments(phantoms):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _, defect = phantoms
    fig, ax = plt.subplots()
    draw_bullseye(ax, polar_map(defect["activity"], aha17_labels(defect["myocardium"])), "reference defect")
    assert len(ax.patches) == 17
    plt.close(fig)
