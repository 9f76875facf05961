"""The Brownian bridge shared by the bridge trainers (SelfDB, DB-CR) and sampler (samplers/bridge.py): its marginal
(:func:`bridge_state`) and the prior a bridge sampler is built from (:class:`BridgePrior`)."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from monai_diffrecon.errors import InvalidValueError

__all__ = ["bridge_state", "BridgePrior"]


def bridge_state(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor, sigma_max: float, noise: torch.Tensor) -> torch.Tensor:
    """The bridge's marginal at time ``t`` (shape ``(B,)``, in [0, 1]) between ``x0`` (t = 0) and ``x1`` (t = 1):
    ``(1 − t) x₀ + t x₁ + σ_max √(t(1 − t)) ε`` — what the bridge trainers (SelfDB, DB-CR) regress from."""
    tt = t.reshape(-1, *([1] * (x0.ndim - 1))).to(x0.real.dtype)
    return (1 - tt) * x0 + tt * x1 + sigma_max * torch.sqrt(tt * (1 - tt)) * noise


class BridgePrior(nn.Module):
    """A bridge network as a prior: ``x0(x_t, t, …)`` is its clean-endpoint estimate at bridge time ``t`` ∈ [0, 1]
    (t = 1 the degraded endpoint), what :func:`~monai_diffrecon.samplers.bridge.run_bridge` steps with. The network
    was trained with timesteps ``t·(T − 1)`` (``T = num_train_steps``, the trainer's scheduler length), so the scale
    belongs to the prior, not to each sampler. Subclasses (:class:`~monai_diffrecon.modalities.mri.SelfDBPrior`,
    :class:`~monai_diffrecon.modalities.satellite.DBCRPrior`) say what the condition is.

    Args:
        network: the trained bridge network (MONAI ``(x, timesteps, …)`` signature).
        num_train_steps: T of the training scheduler (1000 for the shipped bundles).
    """

    def __init__(self, network: nn.Module, num_train_steps: int = 1000) -> None:
        super().__init__()
        if isinstance(network, BridgePrior):
            raise InvalidValueError(f"network: a bare network expected, got a {type(network).__name__} (a prior)")
        if int(num_train_steps) < 2:
            raise InvalidValueError(f"num_train_steps: must be ≥ 2, got {num_train_steps}")
        self.network, self.num_train_steps = network, int(num_train_steps)

    def timesteps(self, t, batch: int, device) -> torch.Tensor:
        """Network timesteps ``t·(T − 1)`` ``(batch,)`` for a bridge time ``t``: a number, or a ``(B,)`` tensor."""
        if torch.is_tensor(t):
            return t * (self.num_train_steps - 1)
        return torch.full((batch,), float(t) * (self.num_train_steps - 1), device=device)

    def x0(self, x_t: torch.Tensor, t, *condition) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def wrap(cls, prior, num_train_steps: int | None = None) -> "BridgePrior":
        """``prior`` when it is a ``cls`` already (``num_train_steps``, if given, must agree); a bare network is
        wrapped as ``cls(network, num_train_steps or 1000)`` with a :class:`DeprecationWarning` — samplers accept it
        for one release (pass the prior instead)."""
        if isinstance(prior, cls):
            if num_train_steps is not None and int(num_train_steps) != prior.num_train_steps:
                raise InvalidValueError(f"num_train_steps={num_train_steps} disagrees with the prior's "
                                        f"{prior.num_train_steps}; set it on the {cls.__name__} only")
            return prior
        if not isinstance(prior, nn.Module) or isinstance(prior, BridgePrior):
            raise InvalidValueError(f"prior: a {cls.__name__} expected, got {type(prior).__name__}")
        warnings.warn(f"a bare network as `prior` is deprecated: pass "
                      f"{cls.__module__}.{cls.__name__}(network, num_train_steps)", DeprecationWarning, stacklevel=3)
        return cls(prior, 1000 if num_train_steps is None else num_train_steps)
