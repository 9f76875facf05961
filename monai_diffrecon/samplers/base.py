"""Sampler base class and output type shared by every method.

A sampler is built from a prior (first argument) plus hyper-parameters with defaults, and called as
``sampler(y, operator, generator=g, num_samples=1, progress=True)``. It draws ``num_samples`` independent posterior
samples (one chain each; chains that average within the chain, like PnP-DM, contribute their own estimate) and
returns :class:`SamplerOutput`. Work that depends on the data alone — the starting reconstruction (OSEM, SENSE, a
Tikhonov image) — is done once per call by :meth:`Sampler.initialise`, shared by the chains and returned as
``SamplerOutput.init``.

Construction is uniform: every posterior sampler takes ``sigma_y``, the measurement noise std in the units of ``y``,
and where a step size or weight should scale with the noise (or with the prior's ``data_range``) its default is
derived from it (:func:`check_sigma_y`, :func:`data_scale`, :func:`prior_sigma_min`), so that a user who gives only
the noise level gets a calibrated sampler; each class documents its formula, the paper's value and the closed-form
figure (``tests/samplers``, ``benchmarks/results/sampler_closed_form.md``).

Devices: everything follows ``y`` (and the operator and prior, which the caller puts on the same device); random
draws come from the explicit generator on its own device and are moved to ``y``'s
(:mod:`~monai_diffrecon.physics.functional.devices`), so a CPU generator gives the same chains on every device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from monai_diffrecon.errors import InvalidValueError

__all__ = ["SamplerOutput", "Sampler", "Counter", "regularised_start", "check_sigma_y", "data_scale", "prior_sigma_min"]


def check_sigma_y(sigma_y, name: str = "sigma_y", allow_none: bool = False, allow_zero: bool = False):
    """The measurement noise std σ_y (data units, the same units as ``y``), validated: a finite number > 0 (``≥ 0`` with
    ``allow_zero``: noiseless data), or ``None`` where the sampler can do without it (``allow_none``)."""
    if sigma_y is None:
        if allow_none:
            return None
        raise InvalidValueError(f"{name}: the measurement noise std is required (a number > 0), got None")
    v = float(sigma_y)
    if not math.isfinite(v) or not (v > 0 or (allow_zero and v == 0)):
        raise InvalidValueError(f"{name}: must be {'≥' if allow_zero else '>'} 0 and finite, got {sigma_y}")
    return v


def data_scale(data_range) -> float:
    """Half-width ``(hi − lo)/2`` of the prior's data range ``(lo, hi)`` (1 for images in [−1, 1]): the unit of every
    default that lives in data units (couplings ρ, denoiser levels σ, guidance steps), so that the defaults follow
    a prior trained on another range (e.g. [0, 1]: half of them)."""
    try:
        lo, hi = (float(v) for v in data_range)
    except (TypeError, ValueError):
        raise InvalidValueError(f"data_range: a pair (lo, hi), got {data_range!r}") from None
    if not hi > lo:
        raise InvalidValueError(f"data_range: need lo < hi, got {data_range!r}")
    return (hi - lo) / 2


def prior_sigma_min(prior) -> float:
    """σ(0) = √((1 − ᾱ₀)/ᾱ₀), the smallest noise level of the prior's diffusion schedule (0.01 for the DDPM linear
    schedule): below it the network was never trained, and a prior-step sample keeps about this much noise. 0 for a
    prior without a schedule (a plain denoiser network)."""
    ac = getattr(prior, "alphas_cumprod", None)
    if ac is None:
        return 0.0
    a0 = float(ac.reshape(-1)[0]) if torch.is_tensor(ac) else float(ac[0])
    return ((1 - a0) / a0) ** 0.5


def regularised_start(y, operator, sigma_y: float):
    """Starting image for iterative methods: ``argmin ½‖Ax − y‖² + (σ_y²/2)‖x‖²`` (a Wiener-like estimate with a
    unit-variance prior), stable where ``A⁺y`` amplifies noise (deblurring)."""
    z = torch.zeros_like(operator.adjoint(y))
    return operator.prox_l2(z, y, 1.0 / max(sigma_y, 1e-3) ** 2, max_iter=30)


@dataclass
class SamplerOutput:
    """Result of a sampler call.

    Attributes:
        x: samples ``(num_samples, B, C, …)``.
        mean: posterior-mean estimate ``(B, C, …)`` (mean over samples; chains that average internally contribute
            their within-chain means).
        std: posterior standard deviation ``(B, C, …)`` (zeros when it cannot be estimated, i.e. one sample from a
            method without within-chain averaging).
        nfe: network function evaluations spent in total.
        extras: further per-call estimates, each the mean over samples (e.g. Blind-PnPDM's ``"kernel"``).
        init: the starting reconstruction the sampler computed from the data, once per call (shape and domain of
            ``mean``; e.g. SPECT25D's OSEM), or ``None`` when the chains start from noise — see
            :meth:`Sampler.initialise` of each method. A workflow reads it instead of recomputing it.
    """

    x: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    nfe: int
    extras: dict = field(default_factory=dict)
    init: torch.Tensor | None = None


class Counter:
    """Counts network evaluations (one per call with a batch)."""

    def __init__(self) -> None:
        self.n = 0

    def __iadd__(self, k: int):
        self.n += k
        return self


class Sampler(nn.Module):
    """Base: loops over independent samples; subclasses implement :meth:`sample_one` (and :meth:`initialise` when
    they start from a reconstruction of the data).

    ``sample_one(y, operator, generator, counter, progress, init)`` returns ``(x, chain_mean, chain_var)`` where the
    last two may be ``None`` (no within-chain statistics), optionally followed by a dict of further estimates (averaged
    over samples into :attr:`SamplerOutput.extras`); ``init`` is what :meth:`initialise` returned for this call.
    """

    def __init__(self, prior: nn.Module) -> None:
        super().__init__()
        self.prior = prior

    def initialise(self, y, operator) -> torch.Tensor | None:
        """The starting reconstruction computed from the data alone, once per call and shared by every chain
        (returned as :attr:`SamplerOutput.init`); ``None`` (the default) when the chains start from noise."""
        return None

    def sample_one(self, y, operator, generator, counter, progress, init=None):  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, y: torch.Tensor, operator, generator: torch.Generator | None = None, num_samples: int = 1, progress: bool = True) -> SamplerOutput:
        if not isinstance(generator, torch.Generator):
            raise InvalidValueError("generator: pass an explicit torch.Generator (samplers are deterministic given it)")
        if num_samples < 1:
            raise InvalidValueError(f"num_samples: must be ≥ 1, got {num_samples}")
        counter = Counter()
        init = self.initialise(y, operator)
        init = None if init is None else init.detach()
        xs, means, second, extras = [], [], [], {}
        for _ in range(num_samples):
            x, m, v, *more = self.sample_one(y, operator, generator, counter, progress, init)
            for k, val in (more[0] if more else {}).items():
                extras.setdefault(k, []).append(val.detach())
            xs.append(x.detach())
            m = x.detach() if m is None else m.detach()
            means.append(m)
            second.append(m.abs() ** 2 + (torch.zeros_like(m.abs()) if v is None else v.detach()))
        mean = torch.stack(means).mean(0)
        var = (torch.stack(second).mean(0) - mean.abs() ** 2).clamp_min(0)  # law of total variance over chains
        return SamplerOutput(torch.stack(xs), mean, var.sqrt(), counter.n, {k: torch.stack(v).mean(0) for k, v in extras.items()}, init)
