"""Simulated myocardial-perfusion SPECT/CT study, written as DICOM (the project's built-in demo study).

:func:`simulate_spect_study` draws a patient from :func:`~monai_diffrecon.data.spect_phantom.cardiac_phantom`,
projects it through :class:`~monai_diffrecon.physics.SPECTProjector` (attenuation + depth-dependent collimator
response, dual-head 360° step-and-shoot, body-contour (elliptical) orbit), adds Compton scatter to the photopeak
(:func:`~monai_diffrecon.physics.scatter.photopeak_scatter`, ≈ 30 % scatter fraction) and the scatter windows of a
triple- or dual-energy-window acquisition (:func:`~monai_diffrecon.physics.scatter.simulate_scatter_acquisition`,
the code path the training cohorts share), draws Poisson counts at a full-dose level, and writes

* an NM Image Storage TOMO file (2 detectors; energy windows ``EM`` photopeak 126.45–154.55 keV plus, for
  ``scatter="tew"``, ``LSC`` 120.0–126.45 and ``USC`` 154.55–161.0 keV, for ``scatter="dew"``, ``SC`` 92.0–125.0 keV;
  ``"none"``: the photopeak only, without scatter), readable by :func:`monai_diffrecon.io.read_nm_projections`
  (scatter estimate: :func:`monai_diffrecon.io.dicom.estimate_scatter`);
* an axial CT series (HU from the μ-map through the inverse of the bilinear model) on a finer, shifted grid, so
  the CT → SPECT-grid resampling is exercised.

Low dose is simulated by binomial thinning of the counts (:func:`thin_counts`, 1–50 %), few-view acquisitions by
view subsets (:func:`few_view_indices`). Everything is deterministic given ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from monai_diffrecon.data.spect_phantom import cardiac_phantom, grid_affine_lps
from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.physics import LEHR, CollimatorPSF, SPECTProjector
from monai_diffrecon.physics.functional.devices import binomial, rand, randint
from monai_diffrecon.physics.scatter import TC99M_PHOTOPEAK, simulate_scatter_acquisition

__all__ = ["SPECTStudy", "simulate_spect_study", "thin_counts", "few_view_indices", "study_geometry"]


@dataclass
class SPECTStudy:
    """Paths and ground truth of a simulated study (truth on the SPECT grid, counts before the DICOM round trip)."""

    nm_file: Path
    ct_folder: Path
    activity: torch.Tensor  # (X, Y, Z) relative activity
    mu: torch.Tensor  # (X, Y, Z) cm⁻¹
    myocardium: torch.Tensor  # (X, Y, Z) bool
    expected: torch.Tensor  # (1, 1, V, X, Z) expected photopeak counts, primary + scatter (sorted views)
    counts: torch.Tensor  # (1, 1, V, X, Z) Poisson photopeak counts
    angles_deg: torch.Tensor  # (V,) projector angles
    radii_mm: torch.Tensor  # (V,)
    affine_lps: np.ndarray
    voxel_mm: float
    psf: CollimatorPSF
    counts_per_unit: float  # expected full-dose primary counts = counts_per_unit · P(activity)
    primary: torch.Tensor | None = None  # (1, 1, V, X, Z) expected primary (unscattered) photopeak counts
    scatter: torch.Tensor | None = None  # (1, 1, V, X, Z) expected photopeak scatter counts (zeros for "none")
    window_counts: dict[str, torch.Tensor] = field(default_factory=dict)  # scatter windows' Poisson counts
    scatter_estimate: torch.Tensor | None = None  # (1, 1, V, X, Z) TEW/DEW estimate from window_counts
    scatter_method: str = "none"  # "tew" | "dew" | "none"


def study_geometry(views: int, detectors: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """DICOM angles ``α[d, v]`` (CC rotation, heads opposed) and the matching projector angles ``θ = α + 180``."""
    per = views // detectors
    step = 360.0 / views
    alpha = np.array([[(d * 360.0 / detectors + v * step) % 360.0 for v in range(per)] for d in range(detectors)])
    return alpha, (alpha + 180.0) % 360.0


def thin_counts(counts: torch.Tensor, fraction: float, generator: torch.Generator) -> torch.Tensor:
    """Low-dose counts by binomial thinning: each detected photon is kept with probability ``fraction``.

    Thinning a Poisson(λ) count gives exactly Poisson(fraction·λ), so this is a faithful low-dose acquisition.
    """
    if not 0 < fraction <= 1:
        raise InvalidValueError(f"fraction: must be in (0, 1], got {fraction}")
    c = counts.to(torch.float64)
    return binomial(c, torch.full_like(c, fraction), generator).to(counts.dtype)


def few_view_indices(num_views: int, keep: int) -> torch.Tensor:
    """``keep`` views spread evenly over ``num_views`` (the same rule as :meth:`SPECTProjector.few_view`)."""
    if not 1 <= keep <= num_views:
        raise InvalidValueError(f"keep: must be in [1, {num_views}], got {keep}")
    return torch.floor(torch.arange(keep, dtype=torch.float64, device="cpu") * num_views / keep).long()


def simulate_spect_study(
    out_dir: str | Path,
    seed: int = 0,
    size: int = 64,
    voxel_mm: float = 6.0,
    views: int = 64,
    total_counts: float = 4.0e6,
    psf: CollimatorPSF = LEHR,
    defect: bool | None = None,
    randomize: bool = True,
    scatter: str = "tew",
) -> SPECTStudy:
    """Simulate and write a study (see module doc); returns paths and the ground truth.

    Args:
        out_dir: folder receiving ``NM_TOMO_*`` and ``CT_*`` series folders.
        seed: drives anatomy, defect and noise.
        size, voxel_mm: SPECT grid ``size³`` with isotropic voxels (FOV ≥ 350 mm recommended).
        views: total views over 360° (split over two opposed heads).
        total_counts: expected photopeak counts (primary + scatter) of the full-dose acquisition.
        defect: perfusion defect on/off; ``None`` draws it (50 %).
        randomize: random anatomy (``False``: the reference phantom).
        scatter: ``"tew"`` (photopeak scatter, windows LSC/USC), ``"dew"`` (photopeak scatter, window SC) or
            ``"none"`` (no scatter, photopeak window only).
    """
    from monai_diffrecon.io.dicom import mu_to_hu
    from monai_diffrecon.io.dicom_write import EnergyWindow, StudyInfo, UIDFactory, write_ct_series, write_nm_tomo

    if views % 2:
        raise InvalidValueError("views: must be even (two opposed heads)")
    if scatter not in ("tew", "dew", "none"):
        raise InvalidValueError(f"scatter: 'tew', 'dew' or 'none', got {scatter!r}")
    g = torch.Generator().manual_seed(seed)
    has_defect = bool(rand((), g) < 0.5) if defect is None else defect
    anat_seed = int(randint(0, 2**62, (1,), g))
    shape = (size, size, size)
    ph = cardiac_phantom(shape, voxel_mm, has_defect, torch.Generator().manual_seed(anat_seed) if randomize else None)
    alpha, theta = study_geometry(views)
    per = views // 2
    # body-contour orbit: elliptical, 20 mm closer at the lateral views than at anterior/posterior
    radii_dv = 250.0 - 20.0 * np.abs(np.sin(np.deg2rad(alpha)))
    order = np.argsort(theta.reshape(-1), kind="stable")
    th_sorted = torch.from_numpy(theta.reshape(-1)[order])
    radii_sorted = torch.from_numpy(radii_dv.reshape(-1)[order])
    P = SPECTProjector(th_sorted, voxel_mm, ph["mu"], psf, radii_mm=radii_sorted)
    acq = simulate_scatter_acquisition(P, ph["activity"], ph["mu"], voxel_mm, None, g, scatter, photopeak_total=total_counts)
    counts_per_unit = acq["counts_scale"]
    expected = (acq["primary"] + acq["scatter"]).double()
    counts = acq["counts"]

    # frames in DICOM order: (window, detector, view), each frame (rows = axial head→feet, cols = bins)
    inv = np.empty_like(order)
    inv[order] = np.arange(order.size)

    def frames(c: torch.Tensor) -> np.ndarray:
        v = c[0, 0].numpy()  # (V, X, Z)
        f = np.stack([v[inv[d * per + k]].T[::-1, :] for d in range(2) for k in range(per)])
        return f.reshape(2, per, size, size)

    stack = np.stack([frames(counts), *[frames(c) for c in acq["windows"].values()]])  # (W, D, V, rows, cols)
    if stack.max() > 65535:
        raise InvalidValueError("total_counts too high for 16-bit frames")
    aff = grid_affine_lps(shape, voxel_mm)
    z_top = aff[2, 3] + (size - 1) * voxel_mm
    study = StudyInfo(seed=seed, patient_id=f"SIM{seed:05d}")
    for_uid = UIDFactory("frame-of-reference", seed)("for")
    out = Path(out_dir)
    nm_files = write_nm_tomo(
        stack, 0.0, 360.0 / views, "CC", radii_dv, (voxel_mm, voxel_mm), [0.0, 0.0, z_top], out, study, for_uid,
        windows=tuple(EnergyWindow(*w) for w in (TC99M_PHOTOPEAK, *acq["window_ranges"].values())), detectors=2,
    )
    # CT: finer in-plane grid, different slice thickness, shifted centre, same anatomy (same anatomy seed)
    ct_shape = (int(size * voxel_mm / 4.0), int(size * voxel_mm / 4.0), int(size * voxel_mm / 5.0))
    ct_center = (1.5, -2.0, 2.5)
    ct_ph = cardiac_phantom(ct_shape, (4.0, 4.0, 5.0), has_defect, torch.Generator().manual_seed(anat_seed) if randomize else None, center_mm=ct_center)
    hu = mu_to_hu(ct_ph["mu"]).clamp(-1000, 3000)
    hu = torch.where(ct_ph["mu"] > 0, hu, torch.full_like(hu, -1000.0))
    ct_files = write_ct_series(hu.numpy(), grid_affine_lps(ct_shape, (4.0, 4.0, 5.0), ct_center), out, study, for_uid)
    return SPECTStudy(nm_files[0], ct_files[0].parent, ph["activity"], ph["mu"], ph["myocardium"], expected.float(),
                      counts.float(), th_sorted, radii_sorted, aff, voxel_mm, psf, counts_per_unit,
                      acq["primary"].float(), acq["scatter"].float(), {k: v.float() for k, v in acq["windows"].items()},
                      None if acq["estimate"] is None else acq["estimate"].float(), acq["method"])
