"""Training a plain Gaussian denoiser (:class:`~monai_diffrecon.networks.dncnn.DnCNN`) with the shared trainer plumbing.

Loss ``E_{σ, n} ‖D_θ(x + σ n, σ) − x‖²`` with σ ~ U(0, σ_max) per image — the classical "blind-range" denoiser
training (DnCNN / FFDNet), against which score-based PnP is compared. Batches: ``{"image": x}``
(e.g. :class:`~monai_diffrecon.training.TensorSampler` on the natural patch cohort, values in [−1, 1]).
"""

from __future__ import annotations

import torch

from monai_diffrecon.errors import TrainingError
from monai_diffrecon.physics.functional.devices import rand, randn
from monai_diffrecon.training.dsm import DenoisingScoreTrainer

__all__ = ["GaussianDenoiserTrainer"]


class GaussianDenoiserTrainer(DenoisingScoreTrainer):
    """:class:`~monai_diffrecon.training.DenoisingScoreTrainer` (optimiser, EMA, checkpoints, resume) with the
    denoising loss above; ``scheduler`` is unused (pass ``None``)."""

    loss_label = "denoising MSE"

    def __init__(self, network, scheduler=None, *args, sigma_max: float = 0.5, **kwargs) -> None:
        if sigma_max <= 0:
            raise TrainingError(f"sigma_max: must be > 0, got {sigma_max}")
        super().__init__(network, scheduler, *args, **kwargs)
        self.sigma_max = float(sigma_max)

    def loss(self, batch: dict, generator: torch.Generator) -> torch.Tensor:
        x = batch["image"].float()
        sigma = self.sigma_max * rand(x.shape[0], generator)
        noisy = x + sigma.reshape(-1, 1, 1, 1) * randn(x.shape, generator)
        return torch.nn.functional.mse_loss(self.model(noisy.to(self.device), sigma.to(self.device)), x.to(self.device))
