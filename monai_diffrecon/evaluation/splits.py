"""The one registry of data splits: which seeds (simulated data) and which images or slices (real data that ships in
wheels) are training, validation and test, for every modality. Simulators, cohort builders, ``diffrecon simulate``,
the bundles' evaluate configs and the benchmarks take their numbers from here; ``tests/test_splits.py`` proves that
the three splits are disjoint for every bundle at the sizes its configs use.

* ``SEEDS[modality][split]`` — a half-open ``range`` of generator seeds; case ``i`` of a split uses
  ``seeds(modality, split, n)[i]`` (a stride, e.g. 7 for SPECT, keeps the seed + 1 a phantom also draws inside).
  SPECT has two more held-out splits (:data:`EXTRA_SPLITS`): ``"test_wide"`` (patients of the wider family,
  ``cardiac_phantom(family="wide")``) and ``"test_oof"`` (:func:`~monai_diffrecon.data.spect_lesions.out_of_family_phantom`).
* Real data: the MRI anatomy is split by axial blocks of the MNI152 template
  (:func:`~monai_diffrecon.data.mri_sim.mni_split_slices`); the natural photographs by name
  (:data:`~monai_diffrecon.data.natural.SKIMAGE_TRAIN` / ``SKIMAGE_TEST``). The natural *validation* split draws
  other patches and kernels from the training photographs (tuning on training images, never on a test image).
"""

from __future__ import annotations

from monai_diffrecon.errors import InvalidValueError

__all__ = ["EXTRA_SPLITS", "SEEDS", "SPLITS", "STRIDE", "seed_base", "seeds"]

SPLITS = ("train", "val", "test")
EXTRA_SPLITS = {"spect": ("test_wide", "test_oof")}  # held-out splits beyond SPLITS, per modality

SEEDS: dict[str, dict[str, range]] = {
    # cardiac SPECT phantoms and acquisitions (training cohort, validation and held-out studies)
    # test_wide: the wider held-out patient family, test_oof: out-of-family phantoms (issue 23; own seeds, so neither
    # repeats a training or test patient's draws)
    "spect": {"train": range(10_000, 20_000), "val": range(20_000, 30_000), "test": range(30_000, 40_000),
              "test_wide": range(80_000, 85_000), "test_oof": range(85_000, 90_000)},
    # MRI coil/mask/noise draws (the anatomy is split by MNI axial block, see module doc)
    "mri": {"train": range(40_000, 50_000), "val": range(50_000, 60_000), "test": range(60_000, 70_000)},
    # natural photographs: patch positions and blur kernels; test = noise and kernels of the held-out photographs
    "natural_patches": {"train": range(100_000, 110_000), "val": range(600_000, 610_000), "test": range(70_000, 80_000)},
    "natural_kernels": {"train": range(110_000, 120_000), "val": range(610_000, 620_000), "test": range(70_000, 80_000)},
    # simulated Sentinel-2 / Sentinel-1 scenes
    "satellite": {"train": range(90_000, 190_000), "val": range(190_000, 290_000), "test": range(290_000, 390_000)},
    # random CT phantoms (monai_diffrecon.data.ct_phantom.foam_phantom) and their sinogram noise, for the TV study
    "ct": {"train": range(400_000, 410_000), "val": range(410_000, 420_000), "test": range(420_000, 430_000)},
}
STRIDE = {"spect": 7}  # seeds per case (SPECT draws seed and seed + 1)


def seed_base(modality: str, split: str) -> int:
    """The first seed of ``split`` for ``modality``."""
    try:
        return SEEDS[modality][split].start
    except KeyError:
        known = sorted(SEEDS[modality]) if modality in SEEDS else SPLITS
        raise InvalidValueError(f"splits: no {split!r} split for {modality!r} (modalities {sorted(SEEDS)}, splits {known})") from None


def seeds(modality: str, split: str, n: int) -> list[int]:
    """The seeds of the first ``n`` cases of ``split``; raises if ``n`` cases would leave the split's range."""
    base, stride = seed_base(modality, split), STRIDE.get(modality, 1)
    out = [base + stride * i for i in range(n)]
    r = SEEDS[modality][split]
    if out and out[-1] + stride - 1 >= r.stop:
        raise InvalidValueError(f"splits: {n} {split} cases of {modality} would run past the split's seeds {r}")
    return out
