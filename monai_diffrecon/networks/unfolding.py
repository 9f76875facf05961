"""Diff-Unfolding (arXiv 2505.11393): a conditional denoiser built as an unrolled optimisation with the operator inside.

The network estimates ``D_θ(x_t, t, y, A) ≈ E[x₀ | x_t, y]`` by K unrolled steps on the composite problem

    min_x ½‖y − A x‖²/σ_y² + ‖x_t − √ᾱ_t x‖²/(2(1−ᾱ_t)) + r(x)

(our reconstruction from the paper's equations; its architecture is not public). Step k:

1. data + diffusion consistency, exact for the two quadratic terms plus a proximity term to the current prior
   estimate ``z_k`` with a learned precision ``ρ_k``: with ``λ_t = ᾱ_t/(1−ᾱ_t)`` (the precision of x given x_t),
   ``x_k = argmin ½‖Ax − y‖² + σ_y²(λ_t + ρ_k)/2 ‖x − c_k‖²``, ``c_k = (√ᾱ_t/(1−ᾱ_t) x_t + ρ_k z_k)/(λ_t + ρ_k)`` —
   i.e. ``operator.prox_l2(c_k, y, 1/(σ_y²(λ_t + ρ_k)))`` (closed form where the operator has one, else CG,
   differentiable either way);
2. learned prior block ``z_{k+1} = x_k + P_θ([x_k, √ᾱ_t x_t], t, k)``: a MONAI ``DiffusionModelUNet`` conditioned on
   the diffusion time (timestep embedding) and on the unroll index k (class embedding), weights shared across steps
   (or one network per step with ``shared=False``).

``z_0 = 0``; the output is ``z_K``. The operator is an argument of ``forward``, not a parameter, so a trained network
serves any :class:`~monai_diffrecon.physics.LinearOperator` with the training image shape (other masks,
accelerations, blur kernels) without retraining.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.networks.unet import diffusion_unet
from monai_diffrecon.physics.functional.devices import device_of

__all__ = ["UnfoldedDenoiser", "unfolded_denoiser"]


class UnfoldedDenoiser(nn.Module):
    """``D_θ(x_t, t, y, A) → x̂₀`` (see module doc).

    Args:
        blocks: prior blocks ``P(x, t, class_labels=k)`` with ``2C`` input and ``C`` output channels — one shared
            network (``nn.ModuleList`` of length 1) or K networks.
        alphas_cumprod: the diffusion schedule's ᾱ (length T).
        num_unroll: K.
        sigma_y: measurement noise level in the data units the network is trained in.
        cg_iters: CG iterations for operators without a closed-form prox.
        rho_init: initial ρ_k (learned, kept positive through a log parametrisation).
    """

    def __init__(self, blocks: nn.ModuleList, alphas_cumprod: torch.Tensor, num_unroll: int = 3, sigma_y: float = 0.01,
                 cg_iters: int = 6, rho_init: float = 1.0) -> None:
        super().__init__()
        if num_unroll < 1:
            raise InvalidValueError(f"num_unroll: must be ≥ 1, got {num_unroll}")
        if len(blocks) not in (1, num_unroll):
            raise InvalidValueError(f"blocks: 1 shared or {num_unroll} per-step networks, got {len(blocks)}")
        if not sigma_y > 0:
            raise InvalidValueError(f"sigma_y: must be > 0, got {sigma_y}")
        self.blocks = blocks
        self.num_unroll, self.sigma_y, self.cg_iters = int(num_unroll), float(sigma_y), int(cg_iters)
        dev = device_of(blocks, alphas_cumprod)  # next to the prior blocks' weights
        self.log_rho = nn.Parameter(torch.full((num_unroll,), math.log(rho_init), device=dev))
        self.register_buffer("alphas_cumprod", torch.as_tensor(alphas_cumprod, dtype=torch.float32, device=dev).clone(), persistent=False)

    def alpha_bar(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        from monai_diffrecon.diffusion.schedule import alpha_bar_at

        a = alpha_bar_at(self.alphas_cumprod.double(), t).to(device=like.device, dtype=like.dtype)
        return a.reshape(-1, *([1] * (like.ndim - 1))) if a.ndim else a

    def forward(self, x_t: torch.Tensor, timesteps, y: torch.Tensor, operator) -> torch.Tensor:
        """``x_t (B, C, …)``, ``timesteps`` scalar or ``(B,)`` (continuous allowed), ``y`` in the operator's range."""
        B = x_t.shape[0]
        tt = torch.as_tensor(timesteps, dtype=torch.float32, device=x_t.device)
        tt = tt.expand(B) if tt.ndim == 0 else tt
        a = self.alpha_bar(tt, x_t)
        lam_t = a / (1 - a)
        pull = a.sqrt() / (1 - a) * x_t  # λ_t · (x_t/√ᾱ_t)
        s2 = self.sigma_y**2
        z = torch.zeros_like(x_t)
        for k in range(self.num_unroll):
            rho = self.log_rho[k].exp().to(x_t.dtype)
            prec = lam_t + rho
            centre = (pull + rho * z) / prec
            x = operator.prox_l2(centre, y, 1.0 / (s2 * prec), max_iter=self.cg_iters)
            block = self.blocks[k if len(self.blocks) > 1 else 0]
            labels = torch.full((B,), k, dtype=torch.long, device=x_t.device)
            z = x + block(torch.cat([x, a.sqrt() * x_t], dim=1), tt, class_labels=labels)
        return z


def unfolded_denoiser(alphas_cumprod: torch.Tensor, channels: int = 1, spatial_dims: int = 2, num_unroll: int = 3,
                      size: str = "tiny", shared: bool = True, sigma_y: float = 0.01, cg_iters: int = 6,
                      rho_init: float = 1.0) -> UnfoldedDenoiser:
    """An :class:`UnfoldedDenoiser` whose prior blocks are MONAI ``DiffusionModelUNet`` presets
    (:func:`~monai_diffrecon.networks.diffusion_unet`), ``2·channels → channels``, with K class embeddings."""
    n = 1 if shared else num_unroll
    blocks = nn.ModuleList(
        diffusion_unet(spatial_dims, 2 * channels, out_channels=channels, size=size, num_class_embeds=num_unroll) for _ in range(n)
    )
    # MONAI zero-initialises the UNet's output convolution, so every block starts as the identity on x_k
    return UnfoldedDenoiser(blocks, alphas_cumprod, num_unroll, sigma_y, cg_iters, rho_init)
