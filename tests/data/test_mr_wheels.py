"""Real MR training anatomy from wheels (monai_diffrecon.data.mr_wheels) and the varied v2 MRI cohorts: found without
downloads, disjoint from the held-out real slices, deterministic, and padded to one coil count."""

from __future__ import annotations

import numpy as np
import torch

from monai_diffrecon.data.mr_wheels import wheel_mr_slices
from monai_diffrecon.data.mri_sim import real_mr_slices, wheel_training_slices
from monai_diffrecon.training.mri_cohort import MAX_COILS, build_mri_cohort, cached_mri_cohort, varied_setting


def test_wheel_slices_are_real_and_not_the_held_out_ones():
    found = wheel_mr_slices()
    sources = {n for n, _ in found}
    assert {"matplotlib", "nibabel"} <= sources  # base dependencies always ship these
    assert len(found) >= 25 and all(a.ndim == 2 and min(a.shape) >= 64 and 0 <= a.min() and a.max() <= 1 for _, a in found)
    held = [img.abs().numpy() for _, img in real_mr_slices()]
    for _, a in found:
        for h in held:
            if h.shape == a.shape:
                assert np.corrcoef(a.ravel(), (h / h.max()).ravel())[0, 1] < 0.99


def test_wheel_training_slices_are_deterministic_augmented_complex_images():
    a = wheel_training_slices(3, 48, seed=5)
    b = wheel_training_slices(3, 48, seed=5)
    assert a.shape == (3, 48, 48) and a.is_complex() and torch.equal(a, b)
    assert torch.allclose(a.abs().amax(dim=(1, 2)), torch.ones(3, dtype=a.real.dtype))
    assert not torch.equal(a, wheel_training_slices(3, 48, seed=6))


def test_varied_cohort_pads_coils_and_mixes_in_real_slices(tmp_path):
    settings = [varied_setting(40_000 + i) for i in range(40)]
    assert {s["mask_type"] for s in settings} == {"random", "equispaced"}
    assert min(s["coils"] for s in settings) >= 4 and max(s["coils"] for s in settings) <= MAX_COILS
    assert len({s["coils"] for s in settings}) > 4
    d = cached_mri_cohort(tmp_path / "c.pt", 4, "train", size=64, varied=True, progress=False)
    assert d["kspace"].shape == (4, MAX_COILS, 64, 64) and d["maps"].shape == (4, MAX_COILS, 64, 64)
    assert d["meta"]["varied"] and d["meta"]["wheel_slices"]["nibabel"] >= 24
    used = (d["maps"].abs().sum(dim=(2, 3)) > 0).sum(1)
    assert used.tolist() == [varied_setting(d["meta"]["seed"] + i)["coils"] for i in range(4)]
    # v1 cohorts keep their cache key (no 'varied' in their meta)
    p = build_mri_cohort(tmp_path / "v1.pt", 2, "train", size=64, progress=False)
    assert "varied" not in torch.load(p, weights_only=True)["meta"]
