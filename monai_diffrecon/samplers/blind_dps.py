"""BlindDPS (Chung et al., "Parallel Diffusion Models of Operator and Image for Blind Inverse Problems",
arXiv 2211.10656): the blind diffusion baseline of Blind-PnPDM (arXiv 2505.22923).

Two reverse diffusions run in lockstep on one timestep grid — the image ``x_t`` under the image prior and the
kernel ``k_t`` under the kernel prior (in the kernel prior's domain ``k̃ = 2k/s − 1``, mapped to a kernel by
clipping at 0 and normalising to sum 1, as :class:`~monai_diffrecon.samplers.blind_pnpdm.BlindPnPDM`). At every step
both Tweedie estimates ``x̂₀(x_t)``, ``k̂₀(k_t)`` enter one residual ``‖y − k̂₀ ⊛ x̂₀‖`` whose gradient guides each
chain (DPS's normalised step, :func:`~monai_diffrecon.samplers.engine.dps_guidance`, with step sizes ``zeta`` and
``kernel_zeta``); each chain then takes the engine's step (:meth:`~monai_diffrecon.samplers.engine.DiffusionLoop.step`).
The chains start from noise (``init`` is not used; there is no progress bar); ``out.extras["kernel"]`` is the final
kernel. Unlike :func:`~monai_diffrecon.samplers.engine.dps_guidance` without ``sigma_y``, the last (noise-free) step
to x̂₀ takes no guidance step.
"""

from __future__ import annotations

import torch

from monai_diffrecon.errors import ShapeError
from monai_diffrecon.physics.blur import Blur
from monai_diffrecon.physics.functional.devices import randn
from monai_diffrecon.samplers.base import Sampler, data_scale
from monai_diffrecon.samplers.blind_pnpdm import kernel_from_prior
from monai_diffrecon.samplers.engine import DiffusionLoop, ddim_noise

__all__ = ["BlindDPS"]


class BlindDPS(Sampler):
    """Args:
        prior: image diffusion prior; kernel_prior: kernel diffusion prior (1 channel) on the same timestep range.
        kernel_size: ``(kh, kw)`` of the kernel (default: the operator's kernel's; the operator's kernel values are
            not used — both chains start from noise).
        num_steps: reverse steps (paper: 1000).
        zeta, kernel_zeta: DPS step sizes of the image and the kernel chain (paper: 0.3 each for [−1, 1] data);
            default ``0.3·w`` for the image (w the half-width of ``data_range``) and 0.3 for the kernel.
        eta: DDIM noise of both chains (1 = ancestral, the paper's).
        clip: clamp both x̂₀ to [−1, 1] (the priors' domain) before the step, as the reference code does.
        data_range: ``(lo, hi)`` of the image prior's data.
    """

    def __init__(self, prior, kernel_prior, kernel_size: tuple[int, int] | None = None, num_steps: int = 200,
                 zeta: float | None = None, kernel_zeta: float = 0.3, eta: float = 1.0, clip: bool = True,
                 data_range: tuple[float, float] = (-1.0, 1.0)) -> None:
        super().__init__(prior)
        self.kernel_prior, self.kernel_size = kernel_prior, kernel_size
        self.num_steps, self.clip = int(num_steps), bool(clip)
        self.zeta = 0.3 * data_scale(data_range) if zeta is None else float(zeta)
        self.kernel_zeta = float(kernel_zeta)
        self.loop = DiffusionLoop(prior, noise=ddim_noise(eta))
        self.kernel_loop = DiffusionLoop(kernel_prior, noise=ddim_noise(eta))

    def sample_one(self, y, operator, generator, counter, progress, init=None):
        if not isinstance(operator, Blur) or y.ndim != 4:
            raise ShapeError("BlindDPS: y (B, C, H, W) and a Blur operator (its kernel gives the kernel size) are required")
        B = y.shape[0]
        ks = tuple(self.kernel_size) if self.kernel_size is not None else tuple(operator.kernel.shape[-2:])
        x = randn(y.shape, generator, dtype=y.dtype, device=y.device)
        k = randn((B, 1, *ks), generator, dtype=y.dtype, device=y.device)
        steps = self.loop.timesteps(self.num_steps).tolist()
        for t, t_prev in zip(steps, steps[1:] + [-1.0]):
            a, a_prev = self.prior.alpha_bar(t, x), self.prior.alpha_bar(t_prev, x)
            ak, ak_prev = self.kernel_prior.alpha_bar(t, k), self.kernel_prior.alpha_bar(t_prev, k)
            with torch.enable_grad():
                x_in, k_in = x.detach().requires_grad_(True), k.detach().requires_grad_(True)
                x0 = (x_in - torch.sqrt(1 - a) * self.prior.eps(x_in, t)) / torch.sqrt(a)
                k0 = (k_in - torch.sqrt(1 - ak) * self.kernel_prior.eps(k_in, t)) / torch.sqrt(ak)
                r = Blur(kernel_from_prior(k0))(x0) - y
                norms = torch.linalg.vector_norm(r.reshape(B, -1), dim=1)
                gx, gk = torch.autograd.grad(norms.sum(), (x_in, k_in))
            if counter is not None:
                counter += 2
            x0, k0 = x0.detach(), k0.detach()
            if self.clip:
                x0, k0 = x0.clamp(-1, 1), k0.clamp(-1, 1)
            final = t_prev < 0
            x = self.loop.step(x, x0, a, a_prev, final, generator) - (0 if final else self.zeta * gx)
            k = self.kernel_loop.step(k, k0, ak, ak_prev, final, generator) - (0 if final else self.kernel_zeta * gk)
            x, k = x.detach(), k.detach()
        return x, None, None, {"kernel": kernel_from_prior(k)}
