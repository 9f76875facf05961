"""Multi-coil MRI preprocessing shared by the MRI samplers, trainers and workflow.

* :func:`acs_block`, :func:`acs_lines`: the contiguous fully sampled centre block (ACS) of a Cartesian line mask;
* :func:`acs_scale`: the data-only intensity scale every MRI network is trained and run with (training cohorts,
  :class:`~monai_diffrecon.workflows.MRIReconstruction`, the benchmarks);
* :func:`msm_x0`: MSM's clean-image estimate from a diffused partial measurement (trainer and sampler,
  arXiv 2505.11853);
* :func:`selfdb_predict` and :class:`SelfDBPrior`: SelfDB's image estimate from a bridge state (trainer and sampler,
  arXiv 2501.03430); :func:`subsample_lines`: its nested line sub-masks (the trainer's, and the sampler's
  training-matched endpoints).

Shapes: k-space complex ``(B, C, H, W)`` (coils C), coil maps complex ``(B|1, C, H, W)``, masks real ``(…, W)`` over
phase-encode lines; images complex ``(B, 1, H, W)``; the networks see images as 2 real channels (real, imaginary).
"""

from __future__ import annotations

import torch

from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.diffusion.bridge import BridgePrior
from monai_diffrecon.physics.functional.devices import rand
from monai_diffrecon.physics.functional.sense import channels_to_complex, complex_to_channels, sense_combine

__all__ = ["acs_block", "acs_lines", "acs_scale", "msm_x0", "selfdb_predict", "subsample_lines", "SelfDBPrior"]


def acs_block(mask: torch.Tensor) -> tuple[int, int] | None:
    """``(lo, hi)``, the first and last line of the contiguous sampled block around the centre line ``W//2`` of a
    line mask (any shape whose last axis is the W phase-encode lines; flattened), or ``None`` if the centre is not
    sampled."""
    m = mask.reshape(-1) > 0
    c = m.numel() // 2
    if not bool(m[c]):
        return None
    lo, hi = c, c
    while lo > 0 and m[lo - 1]:
        lo -= 1
    while hi < m.numel() - 1 and m[hi + 1]:
        hi += 1
    return lo, hi


def acs_lines(mask: torch.Tensor) -> int:
    """Width of the contiguous fully sampled block around the k-space centre (0 if the centre is not sampled)."""
    block = acs_block(mask)
    return 0 if block is None else block[1] - block[0] + 1


def acs_scale(kspace: torch.Tensor, maps: torch.Tensor, mask: torch.Tensor) -> float:
    """Intensity scale from the measured data alone: the maximum magnitude of the coil-combined image of the fully
    sampled centre block (ACS lines; the whole acquired k-space if the centre is not sampled). Training data and
    inference inputs are both divided by it, so networks see the same intensity range without any clean reference.
    ``kspace (…, C, H, W)``, ``maps (…, C, H, W)`` (complex; a missing batch axis is added), ``mask`` over W lines."""
    k = kspace if kspace.ndim == 4 else kspace[None]
    mp = maps if maps.ndim == 4 else maps[None]
    block = acs_block(mask)
    if block is None:
        return float(sense_combine(k, mp).abs().amax())
    acs = torch.zeros_like(mask.reshape(-1))
    acs[block[0]:block[1] + 1] = 1.0
    return float(sense_combine(k, mp, acs.reshape(1, 1, 1, -1).to(k.real.dtype)).abs().amax())


def _need_operator(operator, where: str) -> None:
    if torch.is_tensor(operator):
        raise InvalidValueError(f"{where}: pass the acquisition's MultiCoilMRI operator (coil maps and mask), not a coil-maps tensor "
                                "(e.g. MultiCoilMRI(maps, mask))")


