"""Distribution shift between two diffusion priors, estimated from their denoisers (arXiv 2505.11482).

Image domain (the paper's Eq. 4, with Tweedie ``∇log p_σ(x) = (D^p_σ(x) − x)/σ²``)::

    KL(p‖q) = ∫₀^∞ E_{x~p} ‖∇log p_σ(x_σ) − ∇log q_σ(x_σ)‖² σ dσ = ∫₀^∞ E ‖D^p_σ(x_σ) − D^q_σ(x_σ)‖² / σ³ dσ,
    x_σ = x + σ n.

Measurement domain (Theorem 1): only corrupted samples ``ȳ = P x̄`` of p are available, with a diagonal 0/1 selection
``P`` drawn per sample (inpainting pixel masks on the priors' coordinates, or, the paper's MRI case, Cartesian k-space
lines after an orthonormal transform ``V`` such as the 2D FFT: pass ``transform=(V, V⁻¹)``); noise is added where P
observes, ``ȳ_σ = ȳ + σ P n`` (``n = V n₀`` with white ``n₀`` in the image domain), the denoisers see ``V⁻¹ȳ_σ``, and
the score difference on the observed coordinates is re-weighted by ``W = E[P]^{-p}``::

    KL(p‖q) ≈ ∫₀^∞ E_{P, ȳ} ‖W P V (D^p_σ(V⁻¹ȳ_σ) − D^q_σ(V⁻¹ȳ_σ))‖² / σ³ dσ.

With ``V`` the FFT and real images, a mask symmetric under k → −k keeps ``V⁻¹ȳ_σ`` real (the inverse should return
the real part); for a stationary Gaussian the Fourier coefficients are independent up to those conjugate pairs, so the
estimate is exact there (``tests/metrics/test_shift_closed_form.py``).

**The weight's exponent.** A transcription of the paper's W reads ``E[P]^{-3/2}``. For independent coordinates
(any factorised p and q, e.g. the Gaussian case in ``tests/metrics/test_shift.py``) coordinate i is observed with
probability π_i, so ``E_P ‖P Δ‖²`` weights coordinate i by π_i and the exponent that returns the image-domain KL is
**1/2** (``W² = E[P]^{-1}``); ``E[P]^{-3/2}`` over-weights rarely observed coordinates by a further π_i^{-2}. The
closed-form test fails for 3/2 and passes for 1/2, so 1/2 is the default here (``power`` keeps the paper's value one
argument away). Where the paper's derivation differs (e.g. a noise scale that depends on P) is not resolved here.

``D^p`` and ``D^q`` are x₀-denoisers ``D(x_σ, σ)`` (``denoiser_from_prior`` wraps an ε-prediction
:class:`~monai_diffrecon.diffusion.DiffusionPrior` on the VE scale ``x_σ = x_t/√ᾱ_t``). The σ integral uses the
trapezoid rule on the grid given (the paper's code: the first 40 points of a 100-point linear grid 0.002 → 80).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from monai_diffrecon.errors import InvalidValueError, ShapeError
from monai_diffrecon.physics.functional.devices import randn_like

__all__ = ["ShiftEstimate", "kl_from_denoisers", "denoiser_from_prior", "default_sigmas", "read_measurements"]

Denoiser = Callable[..., torch.Tensor]  # D(x_σ, σ), or D(ȳ_σ, σ, P) with mask_aware


@dataclass
class ShiftEstimate:
    """``kl``: the integral; ``sigmas``, ``integrand``: the curve E‖W P ΔD‖²/σ³ it integrates (per σ); ``per_sample``:
    each sample's own integral (its noise draws averaged), whose mean is ``kl`` — for confidence intervals over samples."""

    kl: float
    sigmas: torch.Tensor
    integrand: torch.Tensor
    domain: str
    per_sample: torch.Tensor | None = None


def default_sigmas(n: int = 40, sigma_min: float = 0.002, sigma_max: float = 80.0, grid: int = 100) -> torch.Tensor:
    """The paper code's σ grid: the first ``n`` points of a ``grid``-point linear grid ``sigma_min → sigma_max``."""
    return torch.linspace(sigma_min, sigma_max, grid, dtype=torch.float64, device="cpu")[:n]


