"""Score alignment (arXiv 2505.11482): adapt an out-of-distribution prior with corrupted
in-distribution measurements only.

The paper fine-tunes the OOD EDM denoiser on 64 or 128 corrupted images with the masked loss
``λ(σ) ‖(D(y + σ n) − y) ⊙ M‖²``: noise everywhere, error only where the measurement observes. For an ε-prediction
network on the DDPM scale, ``x_t = √ᾱ y + √(1 − ᾱ) n`` and ``D − y = √((1 − ᾱ)/ᾱ) (n − ε̂)``, so with the SNR
weight λ ∝ ᾱ/(1 − ᾱ) the loss is the masked ε-MSE ``‖M ⊙ (ε̂ − n)‖² / ‖M‖₁`` — what :func:`masked_eps_loss` computes.
The clean image is never used. A prior trained with another recipe (x₀/v prediction, EDM preconditioning, EDM's
λ(σ) and log-normal σ, see :mod:`monai_diffrecon.training.dsm`) is aligned with the same recipe's loss, masked
(:func:`masked_loss`; ``AlignConfig.prediction`` etc. must match the prior's training): for EDM this is the paper's
``λ(σ)‖(D(y + σn) − y) ⊙ M‖²``. Early stopping as in the paper's code: the loss on held-out corrupted measurements
(fixed noise), patience 3 epochs, minimum relative improvement 1e-3; the best weights are restored.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from monai_diffrecon.errors import ShapeError, TrainingError
from monai_diffrecon.physics.functional.devices import device_of, randint, randn, randperm

__all__ = ["AlignConfig", "masked_eps_loss", "masked_loss", "align_prior"]


@dataclass
class AlignConfig:
    lr: float = 1e-4
    batch_size: int = 4
    max_epochs: int = 64
    patience: int = 3
    min_delta: float = 1e-3
    val_fraction: float = 0.25
    seed: int = 0
    # the prior's training recipe (DSMConfig's fields of the same names); the defaults are the DDPM ε-MSE
    prediction: str = "epsilon"
    sigma_data: float = 0.5
    loss_weighting: str = "uniform"
    t_sampling: str = "uniform"
    p_mean: float = -1.2
    p_std: float = 1.2

    @property
    def default_recipe(self) -> bool:
        return (self.prediction, self.loss_weighting, self.t_sampling) == ("epsilon", "uniform", "uniform")


def masked_eps_loss(network, y: torch.Tensor, mask: torch.Tensor, alphas_cumprod: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Masked ε-MSE on corrupted measurements ``y`` (zero where ``mask`` is 0), ``t`` uniform over the schedule. The
    draws come from ``generator`` on its own device and are moved to ``y``'s (where the network must be)."""
    B = y.shape[0]
    t = randint(0, alphas_cumprod.numel(), (B,), generator)
    n = randn(y.shape, generator, dtype=y.dtype, device=y.device)
    a = alphas_cumprod[t.to(alphas_cumprod.device)].to(device=y.device, dtype=y.dtype).reshape(B, *([1] * (y.ndim - 1)))
    eps = network(a.sqrt() * y + (1 - a).sqrt() * n, t.to(y.device))
    return ((mask * (eps - n)) ** 2).sum() / mask.sum().clamp_min(1)


