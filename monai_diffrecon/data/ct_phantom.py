"""Random piecewise-constant CT phantoms for the sparse-view TV study (arXiv 2412.07718's CT experiment; SCICO's
examples use a "foam" phantom: a disc of material with round voids).

:func:`foam_phantom` draws, from a seed of the ``"ct"`` split (:mod:`monai_diffrecon.evaluation.splits`), a body disc
of attenuation 1 holding non-overlapping round voids (attenuation 0) and a few denser round inclusions (1.3–2.0),
rasterised with 4×4 supersampling so the edges are partial-volume, as a scanner sees them.
"""

from __future__ import annotations

import torch

from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.physics.functional.devices import rand

__all__ = ["foam_phantom"]


def foam_phantom(size: int, seed: int, voids: int = 40, inclusions: int = 4, supersample: int = 4) -> torch.Tensor:
    """A ``(1, 1, size, size)`` float32 phantom in ``[0, 2]`` (module doc), the same for the same ``seed``."""
    if int(size) < 16:
        raise InvalidValueError(f"size: must be ≥ 16, got {size}")
    g = torch.Generator().manual_seed(int(seed))
    n = int(size) * int(supersample)
    c = (torch.arange(n, dtype=torch.float64, device="cpu") + 0.5) / n * 2 - 1  # [-1, 1]
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    body_r = 0.9
    img = (xx**2 + yy**2 <= body_r**2).double()
    placed: list[tuple[float, float, float]] = []
    tries = 0
    want = int(voids) + int(inclusions)
    while len(placed) < want and tries < 200 * want:
        tries += 1
        r = float(0.03 + 0.09 * rand((1,), g, device="cpu")[0])
        cx, cy = (float(v) for v in (rand((2,), g, device="cpu") * 2 - 1) * (body_r - r - 0.02))
        if cx * cx + cy * cy > (body_r - r - 0.02) ** 2:
            continue
        if any((cx - px) ** 2 + (cy - py) ** 2 < (r + pr + 0.015) ** 2 for px, py, pr in placed):
            continue
        placed.append((cx, cy, r))
    for i, (cx, cy, r) in enumerate(placed):
        value = 0.0 if i < int(voids) else float(1.3 + 0.7 * rand((1,), g, device="cpu")[0])
        img[(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] = value
    img = torch.nn.functional.avg_pool2d(img[None, None], int(supersample))
    return img.float()