def kl_from_denoisers(denoise_p: Denoiser, denoise_q: Denoiser, samples: torch.Tensor, sigmas: torch.Tensor | None = None,
                      masks: torch.Tensor | None = None, power: float = 0.5, generator: torch.Generator | None = None,
                      noise_draws: int = 1, batch_size: int = 16, mask_mean: float | torch.Tensor | None = None,
                      transform: tuple[Callable, Callable] | None = None, mask_aware: bool = False) -> ShiftEstimate:
    """Estimate KL(p‖q) from ``samples`` of p: clean images (``masks=None``, image domain) or corrupted measurements
    ``ȳ = P x̄`` with their 0/1 ``masks`` (same shape, measurement domain; ``E[P]`` is the mask mean over samples).

    Args:
        denoise_p, denoise_q: ``D(x_σ, σ) → x̂₀`` of the two priors (p: the one the samples come from).
        sigmas: increasing σ grid (default :func:`default_sigmas`).
        power: the exponent p of ``W = E[P]^{-p}`` (module doc: 1/2 is exact for independent coordinates).
        noise_draws: noise realisations per sample and σ.
        mask_mean: ``E[P]`` when the masks' law is known (e.g. the keep probability of random pixel masks): then every
            sample's contribution is independent of the others (a bootstrap over samples is exact) and no coordinate
            needs to be observed in the sample at hand; default: the masks' mean over the samples.
        transform: ``(V, V⁻¹)``, an orthonormal transform and its inverse (module doc); ``samples`` and ``masks`` then
            live in V's domain (e.g. k-space), the denoisers in the image domain. Requires ``masks``.
        mask_aware: the denoisers are measurement-domain denoisers called as ``D(ȳ_σ, σ, P)`` (e.g. networks trained
            on such measurements, or :meth:`~monai_diffrecon.metrics.closed_form_priors.GaussianMixturePrior.denoise_observed`)
            rather than image denoisers applied to the zero-filled ``ȳ_σ``. Pixel masks only.
    """
    sig = (default_sigmas() if sigmas is None else torch.as_tensor(sigmas, dtype=torch.float64, device="cpu")).flatten()
    if sig.numel() < 2 or bool((sig <= 0).any()) or bool((sig[1:] <= sig[:-1]).any()):
        raise InvalidValueError("sigmas: at least two increasing positive values required")
    if samples.ndim < 2 or samples.shape[0] < 1:
        raise ShapeError(f"samples: (N, …) with N ≥ 1 required, got {tuple(samples.shape)}")
    if transform is not None and masks is None:
        raise InvalidValueError("transform: only for measurement-domain estimates (pass masks)")
    if mask_aware and (masks is None or transform is not None):
        raise InvalidValueError("mask_aware: pixel masks required (masks given, no transform)")
    if masks is not None:
        if masks.shape != samples.shape:
            raise ShapeError(f"masks {tuple(masks.shape)} must match samples {tuple(samples.shape)}")
        masks = (masks.real if masks.is_complex() else masks).to(samples.real.dtype)
        pi = masks.mean(dim=0, keepdim=True) if mask_mean is None else torch.as_tensor(mask_mean, dtype=masks.dtype, device=masks.device)
        if bool((pi <= 0).any()):
            raise InvalidValueError("masks: every coordinate must be observed in some sample (E[P] full rank, Assumption 1)")
        w2 = pi ** (-2 * power)
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    N = samples.shape[0]
    vals = torch.zeros(sig.numel(), dtype=torch.float64, device="cpu")
    each = torch.zeros(sig.numel(), N, dtype=torch.float64, device="cpu")  # per sample and σ
    for k, s in enumerate(sig.tolist()):
        acc = 0.0
        for _ in range(noise_draws):
            for i in range(0, N, batch_size):
                x = samples[i:i + batch_size]
                n = randn_like(x, g) / (2**0.5 if x.is_complex() else 1) if transform is None else None  # complex: E|n|² = 1
                if masks is None:
                    d = denoise_p(x + s * n, s) - denoise_q(x + s * n, s)
                    e = d.abs() ** 2
                elif transform is None:
                    m = masks[i:i + batch_size]
                    xs = x + s * m * n
                    d = m * (denoise_p(xs, s, m) - denoise_q(xs, s, m) if mask_aware else denoise_p(xs, s) - denoise_q(xs, s))
                    e = w2 * d.abs() ** 2
                else:
                    V, V_inv = transform
                    m = masks[i:i + batch_size]
                    img = V_inv(x + s * m * V(randn_like(V_inv(x).real, g)))
                    d = m * V(denoise_p(img, s) - denoise_q(img, s))
                    e = w2 * d.abs() ** 2
                acc += float(e.sum())
                each[k, i:i + x.shape[0]] += e.reshape(x.shape[0], -1).sum(dim=1).to(device="cpu", dtype=torch.float64)
        vals[k] = acc / (N * noise_draws) / s**3
    kl = float(torch.trapezoid(vals, sig))
    per_sample = torch.trapezoid(each / noise_draws / sig[:, None] ** 3, sig, dim=0)
    return ShiftEstimate(kl, sig, vals, "image" if masks is None else "measurement", per_sample)


