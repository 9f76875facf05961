"""PNG previews of the simulators' outputs (one figure per simulator, a grid of labelled panels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

__all__ = ["save_panels", "preview_spect_study", "preview_mri", "preview_natural", "preview_satellite"]


def save_panels(panels: list[tuple[str, np.ndarray, str] | None], path: str | Path, ncols: int = 4, title: str | None = None, dpi: int = 100,
                interpolation: str | None = None) -> Path:
    """Save ``[(title, 2D or HxWx3 array, cmap)]`` as a grid PNG; a ``None`` entry leaves its cell empty (to start a
    new row); ``interpolation="nearest"`` shows pixels as pixels (crops at full resolution)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(panels)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 3.2 * nrows + (0.4 if title else 0)), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, panel in zip(axes.flat, panels):
        if panel is None:
            continue
        name, img, cmap = panel
        arr = np.asarray(img)
        ax.imshow(arr, cmap=None if arr.ndim == 3 else cmap, interpolation=interpolation)
        ax.set_title(name, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def preview_spect_study(study, path: str | Path) -> Path:
    """Activity and μ through the ventricle, two projections, a sinogram, the low-dose (10 %) projection."""
    from monai_diffrecon.data.spect_study import thin_counts

    myo = study.myocardium.nonzero().float().mean(0).round().long().tolist() if bool(study.myocardium.any()) else [s // 2 for s in study.activity.shape]
    i, j, k = myo
    act, mu, c = _np(study.activity), _np(study.mu), _np(study.counts[0, 0])
    low = _np(thin_counts(study.counts, 0.1, torch.Generator().manual_seed(0))[0, 0])
    panels = [
        ("activity, transverse", act[:, :, k].T, "inferno"),
        ("activity, coronal", act[:, j, :].T[::-1], "inferno"),
        ("μ-map (cm⁻¹), transverse", mu[:, :, k].T, "gray"),
        ("μ-map, coronal", mu[:, j, :].T[::-1], "gray"),
        (f"counts, view 0 (θ={float(study.angles_deg[0]):.0f}°)", c[0].T[::-1], "gray"),
        (f"counts, view {c.shape[0] // 4} (θ={float(study.angles_deg[c.shape[0] // 4]):.0f}°)", c[c.shape[0] // 4].T[::-1], "gray"),
        (f"sinogram, slice {k}", c[:, :, k], "gray"),
        ("10 % dose (binomial thinning), view 0", low[0].T[::-1], "gray"),
    ]
    return save_panels(panels, path, 4, f"Simulated SPECT/CT study: {float(study.counts.sum()):.3g} counts, {c.shape[0]} views")


def preview_mri(sample, path: str | Path, index: int = 0) -> Path:
    """Ground truth (magnitude, phase), four coil maps, the mask, zero-filled and RSS images."""
    from monai_diffrecon.physics import MultiCoilMRI

    x = sample.image[index, 0]
    A = MultiCoilMRI(sample.maps, sample.mask)
    zf = A.adjoint(sample.kspace[index : index + 1])[0, 0]
    mask = _np(sample.mask.expand(1, 1, *x.shape)[0, 0])
    panels = [("|x| (truth)", _np(x.abs()), "gray"), ("phase(x)", _np(x.angle()), "twilight")]
    for c in range(min(4, sample.maps.shape[1])):
        panels.append((f"|S_{c}|", _np(sample.maps[0, c].abs()), "viridis"))
    panels += [("k-space mask", mask, "gray"), ("zero-filled SENSE-combined", _np(zf.abs()), "gray")]
    acc = x.numel() / float(sample.mask.expand(1, 1, *x.shape).sum())
    return save_panels(panels, path, 4, f"Simulated multi-coil MRI: {sample.maps.shape[1]} coils, R = {acc:.1f}, σ = {sample.sigma}")


def preview_natural(patches: torch.Tensor, kernels: list[torch.Tensor], path: str | Path) -> Path:
    """A few training patches, motion kernels, and a patch blurred by each kernel."""
    from monai_diffrecon.physics import Blur

    panels = [(f"patch {i}", _np(p[0]), "gray") for i, p in enumerate(patches[:4])]
    for i, k in enumerate(kernels[:4]):
        panels.append((f"motion kernel {i} (64×64)", _np(k), "magma"))
    for i, k in enumerate(kernels[:4]):
        img = patches[i % len(patches)][None]
        if img.shape[-1] >= k.shape[-1]:
            panels.append((f"patch {i % len(patches)} ⊛ kernel {i}", _np(Blur(k)(img)[0, 0]), "gray"))
    return save_panels(panels, path, 4, "Natural images (scikit-image) and camera-shake kernels")


def preview_satellite(scene: dict, path: str | Path) -> Path:
    """Clear and cloudy RGB, NIR, SAR VV/VH, cloud thickness, shadow and land cover."""

    def rgb(dn):
        a = _np(dn[[2, 1, 0]]).transpose(1, 2, 0) / 3000.0
        return np.clip(a, 0, 1)

    panels = [
        ("clear RGB (B4,B3,B2)", rgb(scene["clear"]), None),
        ("cloudy RGB", rgb(scene["cloudy"]), None),
        ("clear NIR (B8)", _np(scene["clear"][3]), "gray"),
        ("land cover (water/veg/soil/urban)", _np(scene["land_cover"]), "tab10"),
        ("SAR VV (dB)", _np(scene["sar"][0]), "gray"),
        ("SAR VH (dB)", _np(scene["sar"][1]), "gray"),
        ("cloud thickness τ", _np(scene["cloud"][0]), "Blues_r"),
        ("shadow", _np(scene["shadow"][0]), "gray_r"),
    ]
    return save_panels(panels, path, 4, "Synthetic optical + SAR scene with clouds and shadows")
