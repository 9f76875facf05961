"""Blind-PnPDM (arXiv 2505.22923): split-Gibbs posterior sampling of the image *and* the blur kernel.

Target ``π(x, z, φ, m | y) ∝ exp(−‖y − φ⊛z‖²/2σ² − ‖y − m⊛x‖²/2σ² − r_x(x) − r_φ(φ) − ‖x − z‖²/2ρ_x² − ‖φ − m‖²/2ρ_φ²)``.
Per iteration, with ρ_x, ρ_φ and the working noise σ annealed exponentially (``value_k = max(v₀·decay^k, v_min)``):

1. kernel prior step ``φ ~ p(φ) N(m; φ, ρ_φ²)``: the kernel diffusion model denoises ``m`` from level ρ_φ
   (:func:`~monai_diffrecon.samplers.pnp_dm.denoise_from_level`), in the prior's domain ``k̃ = 2k/s − 1``
   (``s = kernel_scale``), then ``k = clip((k̃ + 1)s/2, 0)/Σ`` (the PRISM code's post-processing);
2. image likelihood step ``z ~ N`` with precision ``H_φᵀH_φ/σ² + I/ρ_x²`` — exact, FFT closed form (:class:`Blur`);
3. image prior step ``x ~ p(x) N(z; x, ρ_x²)`` with the image diffusion model;
4. kernel likelihood step ``m ~ N`` with precision ``C_xᵀC_x/σ² + I/ρ_m²`` — the same Gaussian with x as the
   "kernel" (:class:`~monai_diffrecon.physics.KernelBlur`, CG on the kernel support; ``ρ_m = ρ_φ·s/2``).

Re-centring (``recenter=True``): blind deconvolution cannot tell ``(k, x)`` from ``(k shifted by d, x shifted by
−d)`` — both give the same ``y`` — so the chain drifts, and a kernel estimate 1–2 px off-centre costs the image a
shift (and PSNR against the reference). After each kernel prior step the kernel is shifted so that its centroid
sits at the support's centre ``(kh // 2, kw // 2)`` (integer shift, zero fill) and the image state is rolled by the
opposite shift (periodic, as :class:`Blur`), which leaves ``φ ⊛ x`` unchanged.

Initialisation from the data (the follow-up literature reports random starts fail): ``x₀ = y`` and ``m₀`` the kernel
of the operator passed in (e.g. a narrow Gaussian, or a coarse-to-fine classical estimate). After ``burn_in`` iterations the image and kernel states are
averaged: ``out.mean`` is the image, ``out.extras["kernel"]`` the kernel ``(B, 1, kh, kw)``.
"""

from __future__ import annotations

import torch

from monai_diffrecon.errors import ShapeError
from monai_diffrecon.physics.blur import Blur, KernelBlur, centroid_shift, shift_kernel
from monai_diffrecon.samplers.base import Sampler, check_sigma_y, data_scale
from monai_diffrecon.samplers.engine import DiffusionLoop, ddim_noise
from monai_diffrecon.samplers.pnp_dm import denoise_from_level, gaussian_likelihood_sample

__all__ = ["BlindPnPDM", "anneal", "kernel_from_prior"]


