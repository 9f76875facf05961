"""The split registry (issue 21, item 1): train, validation and test are disjoint for every modality and bundle — as
seed ranges, at the case counts the bundles' configs use, and for the real data (MNI axial blocks, photograph names)."""

from __future__ import annotations

import itertools
import json

import pytest

from monai_diffrecon.bundles import BUNDLES_DIR, list_bundles
from monai_diffrecon.data.mri_sim import mni_split_slices
from monai_diffrecon.data.natural import SKIMAGE_TEST, SKIMAGE_TRAIN
from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.evaluation.splits import SEEDS, SPLITS, STRIDE, seed_base, seeds

# bundle -> (modality of its seeds, {split: config key holding that split's case count, in which config})
USES = {
    "spect_cardiac_diffusion": ("spect", {"train": ("train", "n_volumes"), "val": ("train", "n_val_volumes"), "test": ("evaluate", "n_studies")}),
    "mri_multicoil_msm": ("mri", {"train": ("train", "n_slices"), "test": ("evaluate", "n_slices")}),
    "mri_multicoil_selfdb": ("mri", {"train": ("train", "n_slices"), "test": ("evaluate", "n_slices")}),
    "mri_multicoil_unfolding": ("mri", {"train": ("train", "n_slices"), "test": ("evaluate", "n_slices")}),
    "satellite_cloud_removal": ("satellite", {"train": ("train", "n_scenes"), "test": ("evaluate", "n_scenes")}),
    "natural_blind_deblur": ("natural_patches", {"test": ("evaluate", "n_images")}),
    "natural_reld": ("natural_patches", {"test": ("evaluate", "n_images")}),
    "natural_unfolding_deblur": ("natural_patches", {"test": ("evaluate", "n_images")}),
}


def test_every_bundle_is_covered():
    assert sorted(USES) == list_bundles()


@pytest.mark.parametrize("modality", sorted(SEEDS))
def test_seed_ranges_are_disjoint(modality):
    for a, b in itertools.combinations(SPLITS, 2):
        ra, rb = SEEDS[modality][a], SEEDS[modality][b]
        assert ra.stop <= rb.start or rb.stop <= ra.start, (modality, a, b)


@pytest.mark.parametrize("bundle", sorted(USES))
def test_each_bundle_uses_disjoint_seeds_at_its_configured_sizes(bundle):
    modality, counts = USES[bundle]
    used = {}
    for split, (config, key) in counts.items():
        n = json.loads((BUNDLES_DIR / bundle / "configs" / f"{config}.json").read_text())[key]
        stride = STRIDE.get(modality, 1)
        used[split] = {s + k for s in seeds(modality, split, n) for k in range(stride)}  # raises if n leaves the range
    for a, b in itertools.combinations(used, 2):
        assert not used[a] & used[b], (bundle, a, b)


def test_evaluate_configs_take_the_test_split():
    """No evaluate config names its own seed: the simulators' defaults are the registry's test split."""
    for b in list_bundles():
        text = (BUNDLES_DIR / b / "configs" / "evaluate.json").read_text()
        assert '"seed"' not in text, b


def test_real_data_splits_are_disjoint():
    mri = {s: set(mni_split_slices(s)) for s in SPLITS}
    for a, b in itertools.combinations(SPLITS, 2):
        assert not mri[a] & mri[b]
        gap = min(abs(i - j) for i in mri[a] for j in mri[b])
        assert gap >= 4, (a, b, gap)  # the 3-slice guard on each side of a block edge
    assert not set(SKIMAGE_TRAIN) & set(SKIMAGE_TEST)  # natural validation = other patches of training photographs


def test_registry_refuses_a_split_overflow():
    r = SEEDS["spect"]["test"]
    with pytest.raises(InvalidValueError, match="run past"):
        seeds("spect", "test", len(r) // STRIDE["spect"] + 1)
    with pytest.raises(InvalidValueError):
        seed_base("spect", "holdout")
