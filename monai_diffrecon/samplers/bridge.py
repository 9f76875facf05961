"""Diffusion-bridge sampling between a degraded endpoint (t = 1) and a clean endpoint (t = 0).

Generic over the state space (multi-coil k-space for SelfDB, images for the satellite DB-CR bundle). The bridge is
a Brownian bridge ``x_t = (1 − t) x₀ + t x₁ + σ_max √(t(1 − t)) ε``; a network predicts the clean endpoint
``x̂₀ = f(x_t, t)`` and one step from t to s < t samples the bridge between x̂₀ and x_t (InDI / DDB update):

    x_s = (s/t) x_t + (1 − s/t) x̂₀ + σ_max √(s (t − s)/t) ε.

One step from t = 1 is the direct (distortion-optimal) prediction; more steps add detail (the perception–distortion
trade-off of SelfDB). ``endpoint(x_t, t) → (x̂₀ state, image)`` is supplied by the method: it may apply data
consistency to x̂₀ (e.g. SelfDB replaces the acquired k-space lines).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from monai_diffrecon.diffusion.bridge import bridge_state
from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.physics.functional.devices import randn

__all__ = ["bridge_times", "bridge_state", "run_bridge"]


def bridge_times(num_steps: int, t_start: float = 1.0) -> list[float]:
    """``num_steps + 1`` times from ``t_start`` down to 0, evenly spaced."""
    if num_steps < 1 or not 0 < t_start <= 1:
        raise InvalidValueError(f"num_steps ≥ 1 and t_start in (0, 1] required, got {num_steps}, {t_start}")
    return [t_start * (1 - i / num_steps) for i in range(num_steps + 1)]


def run_bridge(x1: torch.Tensor, endpoint: Callable, num_steps: int, sigma_max: float, generator: torch.Generator,
               t_start: float = 1.0, noise: Callable | None = None, counter=None, progress: bool = False):
    """Run the bridge from the degraded state ``x1`` at ``t_start`` to t = 0; returns the last ``endpoint`` output
    (``(x̂₀ state, image)``). ``noise(shape, generator)`` draws ε in the state space on ``x1``'s device (default: real
    or complex standard normal like ``x1``, drawn on the generator's device)."""
    if noise is None:
        def noise(shape, g):
            if x1.is_complex():
                return torch.complex(randn(shape, g), randn(shape, g)).to(device=x1.device, dtype=x1.dtype)
            return randn(shape, g, dtype=x1.dtype, device=x1.device)
    times = bridge_times(num_steps, t_start)
    x_t = x1
    out = None
    for t, s in tqdm(list(zip(times[:-1], times[1:])), desc="bridge", disable=not progress, leave=False):
        out = endpoint(x_t, t)
        if counter is not None:
            counter += 1
        x0 = out[0]
        if s <= 0:
            break
        x_t = (s / t) * x_t + (1 - s / t) * x0
        if sigma_max > 0:
            x_t = x_t + sigma_max * (s * (t - s) / t) ** 0.5 * noise(x_t.shape, generator)
    return out
