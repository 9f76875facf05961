"""Filtered back-projection for :class:`~monai_diffrecon.physics.ParallelBeamCT`.

``f = (π / V) Σ_v (q_v ⊛ h)(s_v(p))`` with the band-limited ramp filter ``h`` of Ramachandran & Lakshminarayanan
(spatial kernel ``h[0] = 1/(4τ²)``, ``h[n odd] = −1/(π n τ)²``, ``h[n even] = 0``, ``τ`` the bin pitch), optionally
apodised (Shepp–Logan, cosine, Hann) in frequency. The back-projection is the operator's exact adjoint rescaled
to the continuous back-projection integral. Angles must cover 180° (or 360°) uniformly.
"""

from __future__ import annotations

import math

import torch

from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.physics.base import check_tensor
from monai_diffrecon.physics.ct import ParallelBeamCT

__all__ = ["fbp", "ramp_filter"]


def ramp_filter(num_detectors: int, spacing: float, window: str = "ramp", dtype=torch.float64,
                device: torch.device | str = "cpu") -> torch.Tensor:
    """Frequency response (length ``P``, the zero-padded size) of the discrete ramp filter times ``τ``, on ``device``
    (computed in float64 on the CPU: the same filter on every device)."""
    P = 1 << int(math.ceil(math.log2(max(2 * num_detectors, 64))))
    n = torch.arange(P, dtype=torch.float64, device="cpu")
    n = torch.where(n > P // 2, n - P, n)
    h = torch.zeros(P, dtype=torch.float64, device="cpu")
    h[n == 0] = 1.0 / (4 * spacing**2)
    odd = (n.remainder(2) == 1)
    h[odd] = -1.0 / (math.pi * n[odd] * spacing) ** 2
    H = torch.fft.fft(h).real * spacing
    f = torch.fft.fftfreq(P, dtype=torch.float64, device="cpu")  # cycles per sample, |f| ≤ 0.5
    if window == "shepp-logan":
        H = H * torch.sinc(f)
    elif window == "cosine":
        H = H * torch.cos(math.pi * f)
    elif window == "hann":
        H = H * 0.5 * (1 + torch.cos(2 * math.pi * f))
    elif window != "ramp":
        raise InvalidValueError(f"window: expected ramp, shepp-logan, cosine or hann, got {window!r}")
    return H.to(device=device, dtype=dtype)


def fbp(op: ParallelBeamCT, sinogram: torch.Tensor, window: str = "ramp") -> torch.Tensor:
    """Reconstruct ``(B, 1, H, W[, S])`` from a parallel-beam sinogram ``(B, 1, V, D[, S])``."""
    y = check_tensor(sinogram, "sinogram", op.out_shape, complex_=False)
    D = op.num_detectors
    H = ramp_filter(D, op.detector_spacing, window, dtype=y.dtype, device=y.device)
    P = H.numel()
    yd = y.movedim(3, -1)  # detector axis last
    q = torch.fft.ifft(torch.fft.fft(yd, n=P, dim=-1) * H, dim=-1).real[..., :D].movedim(-1, 3)
    # adjoint ≈ (pixel_size / bins-per-pixel) Σ_v q_v(s): rescale to (π / V) Σ_v q_v(s)
    scale = math.pi / op.num_views * (op.detector_spacing / op.pixel_size) / op.pixel_size
    return scale * op.adjoint(q.contiguous())
