"""Multi-coil MRI workflow behind the ``mri_multicoil_msm`` and ``mri_multicoil_selfdb`` bundles: fastMRI-style
HDF5 (or ISMRMRD) k-space in → derived MR DICOM series + NIfTI + PNG + metrics out.

Per file (one case): the k-space ``(S, C, H, W)`` and its line mask (``LoadKSpaced``); optionally a retrospective
undersampling of fully sampled data (``acceleration``: random lines with 20 ACS, seeded); ESPIRiT coil maps from
the ACS block (or the file's ``maps`` dataset); the data-only intensity normalisation of training
(:func:`~monai_diffrecon.modalities.mri.acs_scale`, undone on output); then every slice is reconstructed by the inferer (MSM or SelfDB
sampler) with a :class:`~monai_diffrecon.physics.MultiCoilMRI` operator. Written through one staged folder: the
magnitude as a derived MR series (new study: raw data carry no DICOM identity), ``recon.nii.gz`` (+ ``std.nii.gz``
with ``num_samples > 1``), ``zero_filled.nii.gz``, ``recon.png`` (zero-filled / ours / posterior std / reference)
and ``metrics.json`` (PSNR/SSIM on the magnitude against ``reconstruction_rss`` when the file has one).

Bad input raises a typed error before anything is written: unreadable or non-complex k-space, NaN/Inf, a mask that
samples nothing, too few ACS lines for the maps, maps whose coil count disagrees with the k-space.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from monai_diffrecon.modalities.mri import acs_lines, acs_scale
from monai_diffrecon.errors import InvalidValueError, KSpaceError
from monai_diffrecon.io.dicom_write import Derivation, write_mr_series
from monai_diffrecon.io.nifti import write_nifti
from monai_diffrecon.io.shape_guard import check_spatial_size, spatial_divisor
from monai_diffrecon.io.staging import staged_directory
from monai_diffrecon.physics import MultiCoilMRI, estimate_coil_maps
from monai_diffrecon.physics.functional.sense import sense_combine
from monai_diffrecon.workflows.base import CaseWorkflow

__all__ = ["kspace_datalist", "MRIReconstruction", "acs_lines", "magnitude_metrics", "simulated_kspace_files"]


def kspace_datalist(input_dir: str | Path) -> list[dict]:
    """One item per ``*.h5`` / ``*.mrd`` file under ``input_dir`` (sorted): ``[{"case": path, "kspace": path}]``."""
    root = Path(input_dir)
    if root.is_file():
        return [{"case": str(root), "kspace": str(root)}]
    if not root.is_dir():
        raise KSpaceError(input_dir, "input not found (a k-space file or a folder of them)")
    files = sorted(p for p in root.rglob("*") if p.suffix in (".h5", ".mrd", ".ismrmrd") and p.is_file())
    if not files:
        raise KSpaceError(input_dir, "no k-space file (*.h5 fastMRI-style, *.mrd ISMRMRD) found")
    return [{"case": str(f), "kspace": str(f)} for f in files]


def simulated_kspace_files(out_dir: str | Path, n_slices: int = 16, size: int = 128, acceleration: float = 4.0, seed: int | None = None,
                           progress: bool = True) -> list[dict]:
    """Write ``n_slices`` held-out MNI152-based test slices (axial blocks never used for training) as fastMRI-style
    files with ``reconstruction_rss`` for scoring, and return their datalist — the evaluation set of
    ``evaluate.json``. Existing files are reused."""
    from monai_diffrecon.data.mri_sim import mni_mr_slices, write_mri_dataset
    from monai_diffrecon.evaluation.splits import seed_base

    seed = seed_base("mri", "test") if seed is None else seed  # the split registry's test seeds

    root = Path(out_dir)
    files = sorted(root.glob("test_*.h5")) if root.is_dir() else []
    if len(files) != n_slices:
        imgs = mni_mr_slices("test", n_slices, size=size, seed=seed)
        with staged_directory(root, overwrite=True) as tmp:  # our own cache of test files (a foreign folder is refused)
            write_mri_dataset(tmp, [(f"mni_{i:03d}", imgs[i]) for i in range(n_slices)], "test", acceleration=acceleration, seed=seed)
        files = sorted(root.glob("test_*.h5"))
    return [{"case": str(f), "kspace": str(f)} for f in files]


def magnitude_metrics(x: torch.Tensor, ref: torch.Tensor) -> dict:
    """PSNR / SSIM of magnitudes (peak = max of the reference; ``(S, H, W)``), averaged over slices."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    a, b = x.abs().double().numpy(), ref.abs().double().numpy()
    ps, ss = [], []
    for xi, ri in zip(a, b):
        rng = float(ri.max())
        ps.append(peak_signal_noise_ratio(ri, xi, data_range=rng))
        ss.append(structural_similarity(ri, xi, data_range=rng))
    return {"psnr": float(np.mean(ps)), "ssim": float(np.mean(ss))}


