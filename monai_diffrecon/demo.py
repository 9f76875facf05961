"""The built-in default job: simulate a myocardial-perfusion SPECT acquisition and reconstruct it with OSEM.

Until the diffusion SPECT bundle lands this is what ``make demo`` / ``diffrecon demo`` runs. It writes, through a
staged folder (nothing half-written is ever visible):

* ``recon_osem_acpsf.nii.gz`` — OSEM with attenuation and collimator-response modelling (counts per voxel);
* ``recon_osem_noac.nii.gz`` — OSEM without corrections, for comparison;
* ``truth.nii.gz``, ``projections.nii.gz`` — the phantom (scaled to counts) and the noisy projections;
* ``demo.png`` — orthogonal slices through the left ventricle, a projection and a sinogram;
* ``metrics.json`` — NRMSE in the body and myocardial recovery for both reconstructions, with the settings.

NIfTI affines map voxel indices to RAS millimetres (the object axes are LPS, hence the sign flips on X and Y).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from monai_diffrecon.data.spect_phantom import cardiac_phantom
from monai_diffrecon.io.staging import staged_directory
from monai_diffrecon.physics import LEHR, PoissonNoise, SPECTProjector
from monai_diffrecon.recon import osem

__all__ = ["DemoConfig", "run_spect_demo", "run_bundle_demo"]


@dataclass
class DemoConfig:
    size: int = 64
    voxel_mm: float = 6.0
    views: int = 64
    radius_mm: float = 260.0
    total_counts: float = 2.0e6
    iterations: int = 4
    subsets: int = 8
    seed: int = 0

    @classmethod
    def quick(cls) -> DemoConfig:
        return cls(size=32, voxel_mm=12.0, views=32, total_counts=5.0e5, iterations=3, subsets=4)


def _affine_ras(shape: tuple[int, int, int], voxel_mm: float) -> np.ndarray:
    aff = np.diag([-voxel_mm, -voxel_mm, voxel_mm, 1.0])
    aff[:3, 3] = -aff[:3, :3] @ ((np.array(shape) - 1) / 2.0)
    return aff


def _save_nifti(path: Path, vol: torch.Tensor, affine: np.ndarray) -> None:
    import nibabel as nib

    nib.save(nib.Nifti1Image(vol.detach().cpu().numpy().astype(np.float32), affine), str(path))


def _nrmse(a: torch.Tensor, b: torch.Tensor, m: torch.Tensor) -> float:
    return float((a[m] - b[m]).norm() / b[m].norm())


def _figure(path: Path, truth, noac, acpsf, proj, heart_idx, metrics) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    i, j, k = heart_idx
    views = {
        "transverse": lambda v: v[:, :, k].T,
        "coronal": lambda v: v[:, j, :].T.flip(0),
        "sagittal": lambda v: v[i, :, :].T.flip(0),
    }
    rows = [("truth", truth), ("OSEM, no corrections", noac), ("OSEM, attenuation + PSF", acpsf)]
    fig, ax = plt.subplots(3, 4, figsize=(13, 9.5))
    for r, (name, vol) in enumerate(rows):
        vmax = float(vol.max())
        for c, (vname, f) in enumerate(views.items()):
            ax[r, c].imshow(f(vol).numpy(), cmap="inferno", vmin=0, vmax=vmax)
            ax[r, c].set_title(f"{name}\n{vname}", fontsize=9)
            ax[r, c].axis("off")
    ax[0, 3].imshow(proj[0].T.flip(0).numpy(), cmap="gray")
    ax[0, 3].set_title("measured projection, view 0", fontsize=9)
    ax[1, 3].imshow(proj[:, :, k].numpy(), cmap="gray", aspect="auto")
    ax[1, 3].set_title(f"sinogram, slice {k}", fontsize=9)
    for a in (ax[0, 3], ax[1, 3]):
        a.axis("off")
    ax[2, 3].axis("off")
    ax[2, 3].text(
        0.0,
        0.5,
        "\n".join(
            [
                f"counts: {metrics['total_counts']:.3g}",
                f"NRMSE body  no-AC: {metrics['nrmse_body_noac']:.3f}",
                f"NRMSE body  AC+PSF: {metrics['nrmse_body_acpsf']:.3f}",
                f"myocardial recovery no-AC: {metrics['recovery_myo_noac']:.2f}",
                f"myocardial recovery AC+PSF: {metrics['recovery_myo_acpsf']:.2f}",
            ]
        ),
        fontsize=10,
        family="monospace",
        va="center",
    )
    fig.suptitle("monai_diffrecon demo: simulated ⁹⁹ᵐTc myocardial perfusion SPECT, OSEM", fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_spect_demo(output: str | Path, config: DemoConfig | None = None, progress: bool = True, overwrite: bool = False) -> dict:
    """Run the simulated SPECT + OSEM demo and write its outputs to ``output`` (the output rule of
    :mod:`monai_diffrecon.io.staging`: a non-empty folder only with ``overwrite``, and only an earlier output of ours).

    Returns:
        the metrics dictionary also written to ``metrics.json``.
    """
    from monai_diffrecon.io.staging import check_output

    check_output(output, (), overwrite)  # refused before any computation
    cfg = config or DemoConfig()
    t0 = time.perf_counter()
    shape = (cfg.size,) * 3
    ph = cardiac_phantom(shape, cfg.voxel_mm)
    angles = torch.arange(cfg.views, dtype=torch.float64, device="cpu") * (360.0 / cfg.views)
    proj_full = SPECTProjector(angles, cfg.voxel_mm, ph["mu"], LEHR, radii_mm=cfg.radius_mm)
    truth = ph["activity"][None, None]
    expected = proj_full(truth)
    scale = cfg.total_counts / float(expected.sum())
    gen = torch.Generator().manual_seed(cfg.seed)
    counts = PoissonNoise(normalize=False)(expected * scale, generator=gen)
    truth_counts = truth * scale

    rec_acpsf = osem(proj_full, counts, cfg.iterations, cfg.subsets, progress=progress)
    proj_plain = SPECTProjector(angles, cfg.voxel_mm, object_shape=shape)
    rec_noac = osem(proj_plain, counts, cfg.iterations, cfg.subsets, progress=progress)

    body = ph["mu"] > 0
    myo = ph["myocardium"]
    t_true, t_ac, t_no = truth_counts[0, 0], rec_acpsf[0, 0], rec_noac[0, 0]
    metrics = {
        "total_counts": float(counts.sum()),
        "nrmse_body_acpsf": _nrmse(t_ac, t_true, body),
        "nrmse_body_noac": _nrmse(t_no, t_true, body),
        "recovery_myo_acpsf": float(t_ac[myo].mean() / t_true[myo].mean()),
        "recovery_myo_noac": float(t_no[myo].mean() / t_true[myo].mean()),
        "seconds": None,
        "config": asdict(cfg),
    }
    idx = myo.nonzero().float().mean(0).round().long().tolist()
    aff = _affine_ras(shape, cfg.voxel_mm)
    with staged_directory(output, overwrite) as tmp:
        _save_nifti(tmp / "recon_osem_acpsf.nii.gz", t_ac, aff)
        _save_nifti(tmp / "recon_osem_noac.nii.gz", t_no, aff)
        _save_nifti(tmp / "truth.nii.gz", t_true, aff)
        _save_nifti(tmp / "projections.nii.gz", counts[0, 0], np.eye(4))
        _figure(tmp / "demo.png", t_true, t_no, t_ac, counts[0, 0], idx, metrics)
        metrics["seconds"] = round(time.perf_counter() - t0, 2)
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def run_bundle_demo(output: str | Path, dose: float = 0.1, samples: int = 2, steps: int | None = None, seed: int = 0,
                    quick: bool = False, progress: bool = True, overwrite: bool = False) -> dict:
    """The README's main job: simulate a low-dose SPECT/CT study as DICOM (the built-in demo study), run the
    ``spect_cardiac_diffusion`` bundle on it, and write DICOM, NIfTI, PNG and metrics to ``output``.

    The simulated truth (in the thinned acquisition's counts per voxel) goes to the bundle only for the PNG's
    reference column and the metrics; the reconstruction itself sees the DICOM files alone.
    """
    import tempfile

    from monai_diffrecon.bundles import run_bundle
    from monai_diffrecon.data.spect_study import simulate_spect_study
    from monai_diffrecon.io.staging import check_output

    check_output(output, (), overwrite)  # refused before the simulation

    size, voxel = (32, 12.0) if quick else (64, 6.0)
    with tempfile.TemporaryDirectory(prefix="diffrecon-demo-") as d:
        study = simulate_spect_study(Path(d) / "study", seed=seed, size=size, voxel_mm=voxel, views=60 if not quick else 16,
                                     total_counts=4e6 if not quick else 4e5, defect=True)
        truth = study.activity.double() * study.counts_per_unit  # full-dose units; the evaluator scales by dose
        overrides = {"input_dir": str(Path(d) / "study"), "output_dir": str(output), "dose_fraction": dose, "num_samples": samples,
                     "seed": seed, "progress": progress, "evaluator#truth": truth, "overwrite": overwrite}
        if steps is not None or quick:
            overrides["num_steps"] = 2 if quick and steps is None else steps
        if quick:
            overrides["inferer#init_iterations"] = 2
        metrics = run_bundle("spect_cardiac_diffusion", **overrides)
    return metrics[0]