def msm_x0(net, s_t: torch.Tensor, operator, t: torch.Tensor, a: torch.Tensor, parameterization=None) -> torch.Tensor:
    """MSM's clean-image estimate from the diffused partial measurement ``s_t`` (complex ``(B, C, H, W)``, zero off the
    mask): the network sees the zero-filled coil combination ``u = Aᴴ s_t = Sᴴ Fᴴ M s_t`` as 2 channels, and its output
    is read as ``parameterization`` says (default ε: ``x̂₀ = (u − √(1 − ᾱ_t) ε̂)/√ᾱ_t``; EDM: ``c_skip u/√ᾱ + c_out F``
    with the input ``c_in u/√ᾱ``) — complex ``(B, 1, H, W)``. ``net``: ``net(x, t) → output`` on 2-channel images (the
    trainer's network, or a prior's raw ``output``); ``operator``: the items'
    :class:`~monai_diffrecon.physics.MultiCoilMRI` (coil maps and 0/1 masks); ``t`` the timesteps; ``a`` = ᾱ_t
    broadcastable to the image."""
    from monai_diffrecon.diffusion.parameterization import Parameterization

    _need_operator(operator, "msm_x0")
    p = parameterization if parameterization is not None else Parameterization()
    u = complex_to_channels(operator.adjoint(s_t))
    out = net(p.network_input(u, a), t)
    return channels_to_complex(p.to_x0(out.to(u.dtype), u, a))


def subsample_lines(mask: torch.Tensor, keep: float, center_lines: int, generator: torch.Generator) -> torch.Tensor:
    """Keep each sampled non-ACS line of ``mask (B, 1, 1, W)`` with probability ``keep``; ACS lines always."""
    B, W = mask.shape[0], mask.shape[-1]
    draw = (rand((B, 1, 1, W), generator, device=mask.device) < keep).float()
    lo = W // 2 - center_lines // 2
    draw[..., lo:lo + center_lines] = 1.0
    return mask * draw


def selfdb_predict(model, y_t: torch.Tensor, operator, t: torch.Tensor, num_train_steps: int) -> torch.Tensor:
    """SelfDB's image estimate ``f_θ(y_t, t)``: the network sees the zero-filled coil combination ``Sᴴ Fᴴ y_t`` of the
    bridge state (complex k-space ``(B, C, H, W)``, already on its sub-mask) as 2 channels at timesteps ``t·(T − 1)``;
    ``t`` in [0, 1], shape ``(B,)``. ``operator``: the :class:`~monai_diffrecon.physics.MultiCoilMRI` that holds the coil
    maps (its ``combine``). Returns complex ``(B, 1, H, W)``."""
    _need_operator(operator, "selfdb_predict")
    u = complex_to_channels(operator.combine(y_t))
    return channels_to_complex(model(u, t * (num_train_steps - 1)).to(u.dtype))  # (bf16 autocast output → u's precision)


class SelfDBPrior(BridgePrior):
    """The SelfDB network (2 → 2 channels, MONAI ``(x, timesteps)`` signature) as the prior of
    :class:`~monai_diffrecon.samplers.SelfDBSampler`: ``x0(y_t, t, operator)`` = :func:`selfdb_predict`.

    Args:
        network: trained by :class:`~monai_diffrecon.training.SelfDBTrainer`.
        num_train_steps: T of its training scheduler (timesteps ``t·(T − 1)``).

    Example:
        ``SelfDBSampler(SelfDBPrior(load_verified(net, path, sha256)), num_steps=2)``
    """

    def x0(self, y_t: torch.Tensor, t, operator) -> torch.Tensor:
        """Image estimate (complex ``(B, 1, H, W)``) from the bridge state ``y_t`` (complex k-space ``(B, C, H, W)``) at
        bridge time ``t`` (a number or ``(B,)``) with the acquisition's operator (its coil maps)."""
        if not torch.is_tensor(t):
            t = torch.full((y_t.shape[0],), float(t), device=y_t.device)
        return selfdb_predict(self.network, y_t, operator, t, self.num_train_steps)
