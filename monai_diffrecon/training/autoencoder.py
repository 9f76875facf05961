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
from monai_diffrecon.training.dsm import DenoisingScoreTrainer, renamed_batches

__all__ = ["AutoencoderTrainer", "LatentSampler", "kl_divergence", "latent_scale"]


def kl_divergence(mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) summed over all but the batch axis, averaged over the batch."""
    kl = 0.5 * (mu.pow(2) + sigma.pow(2) - torch.log(sigma.pow(2).clamp_min(1e-12)) - 1)
    return kl.flatten(1).sum(1).mean()


class AutoencoderTrainer(DenoisingScoreTrainer):
    """``network``: an ``AutoencoderKL`` (``forward(x) → (reconstruction, μ, σ)``); ``scheduler`` unused (``None``)."""

    loss_label = "L1 + KL (autoencoder)"

    def __init__(self, network, scheduler=None, *args, kl_weight: float = 1e-6, **kwargs) -> None:
        if kl_weight < 0:
            raise TrainingError(f"kl_weight: must be ≥ 0, got {kl_weight}")
        super().__init__(network, scheduler, *args, **kwargs)
        self.kl_weight = float(kl_weight)

    def loss(self, batch: dict, generator: torch.Generator) -> torch.Tensor:
        x = batch["image"].float().to(self.device)
        recon, mu, sigma = self.model(x)
        return torch.nn.functional.l1_loss(recon, x) + self.kl_weight * kl_divergence(mu, sigma)


@torch.no_grad()
def latent_scale(autoencoder, images: torch.Tensor, batch_size: int = 256) -> float:
    """The latent diffusion scale factor ``1 / std(μ)`` over ``images`` (the posterior means of a trained first stage),
    so that the second stage sees latents of unit variance (the LDM convention); returned as a plain float to record
    in a bundle's metadata."""
    from monai_diffrecon.diffusion.prior import encode_mean

    if images.shape[0] < 2:
        raise TrainingError("latent_scale: needs at least two images")
    z = torch.cat([encode_mean(autoencoder, images[i:i + batch_size].float()) for i in range(0, images.shape[0], batch_size)])
    return float(1.0 / z.float().std().clamp_min(1e-12))


class LatentSampler:
    """Mini-batches of a pixel-space batch source mapped to the latent space of a frozen first stage:
    ``{"image": scale · μ(x)}`` (augmentation happens on the images, before encoding). Wraps e.g.
    :class:`~monai_diffrecon.training.TensorSampler` for training a latent :class:`DenoisingScoreTrainer`.

    Args:
        batches: ``batches(generator, batch_size) → {"image": x, …}`` (``sampler=``: its deprecated name, accepted
            for one release). autoencoder: the trained first stage (frozen here). scale: latent scale
            (:func:`latent_scale`).
    """

    def __init__(self, batches=None, autoencoder=None, scale: float = 1.0, sampler=None) -> None:
        if not scale > 0:
            raise TrainingError(f"scale: must be > 0, got {scale}")
        if autoencoder is None:
            raise TrainingError("LatentSampler: autoencoder (the trained first stage) is required")
        self.batches = renamed_batches(batches, sampler, "LatentSampler")
        self.autoencoder, self.scale = autoencoder.eval().requires_grad_(False), float(scale)

    @torch.no_grad()
    def __call__(self, generator: torch.Generator, batch_size: int) -> dict:
        from monai_diffrecon.diffusion.prior import encode_mean

        batch = dict(self.batches(generator, batch_size))
        batch["image"] = encode_mean(self.autoencoder, batch["image"].float()) * self.scale
        return batch
