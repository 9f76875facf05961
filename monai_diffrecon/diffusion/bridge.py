"""The Brownian-bridge marginal shared by the bridge trainers (SelfDB, DB-CR) and sampler (samplers/bridge.py)."""

from __future__ import annotations

import torch

__all__ = ["bridge_state"]


def bridge_state(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor, sigma_max: float, noise: torch.Tensor) -> torch.Tensor:
    """The bridge's marginal at time ``t`` (shape ``(B,)``, in [0, 1]) between ``x0`` (t = 0) and ``x1`` (t = 1):
    ``(1 − t) x₀ + t x₁ + σ_max √(t(1 − t)) ε`` — what the bridge trainers (SelfDB, DB-CR) regress from."""
    tt = t.reshape(-1, *([1] * (x0.ndim - 1))).to(x0.real.dtype)
    return (1 - tt) * x0 + tt * x1 + sigma_max * torch.sqrt(tt * (1 - tt)) * noise
