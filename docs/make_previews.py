"""Regenerate the simulator previews in docs/img (referenced from docs/simulators.md).

Usage:  .venv/bin/python docs/make_previews.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from monai_diffrecon.data.mri_sim import mr_phantom, real_mr_slices, simulate_multicoil
from monai_diffrecon.data.natural import SKIMAGE_TRAIN, load_skimage, motion_blur_kernel, random_patches
from monai_diffrecon.data.preview import preview_mri, preview_natural, preview_satellite, preview_spect_study
from monai_diffrecon.data.satellite_sim import satellite_scene
from monai_diffrecon.data.spect_study import simulate_spect_study

IMG = Path(__file__).parent / "img"


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        st = simulate_spect_study(d, seed=1, size=64, voxel_mm=6.0, views=64, total_counts=4e6, defect=True)
        preview_spect_study(st, IMG / "sim_spect_study.png")
    g = torch.Generator().manual_seed(0)
    imgs = torch.stack([mr_phantom(128, g), dict(real_mr_slices(128))["dipy_t1_coronal"]])
    preview_mri(simulate_multicoil(imgs, 8, 4.0, 20, "random", 0.01, g), IMG / "sim_mri_phantom.png", 0)
    preview_mri(simulate_multicoil(imgs, 8, 6.0, 20, "poisson", 0.01, g), IMG / "sim_mri_real_slice.png", 1)
    images = [load_skimage(n) for n in SKIMAGE_TRAIN[:6]]
    kernels = [motion_blur_kernel(64, 0.5, torch.Generator().manual_seed(s)) for s in range(4)]
    preview_natural(random_patches(images, 128, 4, g), kernels, IMG / "sim_natural.png")
    preview_satellite(satellite_scene(128, torch.Generator().manual_seed(3)), IMG / "sim_satellite.png")
    print("wrote", sorted(p.name for p in IMG.glob("sim_*.png")))


if __name__ == "__main__":
    main()