def kernel_from_prior(kt: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
    """A kernel from the kernel prior's domain ``k̃ = 2k/s − 1``: ``clip((k̃ + 1)/2, 0)`` (the factor s cancels), values
    below ``threshold × peak`` zeroed (0 = PRISM's clip only; a denoiser's small positive background, summed over a
    64² support, otherwise outweighs a thin motion path), normalised to sum 1. Differentiable (BlindDPS)."""
    k = ((kt + 1.0) / 2.0).clamp_min(0)
    if threshold > 0:
        k = torch.where(k > threshold * k.amax(dim=(-2, -1), keepdim=True), k, 0.0)
    return k / k.sum(dim=(-2, -1), keepdim=True).clamp_min(1e-12)


def anneal(v0: float, decay: float, vmin: float, k: int) -> float:
    """``max(v₀·decay^k, v_min)``."""
    return max(v0 * decay**k, vmin)


class BlindPnPDM(Sampler):
    """Args:
        prior: image diffusion prior. kernel_prior: kernel diffusion prior (1 channel, kernels at ``kernel_size``).
        kernel_size: ``(kh, kw)`` support (defaults to the operator's kernel). kernel_scale: s of the prior's domain
            ``k̃ = 2k/s − 1``: a number (PRISM), or ``"max"`` for each kernel's own peak (the project's kernel cohort).
        num_iters, burn_in: Gibbs iterations and how many to discard.
        rho: ``(ρ₀, decay, ρ_min)`` of the image coupling; default ``(w, 0.9, w/10)`` with w the half-width of
            ``data_range`` (PRISM: 1, 0.9, 0.1 for images in [−1, 1]).
        kernel_rho: the same for the kernel coupling in the prior's domain (PRISM: 50, 0.9, 10 — its kernels are
            normalised by their sum there; rescale for other conventions).
        sigma: ``(σ₀, decay, σ_min)`` of the working noise level; default ``(10 σ_y, 0.98, 1.6 σ_y)``, PRISM's
            (0.5, 0.98, 0.08) for its true σ_y = 0.05 scaled to the given ``sigma_y``: the likelihood steps start
            loose (the kernel is still wrong, so the residual is far above σ_y) and end a little above σ_y.
        prior_steps: reverse steps of a full-length prior step (scaled by t*/T). cg_iters: kernel likelihood CG.
        kernel_threshold: after the kernel prior step, zero the values below this fraction of the kernel's peak before
            normalising to sum 1 (0 = PRISM's clip at 0 only; blind-deconvolution codes commonly use 1/20: on a 64²
            support the denoiser's small positive background otherwise carries as much mass as a thin motion path).
        sigma_y: measurement noise std (data units); sets the default ``sigma`` (0.05: PRISM's setting, the previous
            fixed default).
        data_range: ``(lo, hi)`` of the image prior's data (default [−1, 1]); sets the default ``rho``.
        prior_spacing: timesteps of the prior steps, ``"uniform"`` (default, ``prior_steps·t*/T`` steps) or ``"edm"``
            (PnP-DM's EDM grid, more steps at small ρ); see
            :func:`~monai_diffrecon.samplers.pnp_dm.denoise_from_level`.
        recenter: keep the kernel's centroid at the support's centre, shifting the image to match (module doc).
    """

    def __init__(self, prior, kernel_prior, kernel_size: tuple[int, int] | None = None, kernel_scale: float | str = 0.05,
                 num_iters: int = 200, burn_in: int = 100, rho=None, kernel_rho=(1.0, 0.9, 0.2), sigma=None,
                 prior_steps: int = 50, cg_iters: int = 30, kernel_threshold: float = 0.0, sigma_y: float = 0.05,
                 data_range: tuple[float, float] = (-1.0, 1.0), prior_spacing: str = "uniform", recenter: bool = True) -> None:
        super().__init__(prior)
        self.kernel_prior = kernel_prior
        if kernel_scale != "max" and not (isinstance(kernel_scale, (int, float)) and kernel_scale > 0):
            raise ShapeError(f"kernel_scale: a positive number or 'max', got {kernel_scale!r}")
        self.kernel_size, self.kernel_scale = kernel_size, (kernel_scale if kernel_scale == "max" else float(kernel_scale))
        self.num_iters, self.burn_in = num_iters, burn_in
        self.sigma_y = check_sigma_y(sigma_y)
        w, r = data_scale(data_range), self.sigma_y / 0.05
        self.rho = (1.0 * w, 0.9, 0.1 * w) if rho is None else tuple(rho)
        self.sigma = (0.5 * r, 0.98, 0.08 * r) if sigma is None else tuple(sigma)
        self.kernel_rho, self.prior_spacing = tuple(kernel_rho), prior_spacing
        self.prior_steps, self.cg_iters, self.kernel_threshold = prior_steps, cg_iters, float(kernel_threshold)
        self.recenter = bool(recenter)
        self.loop = DiffusionLoop(prior, noise=ddim_noise(1.0))
        self.kernel_loop = DiffusionLoop(kernel_prior, noise=ddim_noise(1.0))

    def _scale(self, k) -> float:
        """s of the prior domain ``k̃ = 2k/s − 1``: the fixed ``kernel_scale``, or with ``"max"`` the kernel's own peak
        (the domain the project's kernel cohort is stored in: every training kernel has k̃_max = 1)."""
        return float(k.amax().clamp_min(1e-12)) if self.kernel_scale == "max" else self.kernel_scale  # B = 1 in "max" mode

    def _to_prior(self, k):
        return 2.0 * k / self._scale(k) - 1.0

    def _from_prior(self, kt):
        return kernel_from_prior(kt, self.kernel_threshold)

    @staticmethod
    def _recentre(phi, *images):
        """Each sample's kernel moved to the centre, its ``images`` (the chain's state, and after burn-in the running
        sums of the posterior mean and second moment) rolled the opposite way (``φ ⊛ x`` unchanged); samples already
        centred are left bit-identical. Returns ``(phi, *images)``."""
        ks, outs = [], [[] for _ in images]
        for b in range(phi.shape[0]):
            dy, dx = centroid_shift(phi[b])
            if (dy, dx) == (0, 0):
                ks.append(phi[b])
                for o, im in zip(outs, images):
                    o.append(im[b])
                continue
            k = shift_kernel(phi[b], dy, dx)
            ks.append(k / k.sum().clamp_min(1e-12))  # mass pushed past the support's edge (rare) is renormalised
            for o, im in zip(outs, images):
                o.append(torch.roll(im[b], shifts=(-dy, -dx), dims=(-2, -1)))
        return (torch.stack(ks), *(torch.stack(o) for o in outs))

    def initialise(self, y, operator):
        """The image chain starts at the blurred measurement itself (``x₀ = y``)."""
        return y

    def sample_one(self, y, operator, generator, counter, progress, init=None):
        if not isinstance(operator, Blur) or y.ndim != 4:
            raise ShapeError("BlindPnPDM: y (B, C, H, W) and a Blur operator carrying the initial kernel are required")
        if self.kernel_scale == "max" and y.shape[0] != 1:
            raise ShapeError(f"BlindPnPDM: kernel_scale='max' takes one image at a time (each kernel's own peak), got a batch of {y.shape[0]}")
        k0 = operator.kernel.to(y.dtype)
        if k0.shape[0] != y.shape[0]:
            k0 = k0.expand(y.shape[0], *k0.shape[1:])
        k0 = k0.mean(dim=1, keepdim=True)
        if self.kernel_size is not None and tuple(k0.shape[-2:]) != tuple(self.kernel_size):
            raise ShapeError(f"BlindPnPDM: the operator's kernel is {tuple(k0.shape[-2:])}, kernel_size is {self.kernel_size}")
        x, m = y.clone(), k0.clone()
        acc_x = acc_x2 = acc_k = None
        kept = 0
        for k in range(self.num_iters):
            rho_x, rho_k, sig = anneal(*self.rho, k), anneal(*self.kernel_rho, k), anneal(*self.sigma, k)
            phi = self._from_prior(denoise_from_level(self.kernel_loop, self._to_prior(m), rho_k, self.prior_steps,
                                                      generator, counter, spacing=self.prior_spacing))
            if self.recenter and acc_x is None:  # per sample (B = 1 in "max" mode)
                phi, x = self._recentre(phi, x)
            elif self.recenter:  # after burn-in the running sums move with the chain, so the mean is of one frame
                phi, x, acc_x, acc_x2 = self._recentre(phi, x, acc_x, acc_x2)
            z = gaussian_likelihood_sample(x, y, Blur(phi), rho_x, sig, generator)
            x = denoise_from_level(self.loop, z, rho_x, self.prior_steps, generator, counter,
                                   spacing=self.prior_spacing)
            rho_m = rho_k * self._scale(phi) / 2.0
            m = gaussian_likelihood_sample(phi, y, KernelBlur(x.detach(), tuple(phi.shape[-2:])), rho_m, sig, generator, self.cg_iters)
            if k >= self.burn_in:
                acc_x = x if acc_x is None else acc_x + x
                acc_x2 = x * x if acc_x2 is None else acc_x2 + x * x
                acc_k = phi if acc_k is None else acc_k + phi
                kept += 1
        if kept == 0:
            return x, None, None, {"kernel": phi}
        mean = acc_x / kept
        return x, mean, (acc_x2 / kept - mean * mean).clamp_min(0), {"kernel": acc_k / kept}
