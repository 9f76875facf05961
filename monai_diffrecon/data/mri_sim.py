"""Multi-coil MRI simulation: complex images, coil maps, Cartesian undersampling, noise, fastMRI files.

Images:

* :func:`mr_phantom` — random MR-like head phantom: an ellipse "skull" and brain with grey/white-matter-like and
  CSF-like compartments (random T1/T2/PD-like contrast weights), a smooth low-order phase and a smooth bias field;
* :func:`real_mr_slices` — real MR slices that ship in installed wheels (pydicom's ``MR_small.dcm``, 64²; with the
  optional ``dipy`` wheel also its ``t1_coronal_slice.npy`` T1, 256², and the ten b0 slices of ``S0_10slices.nii.gz``,
  128²), magnitude images given a smooth synthetic phase: evaluation data only. ``split="val"``: the real
  *validation* slices for tuning on real data — four axial slices of dipy's ``test_piesno.nii.gz`` (a DWI volume,
  96² × 14, another file than the test slices and never a training source). nibabel's Siemens ``0.dcm``/``1.dcm``
  are *not* used: their pixel data is a synthetic ramp (value = 256·row + column mod 4096), not anatomy.

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
from monai_diffrecon.physics.functional.devices import rand, randint
from monai_diffrecon.errors import DependencyError, InvalidValueError
from monai_diffrecon.modalities.mri import acs_scale  # noqa: F401  (moved there; the old import path still works)

__all__ = ["mr_phantom", "real_mr_slices", "simulate_multicoil", "MultiCoilSample", "write_mri_dataset", "smooth_field", "wheel_training_slices"]


def _coords(n: int) -> torch.Tensor:
    return (torch.arange(n, dtype=torch.float64, device="cpu") - n / 2) / (n / 2)


def smooth_field(shape: tuple[int, int], order: int, scale: float, generator: torch.Generator) -> torch.Tensor:
    """Random 2D polynomial field of total degree ≤ ``order`` with coefficients ~ U(−scale, scale)."""
    yy, xx = torch.meshgrid(_coords(shape[0]), _coords(shape[1]), indexing="ij")
    f = torch.zeros(shape, dtype=torch.float64, device="cpu")
    for i in range(order + 1):
        for j in range(order + 1 - i):
            c = (2 * rand((), generator, dtype=torch.float64) - 1) * scale
            f = f + c * yy**i * xx**j
    return f


def mr_phantom(n: int = 128, generator: torch.Generator | None = None, phase_scale: float = 1.5, bias: float = 0.2) -> torch.Tensor:
    """Random complex MR-like head slice ``(n, n)`` (complex128), magnitude roughly in [0, 1]."""
    g = generator if generator is not None else torch.Generator().manual_seed(0)

    def r(lo, hi):
        return lo + (hi - lo) * float(rand((), g, dtype=torch.float64))

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
    img = torch.zeros(n, n, dtype=torch.float64, device="cpu")
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


#: dipy's test_piesno.nii.gz slices of the real validation split (spread over its 14 axial slices)
REAL_VAL_SLICES = (2, 5, 8, 11)


def real_mr_slices(size: int | None = None, phase_scale: float = 1.0, seed: int = 0, split: str = "test") -> list[tuple[str, torch.Tensor]]:
    """Real MR magnitude slices from installed wheels, with a smooth synthetic phase; ``[(name, complex image)]``.

    ``split="test"`` (the held-out evaluation slices) — sources: pydicom's ``MR_small.dcm`` (64², a test file in the pydicom wheel); if ``dipy`` is installed (the
    ``bench`` extra), dipy's ``t1_coronal_slice.npy`` (256² T1, coronal) and the ten b0 slices of
    ``S0_10slices.nii.gz`` (128², T2-weighted EPI, axial). Each is (if ``size``) resampled to ``size²``, then normalised to
    max 1. Evaluation only: none of these subjects is in the MNI152 training data. nibabel's test ``0.dcm`` /
    ``1.dcm`` are excluded: anonymisation replaced their pixel data by a ramp.

    ``split="val"`` — the slices :data:`REAL_VAL_SLICES` of dipy's ``test_piesno.nii.gz`` (needs ``dipy``), for
    choosing settings on real data; neither a test slice nor a training source (:mod:`monai_diffrecon.data.mr_wheels`).
    """
    if split not in ("test", "val"):
        raise InvalidValueError(f"split: 'test' or 'val', got {split!r}")
    import warnings
    from importlib.resources import files
    from importlib.util import find_spec

    import pydicom
    from pydicom.data import get_testdata_file

    if split == "val":
        if find_spec("dipy") is None:
            raise DependencyError("real_mr_slices(split='val'): needs the dipy wheel (the bench extra)")
        import nibabel as nib

        v = np.asarray(nib.load(str(files("dipy") / "data" / "files" / "test_piesno.nii.gz")).dataobj, dtype=np.float64)
        arrays = [(f"dipy_piesno_z{k}", v[:, :, k]) for k in REAL_VAL_SLICES]
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arrays = [("pydicom_MR_small", pydicom.dcmread(get_testdata_file("MR_small.dcm")).pixel_array.astype(np.float64))]
    if split == "test" and find_spec("dipy") is not None:
        import nibabel as nib

        d = files("dipy") / "data" / "files"
        arrays.append(("dipy_t1_coronal", np.load(str(d / "t1_coronal_slice.npy")).astype(np.float64)))
        b0 = np.asarray(nib.load(str(d / "S0_10slices.nii.gz")).dataobj, dtype=np.float64)
        b0 = b0.reshape(b0.shape[0], b0.shape[1], -1)
        arrays += [(f"dipy_S0_b0_z{k}", b0[:, :, k]) for k in range(b0.shape[2])]
    out = []
    g = torch.Generator().manual_seed(seed)
    for name, arr in arrays:
        t = torch.from_numpy(arr)
        if size is not None and t.shape != (size, size):
            t = torch.nn.functional.interpolate(t[None, None], size=(size, size), mode="bilinear", align_corners=False)[0, 0]
        t = t / t.max()
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
    coil_radius: float = 1.5,
) -> MultiCoilSample:
    """Simulate multi-coil undersampled k-space for complex images ``(S, H, W)`` or ``(S, 1, H, W)``.

    Args:
        mask_type: ``"random"`` (uniform random lines + ACS), ``"equispaced"`` or ``"poisson"`` (2D variable density).
        noise_sigma: std of the real and imaginary noise per k-space sample (orthonormal FFT ⇒ same scale as image).
        coil_radius: the birdcage's radius relative to the field of view (smaller: more localised coils).
    """
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    x = images if images.ndim == 4 else images[:, None]
    x = x.to(torch.complex64)
    S, _, H, W = x.shape
    maps = birdcage_maps(coils, (H, W), radius=coil_radius)
    if mask_type == "random":
        mask = random_lines_mask(W, acceleration, center_lines, generator=g)
    elif mask_type == "equispaced":
        mask = equispaced_mask(W, int(acceleration), center_lines)
    elif mask_type == "poisson":
        mask = poisson_disc_mask((H, W), acceleration, (center_lines, center_lines), generator=g)
    else:
        raise InvalidValueError(f"mask_type: random, equispaced or poisson, got {mask_type!r}")
    full = MultiCoilMRI(maps, torch.ones(1, 1, 1, 1, device="cpu"))(x)
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
        raise InvalidValueError(f"split: train, val or test, got {split!r}")
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


# --- MNI152-based slices (real anatomy shipped in the nilearn wheel) -------------------------------------------------

MNI_FILES = {k: f"mni_icbm152_{k}_tal_nlin_sym_09a_converted.nii.gz" for k in ("t1", "gm", "wm")}
# axial slices used, in blocks of 10: test blocks and training blocks never touch (3-slice guard on each side)
MNI_Z_RANGE = (28, 140)  # the template is skull-stripped; these slices have ≥ 40 % of the largest brain area


def _mni_dir() -> Path:
    try:
        import nilearn
    except ImportError as e:  # pragma: no cover - nilearn is a runtime dependency
        raise ImportError("the MNI152 template ships in the nilearn wheel: pip install nilearn") from e
    return Path(nilearn.__file__).parent / "datasets" / "data"


def load_mni(size: int = 128) -> dict[str, torch.Tensor]:
    """The MNI152 2009a template and its grey/white-matter maps, axial slices resampled in-plane to ``size²``.

    Returns ``{"t1", "gm", "wm", "csf", "scalp", "head"}`` as ``(Z, size, size)`` float64 in [0, 1] (``csf``: inside
    the brain envelope but neither grey nor white matter; ``scalp``: a synthetic shell around it, since the template
    is skull-stripped; ``head``: everything).
    """
    import nibabel as nib

    d = _mni_dir()
    vols = {}
    for k, f in MNI_FILES.items():
        if not (d / f).is_file():
            raise DependencyError(f"{d / f}: MNI152 file missing from the nilearn installation (reinstall nilearn)")
        a = np.asarray(nib.load(d / f).dataobj, dtype=np.float64) / 255.0  # (X=197, Y=233, Z=189), RAS, 1 mm
        a = np.pad(a, ((18, 19), (1, 0), (0, 0)))  # → 234 × 234 in-plane, head centred
        t = torch.from_numpy(np.ascontiguousarray(np.rot90(a, 1, axes=(0, 1)))).permute(2, 0, 1)  # (Z, rows=A→P, cols)
        vols[k] = torch.nn.functional.interpolate(t[:, None], size=(size, size), mode="area")[:, 0]
    from scipy import ndimage

    brain = (vols["gm"] + vols["wm"]).numpy() > 0.1
    envelope = np.stack([ndimage.binary_fill_holes(ndimage.binary_closing(s, iterations=3)) for s in brain])
    vols["csf"] = (torch.from_numpy(envelope.astype(np.float64)) - vols["gm"] - vols["wm"]).clamp(0, 1)
    # the template is skull-stripped: add a scalp/skull shell (fat-bright outer ring, dark bone ring) around the brain
    outer = np.stack([ndimage.binary_dilation(e, iterations=max(2, size // 24)) for e in envelope])
    bone = np.stack([ndimage.binary_dilation(e, iterations=max(1, size // 48)) for e in envelope])
    vols["scalp"] = torch.from_numpy((outer & ~bone).astype(np.float64))
    vols["head"] = torch.from_numpy(outer.astype(np.float64))
    return vols


def mni_split_slices(split: str) -> list[int]:
    """Axial slice indices of the MNI volume for ``split``: blocks of 10 slices, every 4th block is test, the block
    after each test block is validation, the rest training; 3 slices at each block edge next to a different split
    are dropped so no training slice is within 3 mm of a test or validation slice."""
    if split not in ("train", "val", "test"):
        raise InvalidValueError(f"split: train, val or test, got {split!r}")
    lo, hi = MNI_Z_RANGE
    role = {}
    for b, start in enumerate(range(lo, hi, 10)):
        r = "test" if b % 4 == 1 else ("val" if b % 4 == 2 else "train")
        for z in range(start, min(start + 10, hi)):
            role[z] = r
    keep = [z for z, r in role.items() if r == split and all(role.get(z + d, r) == r for d in range(-3, 4))]
    return keep


def mni_mr_slice(vols: dict, z: int, generator: torch.Generator, augment: bool = True, phase_scale: float = 1.5,
                 bias: float = 0.3) -> torch.Tensor:
    """One complex MR-like slice ``(size, size)`` from MNI tissue maps with a random contrast.

    Contrast: a random mixture of T1-, T2- and PD-like tissue weights (grey, white matter, CSF) with ±15 % jitter,
    a bright scalp shell separated from the brain by a dark skull ring; augmentation with torchio (random affine
    ±10°/±10 %, elastic deformation, bias field), a smooth bias field and a smooth phase. Normalised to max 1.
    """
    g = generator

    def r(lo, hi):
        return lo + (hi - lo) * float(rand((), g, dtype=torch.float64))

    weights = {"t1": (0.45, 0.85, 0.1), "t2": (0.55, 0.4, 1.0), "pd": (0.8, 0.7, 0.9)}  # (gm, wm, csf)
    mix = rand(3, g, dtype=torch.float64) ** 4
    mix = mix / mix.sum()
    w = [sum(float(m) * weights[k][i] for m, k in zip(mix, weights)) * r(0.85, 1.15) for i in range(3)]
    img = w[0] * vols["gm"][z] + w[1] * vols["wm"][z] + w[2] * vols["csf"][z] + r(0.5, 1.0) * vols["scalp"][z]
    if augment:
        import torchio as tio

        seed = int(randint(0, 2**31 - 1, (1,), g))
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            tf = tio.Compose([tio.RandomAffine(scales=0.1, degrees=(0, 0, 0, 0, -10, 10), default_pad_value=0.0),
                              tio.RandomElasticDeformation(num_control_points=(7, 7, 5), max_displacement=(6, 6, 0), locked_borders=2),
                              tio.RandomBiasField(coefficients=0.3, order=3)])
            img = tf(tio.ScalarImage(tensor=img[None, :, :, None].float())).data[0, :, :, 0].double().clamp_min(0)
    n = img.shape[-1]
    img = img * (1 + bias * smooth_field((n, n), 2, 1.0, g)).clamp_min(0.2)
    img = img / img.max().clamp_min(1e-12)
    return torch.polar(img, phase_scale * smooth_field((n, n), 2, 1.0, g))


def mni_mr_slices(split: str, n: int, size: int = 128, seed: int = 0, augment: bool | None = None) -> torch.Tensor:
    """``n`` complex slices ``(n, size, size)`` of ``split`` (augmented for training by default), deterministic in
    ``seed``; slice positions drawn from :func:`mni_split_slices`."""
    vols = load_mni(size)
    zs = mni_split_slices(split)
    g = torch.Generator().manual_seed(seed)
    aug = (split == "train") if augment is None else augment
    out = [mni_mr_slice(vols, zs[int(randint(0, len(zs), (1,), g))], g, augment=aug) for _ in range(n)]
    return torch.stack(out)



def wheel_training_slices(n: int, size: int = 128, seed: int = 0, phase_scale: float = 1.5, bias: float = 0.3) -> torch.Tensor:
    """``n`` complex training slices ``(n, size, size)`` drawn from the real MR data inside installed wheels
    (:func:`~monai_diffrecon.data.mr_wheels.wheel_mr_slices`; none is held out), each augmented: a random flip and
    quarter turn, zero-padded to a square, resized to ``size²`` with a random zoom of 0.85–1.0 (padding the rest),
    a smooth bias field and a smooth phase; normalised to max 1. Deterministic in ``seed``."""
    from monai_diffrecon.data.mr_wheels import wheel_mr_slices

    pool = [a for _, a in wheel_mr_slices()]
    if not pool:
        raise DependencyError("no real MR training data found: install the 'train' extra (matplotlib, nibabel, heudiconv)")
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        t = torch.from_numpy(pool[int(randint(0, len(pool), (1,), g))].copy())
        if float(rand((), g)) < 0.5:
            t = t.flip(-1)
        t = torch.rot90(t, int(randint(0, 4, (1,), g)), (0, 1))
        m = max(t.shape)
        t = torch.nn.functional.pad(t, ((m - t.shape[1]) // 2, (m - t.shape[1] + 1) // 2, (m - t.shape[0]) // 2, (m - t.shape[0] + 1) // 2))
        inner = max(8, int(round(size * (0.85 + 0.15 * float(rand((), g))))))
        t = torch.nn.functional.interpolate(t[None, None], size=(inner, inner), mode="bilinear", align_corners=False)[0, 0]
        lo = (size - inner) // 2
        t = torch.nn.functional.pad(t, (lo, size - inner - lo, lo, size - inner - lo)).clamp_min(0)
        t = t * (1 + bias * smooth_field((size, size), 2, 1.0, g)).clamp_min(0.2)
        t = t / t.max().clamp_min(1e-12)
        out.append(torch.polar(t, phase_scale * smooth_field((size, size), 2, 1.0, g)))
    return torch.stack(out)
