"""A classical coarse-to-fine blur-kernel estimate from one blurred image — the initial kernel of Blind-PnPDM
(arXiv 2505.22923's chains start from the data) and the kernel of the Wiener / Richardson–Lucy baselines.

Alternating minimisation on image gradients over an image pyramid, after Cho & Lee, "Fast motion deblurring"
(SIGGRAPH Asia 2009) and the multi-scale scheme of Levin et al. (CVPR 2011), without the shock filter:

1. image step: ``x = argmin ‖k ⊛ x − y‖² + λ‖∇x‖²`` (closed form with FFTs), then keep only the strongest gradients
   of ``x`` (the top ``keep`` fraction by magnitude — the sharp edges that carry the kernel's information);
2. kernel step: ``k = argmin Σ_d ‖∂_d x ⊛ k − ∂_d y‖² + β‖k‖²`` (closed form with FFTs) cropped to the support,
   clipped at 0, values below ``threshold × max`` zeroed, normalised to sum 1 and re-centred on its centroid;
3. coarse to fine: ``scales`` levels (factor 2), the kernel upsampled (bilinear) to start the next level, whose
   kernel is confined to that estimate's support dilated by ``dilate`` pixels.

Convolutions are periodic with the kernel centred at ``(kh // 2, kw // 2)``, as :class:`~monai_diffrecon.physics.Blur`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from monai_diffrecon.errors import InvalidValueError, ShapeError
from monai_diffrecon.physics.blur import Blur, centroid_shift, shift_kernel

__all__ = ["estimate_kernel"]


def _otf(k: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The transfer function of ``k`` on ``like``'s grid — :class:`Blur`'s own."""
    return Blur(k[None, None]).transfer_function(like[None, None])[0, 0]


def _grad_otfs(shape, dtype, device):
    dx = torch.zeros(shape, dtype=dtype, device=device)
    dy = torch.zeros(shape, dtype=dtype, device=device)
    dx[0, 0], dx[0, -1] = -1.0, 1.0
    dy[0, 0], dy[-1, 0] = -1.0, 1.0
    return torch.fft.fft2(dx), torch.fft.fft2(dy)


def _finish(k: torch.Tensor, threshold: float, support: torch.Tensor | None = None) -> torch.Tensor:
    k = k.clamp_min(0)
    if support is not None:
        k = k * support
    if float(k.max()) <= 0:
        k = torch.zeros_like(k)
        k[k.shape[0] // 2, k.shape[1] // 2] = 1.0
        return k
    k = torch.where(k >= threshold * k.max(), k, torch.zeros_like(k))
    k = shift_kernel(k, *centroid_shift(k))
    return k / k.sum()


def estimate_kernel(y: torch.Tensor, size: int, scales: int = 3, iters: int = 10, lam: float = 2e-3, beta: float = 10.0,
                    keep: float = 0.08, threshold: float = 0.25, dilate: int = 1) -> torch.Tensor:
    """Kernel ``(size, size)`` (non-negative, sum 1, centroid at the centre) of the blurred image ``y`` ``(H, W)``
    (module doc). ``lam``: image gradient weight; ``beta``: kernel ridge (relative to the mean gradient energy).

    The defaults were chosen on validation cases only (four training photographs, 128², camera-shake kernels of the
    validation seeds, 64² support, σ_y = 0.01) by ``benchmarks/kernel_estimate.py``, against the spectrally fitted
    Gaussian the natural-image baselines used (its results file)."""
    if y.ndim != 2:
        raise ShapeError(f"estimate_kernel: a 2D image (H, W) required, got {tuple(y.shape)}")
    if not (int(size) >= 3 and int(scales) >= 1 and int(iters) >= 1 and 0 < keep <= 1 and 0 <= threshold < 1):
        raise InvalidValueError(f"estimate_kernel: size ≥ 3, scales ≥ 1, iters ≥ 1, 0 < keep ≤ 1, 0 ≤ threshold < 1 required "
                                f"(got {size}, {scales}, {iters}, {keep}, {threshold})")
    y = y.to(torch.float64)
    k = None
    for s in reversed(range(int(scales))):
        f = 2**s
        ys = F.interpolate(y[None, None], scale_factor=1 / f, mode="area")[0, 0] if f > 1 else y
        ks = min(max(int(round(size / f)), 3), min(ys.shape))
        if k is None:
            k = torch.zeros(ks, ks, dtype=torch.float64, device=y.device)
            k[ks // 2, ks // 2] = 1.0
            support = None
        else:
            k = _finish(F.interpolate(k[None, None], size=(ks, ks), mode="bilinear", align_corners=False)[0, 0], 0.0)
            # the finer level searches near the coarser estimate: its support dilated by ``dilate`` pixels
            support = (F.max_pool2d((k > 0).to(torch.float64)[None, None], 2 * dilate + 1, 1, dilate)[0, 0] > 0).to(torch.float64)
        Y = torch.fft.fft2(ys)
        Dx, Dy = _grad_otfs(ys.shape, torch.float64, y.device)
        gy = [torch.fft.ifft2(D * Y).real for D in (Dx, Dy)]
        for _ in range(int(iters)):
            K = _otf(k, ys)
            X = K.conj() * Y / (K.abs() ** 2 + lam * (Dx.abs() ** 2 + Dy.abs() ** 2))
            gx = [torch.fft.ifft2(D * X).real for D in (Dx, Dy)]
            mag = torch.sqrt(gx[0] ** 2 + gx[1] ** 2)
            cut = torch.quantile(mag.flatten(), 1 - keep)
            gx = [g * (mag >= cut) for g in gx]
            GX = [torch.fft.fft2(g) for g in gx]
            num = sum(G.conj() * torch.fft.fft2(g) for G, g in zip(GX, gy))
            den = sum(G.abs() ** 2 for G in GX)
            full = torch.fft.ifft2(num / (den + beta * float(den.mean()))).real
            k = _finish(torch.roll(full, shifts=(ks // 2, ks // 2), dims=(-2, -1))[:ks, :ks], threshold, support)
    if k.shape[-1] != int(size):  # the finest level was capped by the image size
        out = torch.zeros(int(size), int(size), dtype=torch.float64, device=y.device)
        o = int(size) // 2 - k.shape[-1] // 2  # keeps the centre at (size // 2, size // 2)
        out[o:o + k.shape[-1], o:o + k.shape[-1]] = k
        k = out
    return k
