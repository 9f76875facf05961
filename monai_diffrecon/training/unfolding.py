"""Diff-Unfolding training (arXiv 2505.11393): conditional denoising score matching through the
unrolled network, with a random forward operator drawn for every batch.

Loss: ``E_{x₀, A, n, t, ε} ‖D_θ(√ᾱ_t x₀ + √(1−ᾱ_t) ε, t, A x₀ + σ_y n, A) − x₀‖²`` (x₀-prediction; clean images are
available for this method). Because ``A`` is an argument of the network and changes every batch (masks of several
accelerations and patterns, blur kernels of several kinds), the network learns a prior that is not tied to one
operator — :class:`~monai_diffrecon.networks.unfolding.UnfoldedDenoiser` keeps the physics outside its weights.

Operator samplers return ``{"image": x₀, "y": y, "operator": A}`` and draw everything from the trainer's generator,
so checkpoint/resume stays exact (:class:`~monai_diffrecon.training.dsm.DenoisingScoreTrainer`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from monai_diffrecon.errors import TrainingError
from monai_diffrecon.physics.functional.devices import rand, randint, randn
from monai_diffrecon.training.dsm import DenoisingScoreTrainer

__all__ = ["UnfoldingTrainer", "MRIOperatorSampler", "BlurOperatorSampler"]


def _pick(seq: Sequence, generator: torch.Generator):
    return seq[int(randint(0, len(seq), (1,), generator))]


class MRIOperatorSampler:
    """Clean complex images → ``MultiCoilMRI ∘ ChannelsToComplex`` with a random Cartesian mask per batch.

    Args:
        images: ``(N, 1, H, W)`` complex coil-combined images (data units, peak ≈ 1).
        maps: ``(1 | N, C, H, W)`` coil maps.
        accelerations: R values drawn uniformly per batch. kinds: mask patterns (``"random"`` lines, ``"equispaced"``).
        center_lines: ACS lines — one number, or one per acceleration (at 128 columns, 20 ACS lines alone are R = 6.4,
            so R = 6 needs fewer). sigma: complex noise std per real component (data units). augment: random flips.
        shared_mask: one random mask for the whole batch (networks that take a single mask, e.g. MONAI's e2e-VarNet).
    """

    def __init__(self, images: torch.Tensor, maps: torch.Tensor, accelerations: Sequence[float] = (4, 6),
                 kinds: Sequence[str] = ("random",), center_lines: int | Sequence[int] = 20, sigma: float = 0.01,
                 augment: bool = True, shared_mask: bool = False) -> None:
        if not images.is_complex() or images.ndim != 4:
            raise TrainingError("images: complex (N, 1, H, W) expected")
        if maps.shape[0] not in (1, images.shape[0]):
            raise TrainingError("maps: first dimension must be 1 or match images")
        self.images, self.maps = images, maps.to(torch.complex64)
        self.accelerations, self.kinds = list(accelerations), list(kinds)
        acs = [int(center_lines)] * len(self.accelerations) if isinstance(center_lines, (int, float)) else [int(c) for c in center_lines]
        if len(acs) != len(self.accelerations):
            raise TrainingError("center_lines: one value, or one per acceleration")
        self.center_lines, self.sigma, self.augment, self.shared_mask = acs, float(sigma), augment, shared_mask

    def __call__(self, generator: torch.Generator, batch_size: int) -> dict:
        from monai_diffrecon.physics import ChannelsToComplex, MultiCoilMRI, equispaced_mask, random_lines_mask
        from monai_diffrecon.physics.functional.sense import complex_randn, complex_to_channels

        g = generator
        idx = randint(0, self.images.shape[0], (batch_size,), g)
        x = self.images[idx].to(torch.complex64)
        if self.augment:
            for dim in (-1, -2):
                flip = (rand(batch_size, g) < 0.5).reshape(-1, 1, 1, 1)
                x = torch.where(flip, x.flip(dim), x)
        maps = self.maps if self.maps.shape[0] == 1 else self.maps[idx]
        W = x.shape[-1]
        j = int(randint(0, len(self.accelerations), (1,), g))
        R, acs, kind = self.accelerations[j], self.center_lines[j], _pick(self.kinds, g)
        if kind == "random":
            n_masks = 1 if self.shared_mask else batch_size
            mask = torch.stack([random_lines_mask(W, R, acs, generator=g) for _ in range(n_masks)])
            mask = mask.expand(batch_size, *mask.shape[1:])
        elif kind == "equispaced":
            mask = equispaced_mask(W, int(R), acs, offset=int(randint(0, int(R), (1,), g)))
            mask = mask.reshape(1, 1, 1, W).expand(batch_size, 1, 1, W)
        else:
            raise TrainingError(f"kinds: 'random' or 'equispaced', got {kind!r}")
        mask = mask.reshape(batch_size, 1, 1, W).float()
        op = MultiCoilMRI(maps.expand(batch_size, -1, -1, -1), mask) @ ChannelsToComplex()
        x2 = complex_to_channels(x)
        y = op(x2)
        y = y + mask * self.sigma * complex_randn(y.shape, g)
        return {"image": x2, "y": y, "operator": op, "mask": mask}


class BlurOperatorSampler:
    """Clean real images → ``Blur`` with a random kernel per batch (Gaussian of random width, or camera shake).

    Args:
        images: ``(N, C, H, W)`` real images in [0, 1]. kernels: a bank ``(K, kh, kw)`` of normalised kernels to draw
            from (e.g. Gaussian and :func:`~monai_diffrecon.data.natural.motion_blur_kernel` kernels).
        sigma: noise std (or a tuple to draw from per batch).
    """

    def __init__(self, images: torch.Tensor, kernels: torch.Tensor, sigma: float | Sequence[float] = 0.02, augment: bool = True) -> None:
        if kernels.ndim != 3:
            raise TrainingError("kernels: (K, kh, kw) expected")
        self.images, self.kernels, self.augment = images.float(), kernels.float(), augment
        self.sigmas = [float(sigma)] if isinstance(sigma, (int, float)) else [float(s) for s in sigma]

    def __call__(self, generator: torch.Generator, batch_size: int) -> dict:
        from monai_diffrecon.physics import Blur

        g = generator
        idx = randint(0, self.images.shape[0], (batch_size,), g)
        x = self.images[idx]
        if self.augment:
            for dim in (-1, -2):
                flip = (rand(batch_size, g) < 0.5).reshape(-1, 1, 1, 1)
                x = torch.where(flip, x.flip(dim), x)
        k = self.kernels[randint(0, self.kernels.shape[0], (batch_size,), g)]
        op = Blur(k[:, None])
        sigma = _pick(self.sigmas, g)
        y = op(x) + sigma * randn(x.shape, g)
        return {"image": x, "y": y, "operator": op}


class UnfoldingTrainer(DenoisingScoreTrainer):
    """:class:`~monai_diffrecon.training.DenoisingScoreTrainer` with the conditional x₀ loss of Diff-Unfolding;
    the network is an :class:`~monai_diffrecon.networks.unfolding.UnfoldedDenoiser` and batches come from an
    operator sampler (:class:`MRIOperatorSampler`, :class:`BlurOperatorSampler`)."""

    loss_label = "x₀-MSE (conditional)"

    def loss(self, batch: dict, generator: torch.Generator) -> torch.Tensor:
        g = generator
        x0, y, op = batch["image"].float(), batch["y"], batch["operator"]
        B = x0.shape[0]
        t = randint(0, self.alphas_cumprod.numel(), (B,), g)
        noise = randn(x0.shape, g)
        a = self.alphas_cumprod[t].reshape(B, *([1] * (x0.ndim - 1)))
        x_t = (a.sqrt() * x0 + (1 - a).sqrt() * noise).to(self.device)
        pred = self.model(x_t, t.to(self.device), y.to(self.device), op.to(self.device))
        return torch.nn.functional.mse_loss(pred, x0.to(self.device))
