"""Multi-coil MRI simulation: complex images, coil maps, Cartesian undersampling, noise, fastMRI files.

Images:

* :func:`mr_phantom` — random MR-like head phantom: an ellipse "skull" and brain with grey/white-matter-like and
  CSF-like compartments (random T1/T2/PD-like contrast weights), a smooth low-order phase and a smooth bias field;
* :func:`real_mr_slices` — real MR slices that ship in installed wheels (pydicom's ``MR_small.dcm``, 64²; nibabel's
  Siemens ``0.dcm``/``1.dcm`` test slices), magnitude images given a smooth synthetic phase: evaluation data only.

Measurements (:func:`simulate_multicoil`): birdcage maps (:func:`~monai_diffrecon.physics.birdcage_maps`),
``y = M ⊙ F(S x) + n`` with complex Gaussian noise on the acquired samples, masks from
:mod:`monai_diffrecon.physics.masks` (random lines with ACS by default; R = 4, 6, 8 …). :func:`write_mri_dataset`
writes a fastMRI-style HDF5 file per image: training files hold only the undersampled noisy k-space (and its mask);
test files also keep the fully sampled k-space and the ground-truth image for scoring.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from monai_diffrecon.physics import GaussianNoise, MultiCoilMRI, birdcage_maps, equispaced_mask, poisson_disc_mask, random_lines_mask

__all__ = ["mr_phantom", "real_mr_slices", "simulate_multicoil", "MultiCoilSample", "write_mri_dataset", "smooth_field"]


def _coords(n: int) -> torch.Tensor:
    return (torch.arange(n, dtype=torch.float64) - n / 2) / (n / 2)


def smooth_field(shape: tuple[int, int], order: int, scale: float, generator: torch.Generator) -> torch.Tensor:
    """Random 2D polynomial field of total degree ≤ ``order`` with coefficients ~ U(−scale, scale)."""
    yy, xx = torch.meshgrid(_coords(shape[0]), _coords(shape[1]), indexing="ij")
    f = torch.zeros(shape, dtype=torch.float64)
    for i in range(order + 1):
        for j in range(order + 1 - i):
            c = (2 * torch.rand((), generator=generator, dtype=torch.float64) - 1) * scale
            f = f + c * yy**i * xx**j
    return f


def mr_phantom(n: int = 128, generator: torch.Generator | None = None, phase_scale: float = 1.5, bias: float = 0.2) -> torch.Tensor:
    """Random complex MR-like head slice ``(n, n)`` (complex128), magnitude roughly in [0, 1]."""
    g = generator if generator is not None else torch.Generator().manual_seed(0)

    def r(lo, hi):
        return lo + (hi - lo) * float(torch.rand((), generator=g, dtype=torch.float64))

    yy, xx = torch.meshgrid(_coords(n), _coords(n), indexing="ij")

    def ell(cy, cx, ay, ax, th):
        c, s = math.cos(th), math.sin(th)
        u, v = c * (xx - cx) + s * (yy - cy), -s * (xx - cx) + c * (yy - cy)
        return (u / ax) ** 2 + (v / ay) ** 2 < 1

    ay, ax, th = r(0.78, 0.9), r(0.6, 0.72), r(-0.15, 0.15)
    head = ell(0, 0, ay, ax, th)
    brain = ell(0, 0, ay - 0.07, ax - 0.07, th)
    # contrast weights: (skull/fat, white matter, grey matter, CSF)
    w_fat, w_wm, w_gm, w_csf = r(0.6, 1.0), r(0.5, 0.9), r(0.3, 0.7), r(0.05, 1.0)
    img = torch.zeros(n, n, dtype=torch.float64)
    img[head] = w_fat
    img[brain] = w_gm
    wm = ell(r(-0.05, 0.05), r(-0.05, 0.05), (ay - 0.07) * r(0.55, 0.7), (ax - 0.07) * r(0.55, 0.7), th) & brain
    img[wm] = w_wm
    for _ in range(int(r(2, 5))):  # ventricles / lesions
        e = ell(r(-0.3, 0.3), r(-0.3, 0.3), r(0.04, 0.15), r(0.02, 0.1), r(-1.5, 1.5)) & brain
        img[e] = w_csf
    # cortical folding texture
    tex = 0.06 * torch.sin(r(8, 20) * xx + r(0, 6)) * torch.sin(r(8, 20) * yy + r(0, 6))
    img = torch.where(brain & ~wm, img + tex, img)
    img = img * (1 + bias * smooth_field((n, n), 2, 1.0, g)).clamp_min(0.2)
    phase = phase_scale * smooth_field((n, n), 2, 1.0, g)
    return torch.polar(img.clamp_min(0), phase)


def real_mr_slices(size: int | None = None, phase_scale: float = 1.0, seed: int = 0) -> list[tuple[str, torch.Tensor]]:
    """Real MR magnitude slices from installed wheels, with a smooth synthetic phase; ``[(name, complex image)]``.

    Sources: pydicom's ``MR_small.dcm`` (64², test file), nibabel's Siemens test slices ``nibabel/tests/data/0.dcm``
    and ``1.dcm``. Each is normalised to max 1 and (if ``size``) resampled to ``size²``. Evaluation only.
    """
    import warnings
    from importlib.resources import files

    import pydicom
    from pydicom.data import get_testdata_file

    paths = [("pydicom_MR_small", get_testdata_file("MR_small.dcm"))]
    nib_dir = files("nibabel") / "tests" / "data"
    for name in ("0.dcm", "1.dcm"):
        p = nib_dir / name
        if p.is_file():
            paths.append((f"nibabel_{name[:-4]}", str(p)))
    out = []
    g = torch.Generator().manual_seed(seed)
    for name, p in paths:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = pydicom.dcmread(p).pixel_array.astype(np.float64)
        t = torch.from_numpy(arr)
        t = t / t.max()
        if size is not None and t.shape != (size, size):
            t = torch.nn.functional.interpolate(t[None, None], size=(size, size), mode="bilinear", align_corners=False)[0, 0]
        phase = phase_scale * smooth_field(tuple(t.shape), 2, 1.0, g)
        out.append((name, torch.polar(t.clamp_min(0), phase)))
    return out


@dataclass
class MultiCoilSample:
    """One simulated acquisition (batch of slices): everything is ``(S, ...)``."""

    image: torch.Tensor  # (S, 1, H, W) complex ground truth
    maps: torch.Tensor  # (1, C, H, W) complex coil sensitivities
    mask: torch.Tensor  # (1, 1, 1, W) or (1, 1, H, W)
    kspace_full: torch.Tensor  # (S, C, H, W) noiseless, fully sampled
    kspace: torch.Tensor  # (S, C, H, W) undersampled + noise (zero where not acquired)
    sigma: float


def simulate_multicoil(
    images: torch.Tensor,
    coils: int = 8,
    acceleration: float = 4.0,
    center_lines: int = 20,
    mask_type: str = "random",
    noise_sigma: float = 0.01,
    generator: torch.Generator | None = None,
) -> MultiCoilSample:
    """Simulate multi-coil undersampled k-space for complex images ``(S, H, W)`` or ``(S, 1, H, W)``.

    Args:
        mask_type: ``"random"`` (uniform random lines + ACS), ``"equispaced"`` or ``"poisson"`` (2D variable density).
        noise_sigma: std of the real and imaginary noise per k-space sample (orthonormal FFT ⇒ same scale as image).
    """
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    x = images if images.ndim == 4 else images[:, None]
    x = x.to(torch.complex64)
    S, _, H, W = x.shape
    maps = birdcage_maps(coils, (H, W))
    if mask_type == "random":
        mask = random_lines_mask(W, acceleration, center_lines, generator=g)
    elif mask_type == "equispaced":
        mask = equispaced_mask(W, int(acceleration), center_lines)
    elif mask_type == "poisson":
        mask = poisson_disc_mask((H, W), acceleration, (center_lines, center_lines), generator=g)
    else:
        raise ValueError(f"mask_type: random, equispaced or poisson, got {mask_type!r}")
    full = MultiCoilMRI(maps, torch.ones(1, 1, 1, 1))(x)
    A = MultiCoilMRI(maps, mask)
    y = A(x)
    noisy = A.mask * GaussianNoise(noise_sigma)(y, generator=g)
    return MultiCoilSample(x, maps, mask, full, noisy, noise_sigma)


def write_mri_dataset(
    out_dir: str | Path,
    images: list[tuple[str, torch.Tensor]],
    split: str,
    coils: int = 8,
    acceleration: float = 4.0,
    center_lines: int = 20,
    noise_sigma: float = 0.01,
    seed: int = 0,
) -> list[Path]:
    """Write one fastMRI-style HDF5 file per ``(name, complex image)``.

    ``split="train"``: only the undersampled noisy k-space and its mask (no clean data, as MSM/SelfDB assume);
    ``split="test"``: also ``kspace_full`` (fully sampled, noiseless) and ``reconstruction_rss`` (ground truth).
    """
    from monai_diffrecon.io.kspace import write_fastmri

    if split not in ("train", "val", "test"):
        raise ValueError(f"split: train, val or test, got {split!r}")
    out = []
    for i, (name, img) in enumerate(images):
        g = torch.Generator().manual_seed(seed * 100003 + i)
        smp = simulate_multicoil(img[None] if img.ndim == 2 else img, coils, acceleration, center_lines, "random", noise_sigma, g)
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)
        attrs = {"acquisition": "SIMULATED", "acceleration": float(acceleration), "noise_sigma": float(noise_sigma), "split": split, "seed": int(seed)}
        rss = smp.image.abs()[:, 0].numpy() if split == "test" else None
        p = write_fastmri(Path(out_dir) / f"{split}_{i:04d}_{safe}.h5", smp.kspace, mask=smp.mask.reshape(-1), reconstruction_rss=rss, attrs=attrs)
        if split == "test":
            import h5py

            with h5py.File(p, "a") as f:
                f.create_dataset("kspace_full", data=smp.kspace_full.numpy())
        out.append(p)
    return out