def denoiser_from_prior(prior) -> Denoiser:
    """``D(x_σ, σ) = x_σ − σ ε̂`` of an ε-prediction :class:`~monai_diffrecon.diffusion.DiffusionPrior` on the VE scale:
    ε̂ at the continuous t with σ(t) = σ and ``x_t = √ᾱ x_σ`` (inside the schedule this is exactly
    ``x̂₀ = (x_t − √(1−ᾱ) ε̂)/√ᾱ``). Below the schedule's σ_lo (0.01 for the DDPM linear schedule; the paper's grid
    starts at 0.002) the step is extrapolated by Tweedie's small-σ limit, ε̂(σ) ≈ (σ/σ_lo)·ε̂(σ_lo), i.e.
    ``D = x − (σ²/σ_lo) ε̂(σ_lo)`` — a clamped σ would make ‖ΔD‖²/σ³ grow like σ_lo²/σ³, a σ·ε̂(σ_lo) step like 1/σ.
    Above σ_hi the denoiser at σ_hi is used (the integrand there is bounded)."""
    from monai_diffrecon.diffusion.schedule import alpha_bar_at, sigma_of_t, t_of_sigma

    ac = prior.scheduler.alphas_cumprod
    lo, hi = float(sigma_of_t(ac, 0.0)), float(sigma_of_t(ac, ac.numel() - 1))

    @torch.no_grad()
    def D(x_sigma: torch.Tensor, sigma: float) -> torch.Tensor:
        s = min(max(float(sigma), lo * (1 + 1e-9)), hi * (1 - 1e-9))
        t = t_of_sigma(ac, s)
        a = float(alpha_bar_at(ac, t))
        eps = prior.eps((a**0.5) * x_sigma, torch.full((x_sigma.shape[0],), float(t), device=x_sigma.device))
        step = float(sigma) ** 2 / s if float(sigma) < s else s  # Tweedie extrapolation below σ_lo; clamp above σ_hi
        return (x_sigma - step * eps).to(x_sigma.dtype)

    return D


def read_measurements(folder) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Corrupted measurements from a folder of ``*.npz`` files (sorted by name), each holding ``y`` and ``mask`` of one
    equal shape ``(C, H, W)`` (measurement domain), or only ``image`` (clean samples, image domain). Returns
    ``(samples (N, C, H, W), masks or None)``; every file must be of the same kind and shape.

    The selection must act on the priors' own coordinates (pixel masks, inpainting): :func:`kl_from_denoisers` applies
    the denoisers to ``ȳ`` directly. k-space masks need ``V`` (the Fourier transform) around the denoisers, which this
    reader does not add — complex data are refused."""
    from pathlib import Path

    import numpy as np

    files = sorted(Path(folder).glob("*.npz"))
    if not files:
        raise InvalidValueError(f"{folder}: no *.npz measurement files")
    ys, ms = [], []
    for f in files:
        try:
            with np.load(f, allow_pickle=False) as z:
                d = {k: z[k] for k in z.files}
        except Exception as e:  # noqa: BLE001 - any unreadable file is bad input
            raise InvalidValueError(f"{f}: not a readable .npz ({type(e).__name__}: {e})") from None
        if "y" in d:
            if "mask" not in d:
                raise InvalidValueError(f"{f}: 'y' without its 'mask'")
            y, m = d["y"], d["mask"]
            if y.shape != m.shape:
                raise ShapeError(f"{f}: y {y.shape} and mask {m.shape} differ")
            if not np.isin(m, (0, 1)).all():
                raise InvalidValueError(f"{f}: mask must be 0/1")
            if np.any((m == 0) & (y != 0)):
                raise InvalidValueError(f"{f}: y is non-zero where mask is 0 (unobserved entries must be zero)")
            ms.append(torch.from_numpy(m.astype(np.float32)))
        elif "image" in d:
            y = d["image"]
        else:
            raise InvalidValueError(f"{f}: needs 'y' and 'mask' (measurements) or 'image' (clean samples); has {sorted(d)}")
        if np.iscomplexobj(y):
            raise InvalidValueError(f"{f}: complex data (k-space?); give real image-domain measurements (see read_measurements)")
        if y.ndim != 3:
            raise ShapeError(f"{f}: expected (C, H, W), got {y.shape}")
        if not np.isfinite(y).all():
            raise InvalidValueError(f"{f}: contains NaN or Inf")
        if ys and y.shape != ys[0].shape:
            raise ShapeError(f"{f}: shape {y.shape} differs from {files[0].name}'s {tuple(ys[0].shape)}")
        ys.append(torch.from_numpy(np.asarray(y, dtype=np.float32)))
    if ms and len(ms) != len(ys):
        raise InvalidValueError(f"{folder}: mixes measurement files (y, mask) and clean files (image)")
    return torch.stack(ys), (torch.stack(ms) if ms else None)
