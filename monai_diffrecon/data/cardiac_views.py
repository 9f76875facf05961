"""Standard cardiac views (short axis, vertical and horizontal long axis) of a myocardial-perfusion volume.

The left-ventricular long axis is estimated from the data: the volume is lightly smoothed, the connected region
above ``threshold`` of the maximum that contains the maximum (the myocardium; other hot organs such as the liver are
separate regions) is kept; the centre is its blood-pool cavity's centroid (the voxels its convex hull adds) and the
long axis the cavity's principal axis, or, for a short, wide ventricle whose cavity is near-spherical, the direction
from the cavity's centroid to the wall's; it points from the open base to the closed apex
(:func:`monai_diffrecon.metrics.lv_segmentation.segment_lv` does the same on an automatically chosen component).
Views are resampled with trilinear interpolation on a grid centred on the ventricle:

* SA (short axis): planes perpendicular to the long axis at the mid-ventricle;
* VLA (vertical long axis) and HLA (horizontal long axis): planes containing the long axis, one closer to the
  patient's vertical (Y, anterior–posterior) and the other orthogonal to it.

Axes are in the object's voxel-index frame (X left, Y posterior, Z superior). The ventricle is found with scipy on a
CPU copy; the axes and views are returned on the volume's device.
"""

from __future__ import annotations

import torch

__all__ = ["lv_axes", "cardiac_views"]


def lv_axes(volume: torch.Tensor, threshold: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """``(centre (3,), long axis unit vector (3,))`` in voxel coordinates of an ``(X, Y, Z)`` volume."""
    import numpy as np
    from scipy import ndimage

    from monai_diffrecon.physics.blur import Blur, gaussian_kernel

    v = volume.detach().double().cpu()
    sm = Blur(gaussian_kernel((0.7, 0.7, 0.7), size=(3, 3, 3), dtype=torch.float64))(v[None, None])[0, 0]
    mask = (sm > threshold * sm.max()).numpy()
    labels, _ = ndimage.label(mask)
    peak = np.unravel_index(int(torch.argmax(sm)), sm.shape)
    myo = labels == labels[peak]
    from monai_diffrecon.metrics.lv_segmentation import _long_axis

    c, axis, _ = _long_axis(myo, np.ones(3))
    return torch.from_numpy(c).to(volume.device), torch.from_numpy(axis).to(volume.device)


def _plane(volume: torch.Tensor, centre: torch.Tensor, u: torch.Tensor, v: torch.Tensor, half: int) -> torch.Tensor:
    dev = volume.device
    s = torch.arange(-half, half + 1, dtype=torch.float64, device=dev)
    pts = centre.to(dev) + s[:, None, None] * u.to(dev) + s[None, :, None] * v.to(dev)  # (n, n, 3) voxel coords
    size = torch.tensor(volume.shape, dtype=torch.float64, device=dev)
    grid = (2 * pts / (size - 1) - 1).flip(-1)  # grid_sample wants (x=W, y=H, z=D) = reversed axes
    out = torch.nn.functional.grid_sample(volume.double()[None, None], grid[None, None].to(torch.float64), mode="bilinear", align_corners=True)
    return out[0, 0, 0].float()


def cardiac_views(volume: torch.Tensor, centre: torch.Tensor | None = None, axis: torch.Tensor | None = None, half: int | None = None) -> dict[str, torch.Tensor]:
    """``{"SA": …, "VLA": …, "HLA": …}`` 2D views of an ``(X, Y, Z)`` volume (axes from :func:`lv_axes` if not given,
    so several volumes can share the axes of one reference)."""
    if centre is None or axis is None:
        centre, axis = lv_axes(volume)
    half = half or max(8, min(volume.shape) // 4)
    ref = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64, device=axis.device)  # anterior–posterior
    a = axis / axis.norm()
    p = ref - (ref @ a) * a
    if float(p.norm()) < 1e-6:
        p = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64, device=axis.device) - a[0] * a
    p = p / p.norm()
    q = torch.linalg.cross(a, p)
    return {  # display conventions: VLA with the apex to the right, HLA with the apex up
        "SA": _plane(volume, centre, p, q, half),
        "VLA": _plane(volume, centre, a, p, half).T,
        "HLA": _plane(volume, centre, a, q, half).flip(0),
    }