def masked_loss(network, y: torch.Tensor, mask: torch.Tensor, alphas_cumprod: torch.Tensor, generator: torch.Generator,
                config: AlignConfig) -> torch.Tensor:
    """The recipe's diffusion loss (``config``: prediction, loss weighting, t sampling) on corrupted measurements
    ``y``, counted only where ``mask`` observes; for the default recipe the same value and draws as
    :func:`masked_eps_loss`."""
    from monai_diffrecon.diffusion.parameterization import Parameterization
    from monai_diffrecon.diffusion.schedule import alpha_bar_at, sigma_of_t, t_of_sigma

    B, T = y.shape[0], alphas_cumprod.numel()
    if config.t_sampling == "uniform":
        t = randint(0, T, (B,), generator)
        a = alphas_cumprod[t.to(alphas_cumprod.device)]
    else:  # EDM's log-normal σ as continuous t, clamped to the schedule (as DenoisingScoreTrainer.draw_t)
        ac = alphas_cumprod.cpu()
        lo, hi = float(sigma_of_t(ac, 0.0)), float(sigma_of_t(ac, T - 1))
        sigma = torch.exp(config.p_mean + config.p_std * randn((B,), generator).double()).clamp(lo, hi)
        t = t_of_sigma(ac, sigma).clamp(0, T - 1).float()
        a = alpha_bar_at(ac, t)
    n = randn(y.shape, generator, dtype=y.dtype, device=y.device)
    a = a.to(device=y.device, dtype=y.dtype).reshape(B, *([1] * (y.ndim - 1)))
    p = Parameterization(config.prediction, config.sigma_data)
    x_t = a.sqrt() * y + (1 - a).sqrt() * n
    out = network(p.network_input(x_t, a), t.to(y.device))
    w = p.loss_weight(a, config.loss_weighting)
    return (w * (mask * (out - p.target(y, n, a))) ** 2).sum() / mask.sum().clamp_min(1)


def align_prior(network: torch.nn.Module, scheduler, measurements: torch.Tensor, masks: torch.Tensor, config: AlignConfig | None = None) -> dict:
    """Fine-tune ``network`` (ε-prediction, ``(x, t)``) in place on corrupted ``measurements`` with their ``masks``;
    returns ``{"epochs", "best_val", "val_curve"}``. A quarter of the measurements (``val_fraction``) is held out for
    early stopping."""
    cfg = config or AlignConfig()
    if measurements.shape != masks.shape or measurements.ndim != 4:
        raise ShapeError(f"measurements and masks: equal (N, C, H, W) shapes required, got {tuple(measurements.shape)}, {tuple(masks.shape)}")
    N = measurements.shape[0]
    n_val = max(1, int(round(cfg.val_fraction * N)))
    if N - n_val < 1:
        raise TrainingError(f"align_prior: {N} measurements leave none for training after {n_val} held out")
    g = torch.Generator().manual_seed(cfg.seed)
    perm = randperm(N, g)
    tr, va = perm[n_val:], perm[:n_val]
    ac = torch.as_tensor(scheduler.alphas_cumprod, dtype=torch.float32, device="cpu")
    dev = device_of(network, measurements)  # the data go where the network is
    y, m = measurements.float().to(dev), masks.float().to(dev)
    opt = torch.optim.Adam(network.parameters(), lr=cfg.lr)
    loss_fn = masked_eps_loss if cfg.default_recipe else (lambda net, yy, mm, acs, gen: masked_loss(net, yy, mm, acs, gen, cfg))

    def val_loss() -> float:
        network.eval()
        with torch.no_grad():
            gv = torch.Generator().manual_seed(cfg.seed + 1)  # the same noise every epoch
            out = float(sum(loss_fn(network, y[va[i:i + cfg.batch_size]], m[va[i:i + cfg.batch_size]], ac, gv)
                            for i in range(0, n_val, cfg.batch_size)))
        network.train()
        return out

    best, best_state, curve, bad = val_loss(), copy.deepcopy(network.state_dict()), [], 0
    curve.append(best)
    epoch = 0
    for epoch in range(1, cfg.max_epochs + 1):
        order = tr[randperm(tr.numel(), g)]
        for i in range(0, order.numel(), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            loss = loss_fn(network, y[idx], m[idx], ac, g)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        v = val_loss()
        curve.append(v)
        if v < best * (1 - cfg.min_delta):
            best, best_state, bad = v, copy.deepcopy(network.state_dict()), 0
        else:
            bad += 1
            if bad >= cfg.patience:
                break
    network.load_state_dict(best_state)
    return {"epochs": epoch, "best_val": best, "val_curve": curve}
