"""First stage of a latent diffusion prior (RELD, arXiv 2503.22563): a MONAI ``AutoencoderKL`` trained on the same
patches as the pixel priors, with the shared trainer plumbing (optimiser, EMA, checkpoints, resume, DDP).

Loss ``‖Dec(z) − x‖₁ + w_KL · KL(N(μ, σ²) ‖ N(0, I))`` with ``z = μ + σ ε`` (MONAI's ``AutoencoderKL.forward``); the KL
term is summed over latent elements and averaged over the batch, ``w_KL`` small (10⁻⁶, as in MONAI's LDM tutorials) so
the latents stay close to a standard normal scale without blurring the reconstructions. No adversarial or perceptual
term (no offline perceptual network exists for this project). Batches: ``{"image": x}``.
"""

from __future__ import annotations

import torch

from monai_diffrecon.errors import TrainingError
from monai_diffrecon.training.dsm import DenoisingScoreTrainer

__all__ = ["AutoencoderTrainer", "kl_divergence"]


def kl_divergence(mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) summed over all but the batch axis, averaged over the batch."""
    kl = 0.5 * (mu.pow(2) + sigma.pow(2) - torch.log(sigma.pow(2).clamp_min(1e-12)) - 1)
    return kl.flatten(1).sum(1).mean()


class AutoencoderTrainer(DenoisingScoreTrainer):
    """``network``: an ``AutoencoderKL`` (``forward(x) → (reconstruction, μ, σ)``); ``scheduler`` unused (``None``)."""

    def __init__(self, network, scheduler=None, *args, kl_weight: float = 1e-6, **kwargs) -> None:
        if kl_weight < 0:
            raise TrainingError(f"kl_weight: must be ≥ 0, got {kl_weight}")
        super().__init__(network, scheduler, *args, **kwargs)
        self.kl_weight = float(kl_weight)

    def loss(self, batch: dict, generator: torch.Generator) -> torch.Tensor:
        x = batch["image"].float().to(self.device)
        recon, mu, sigma = self.model(x)
        return torch.nn.functional.l1_loss(recon, x) + self.kl_weight * kl_divergence(mu, sigma)