class MRIReconstruction(CaseWorkflow):
    """The MRI bundles' evaluator (module doc).

    Args:
        dataset: items with ``kspace`` from ``LoadKSpaced`` (MetaTensor ``(S, C, H, W)`` with ``meta["mask"]``).
        sampler: MSM or SelfDB sampler (``sampler(y, MultiCoilMRI, generator=…)``).
        acceleration: retrospectively undersample fully sampled inputs at this R (random lines, ``center_lines``
            ACS), or ``None`` to use the data as acquired.
        calib_size: ESPIRiT calibration width (≤ the ACS lines). pixel_mm: pixel spacing for DICOM/NIfTI when the
            file does not say (fastMRI files carry no geometry).
        method: name recorded in the DICOM derivation. body_part: BodyPartExamined of the written series.
    """

    def __init__(self, dataset, output_dir, sampler, num_samples: int = 1, seed: int = 0, acceleration: float | None = None,
                 center_lines: int = 20, calib_size: int = 20, pixel_mm: float = 1.0, method: str = "diffusion", model_sha256: str | None = None,
                 body_part: str = "BRAIN", progress: bool = True, input_dir=None, overwrite: bool = False,
                 device=None) -> None:
        super().__init__(dataset, output_dir, progress, input_dir, overwrite, device)
        if num_samples < 1:
            raise InvalidValueError(f"num_samples: must be ≥ 1, got {num_samples}")
        self.sampler, self.num_samples, self.seed, self.acceleration = sampler, num_samples, seed, acceleration
        self.center_lines, self.calib_size, self.pixel_mm, self.method, self.model_sha256 = center_lines, calib_size, pixel_mm, method, model_sha256
        self.body_part = body_part

    def _empty(self) -> Exception:
        return KSpaceError(self.input_dir or "the dataset", "no k-space file to reconstruct")

    def prepare(self, item: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, str]:
        """``(kspace (S, C, H, W), mask (1, 1, 1, W), maps (S, C, H, W), path)`` after the checks."""
        k = item["kspace"]
        path = str(k.meta.get("filename_or_obj", "<kspace>")) if hasattr(k, "meta") else "<kspace>"
        mask = k.meta["mask"].float() if hasattr(k, "meta") else (k.abs().sum(dim=(0, 1, 2)) > 0).float().reshape(1, 1, 1, -1)
        k = k.as_tensor() if hasattr(k, "as_tensor") else k
        if k.ndim != 4 or not k.is_complex():
            raise KSpaceError(path, f"k-space must be complex (slices, coils, H, W), got {tuple(k.shape)} {k.dtype}")
        if not bool(torch.isfinite(torch.view_as_real(k)).all()):
            raise KSpaceError(path, "k-space contains NaN or Inf")
        check_spatial_size(path, k.shape[-2:], spatial_divisor(self.sampler), "k-space matrix")  # = the image's H × W
        if self.acceleration is not None:
            if float(mask.mean()) < 0.999:
                raise KSpaceError(path, f"acceleration={self.acceleration} needs fully sampled k-space; this file is already undersampled "
                                        f"(R = {1 / max(float(mask.mean()), 1e-9):.1f})")
            from monai_diffrecon.physics import random_lines_mask

            mask = random_lines_mask(k.shape[-1], self.acceleration, self.center_lines, generator=torch.Generator().manual_seed(self.seed + 101))
            k = k * mask
        if float(mask.sum()) == 0:
            raise KSpaceError(path, "the mask samples no k-space line")
        acs = acs_lines(mask)
        maps = item.get("maps")
        if maps is not None:
            maps = torch.as_tensor(maps, device="cpu").to(torch.complex64)  # workflows build on the CPU; sample() moves
            if maps.shape[-3] != k.shape[1]:
                raise KSpaceError(path, f"coil maps have {maps.shape[-3]} coils, k-space has {k.shape[1]}")
            maps = maps.expand(k.shape[0], -1, -1, -1) if maps.ndim == 4 else maps[None].expand(k.shape[0], -1, -1, -1)
        else:
            if acs < min(self.calib_size, 8):
                raise KSpaceError(path, f"{acs} fully sampled centre lines; ESPIRiT coil maps need at least {min(self.calib_size, 8)}")
            try:
                maps = estimate_coil_maps(k, calib_size=min(self.calib_size, acs)).to(torch.complex64)
            except InvalidValueError as e:  # all-zero maps: say which file, and what to do
                raise KSpaceError(path, f"{e} (or pass coil maps)") from e
        return k.to(torch.complex64), mask, maps, path

    def reconstruct(self, item: dict) -> tuple[dict, dict]:
        t0 = time.perf_counter()
        k, mask, maps, path = self.prepare(item)
        g = torch.Generator().manual_seed(self.seed)
        means, stds, zfs, nfe = [], [], [], 0
        for s in range(k.shape[0]):
            A = MultiCoilMRI(maps[s:s + 1], mask)
            y = k[s:s + 1] * mask
            c = acs_scale(y, maps[s:s + 1], mask)  # the networks were trained on data normalised the same way
            out = self.sample(y / c, A, g, self.num_samples)
            means.append(out.mean[0, 0] * c)
            stds.append(out.std[0, 0].abs() * c)
            zfs.append(sense_combine(y, maps[s:s + 1])[0, 0])
            nfe += out.nfe
        mean, std, zf = torch.stack(means), torch.stack(stds), torch.stack(zfs)
        metrics = {"file": Path(path).name, "seconds": round(time.perf_counter() - t0, 2), "nfe": nfe, "slices": int(k.shape[0]),
                   "acceleration": round(k.shape[-1] / float(mask.sum()), 2), "num_samples": self.num_samples}
        ref = item["kspace"].meta.get("reconstruction") if hasattr(item["kspace"], "meta") else None
        if ref is not None and tuple(ref.shape) == tuple(mean.shape):
            metrics.update({f"ours_{a}": b for a, b in magnitude_metrics(mean, ref).items()})
            metrics.update({f"zero_filled_{a}": b for a, b in magnitude_metrics(zf, ref).items()})
        else:
            ref = None
        return {"mean": mean, "std": std, "zf": zf, "ref": ref}, metrics

    def write(self, out_dir: Path, results: dict, metrics: dict) -> None:
        mag = results["mean"].abs().permute(1, 2, 0).numpy()  # (rows, cols, S) → array axes (X, Y, Z)
        aff = np.diag([self.pixel_mm, self.pixel_mm, self.pixel_mm, 1.0])
        params = {"sampler": type(self.sampler).__name__, "nfe": metrics["nfe"], "num_samples": self.num_samples, "seed": self.seed,
                  "acceleration": metrics["acceleration"]}
        write_mr_series(mag, aff, None, out_dir / "dicom", Derivation(f"{self.method} multi-coil MRI reconstruction", params, self.model_sha256),
                        seed=self.seed, description=f"{self.method} recon", body_part=self.body_part)
        write_nifti(mag, aff, out_dir / "recon.nii.gz")
        write_nifti(results["zf"].abs().permute(1, 2, 0).numpy(), aff, out_dir / "zero_filled.nii.gz")
        if self.num_samples > 1:
            write_nifti(results["std"].permute(1, 2, 0).numpy(), aff, out_dir / "std.nii.gz")
        _figure(out_dir / "recon.png", results, metrics, self.num_samples > 1, self.method)
        (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))

def _figure(path, results, metrics, with_std: bool, method: str) -> None:
    from monai_diffrecon.data.preview import save_panels

    s = results["mean"].shape[0] // 2
    vmax = float((results["ref"] if results["ref"] is not None else results["mean"])[s].abs().max())
    cols = [("zero-filled", results["zf"][s].abs(), "gray"), (method, results["mean"][s].abs(), "gray")]
    if with_std:
        cols.append(("posterior std", results["std"][s], "magma"))
    if results["ref"] is not None:
        cols.append(("reference", results["ref"][s].abs(), "gray"))
        cols.append((f"|error| ×5 ({method})", (5 * (results["mean"][s].abs() - results["ref"][s].abs()).abs()).clamp(max=vmax), "magma"))
    panels = [(n, (v / vmax).clamp(0, 1).numpy() if c == "gray" else v.numpy(), c) for n, v, c in cols]
    title = f"{method}: slice {s}, R = {metrics['acceleration']}, NFE {metrics['nfe']}, {metrics['seconds']} s"
    if "ours_psnr" in metrics:
        title += f" — PSNR {metrics['ours_psnr']:.2f} dB (zero-filled {metrics['zero_filled_psnr']:.2f})"
    save_panels(panels, path, ncols=len(panels), title=title)
