"""SelfDB inference: run the self-supervised bridge from the acquired k-space (arXiv 2501.03430).

State: multi-coil k-space. The degraded endpoint at ``t_start`` is the acquired ``y``. Each step the network predicts
the image ``x̂ = f_θ(y_t, t)``; its k-space ``F S x̂`` gets the data step ``k̂ ← k̂ − γ M(k̂ − y)`` (γ = 1 puts the
acquired lines back) and, with ``support="acquired"``, is restricted to the acquired lines as in training (where
the bridge endpoints are masked measurements); ``support="full"`` lets the state fill in all lines. The bridge
update (:func:`~monai_diffrecon.samplers.bridge.run_bridge`) then moves to the next time. The paper leaves σ_t, the
masks and the test-time endpoints unspecified; these choices are ours and are measured in benchmarks/results/mri.md.
NFE = steps; one step is the direct prediction.

Endpoint (``keep``). The network is trained on bridge states between two random sub-samplings of each acquisition,
``M̄ ⊂ M`` (keep₁ of the non-ACS acquired lines) at t = 0 and ``M′ ⊂ M̄`` (keep₂ of those) at t = 1 — at t = 1 it
has only ever seen keep₁·keep₂ of the acquired lines. ``keep=None`` (the original choice) starts from all of y, a
denser input than any it was trained on; ``keep=(keep₁, keep₂)`` starts each chain from the training distribution's
state at ``t_start`` (fresh sub-masks per chain; ``num_samples`` chains averaged use all lines), so inference matches
training. The data step still uses every acquired line. benchmarks/mri.py measures both.
"""

from __future__ import annotations

import torch

from monai_diffrecon.errors import InvalidValueError, ShapeError
from monai_diffrecon.diffusion.bridge import bridge_state
from monai_diffrecon.modalities.mri import SelfDBPrior, acs_lines, subsample_lines
from monai_diffrecon.physics.functional.sense import complex_randn
from monai_diffrecon.samplers.base import Sampler, check_sigma_y
from monai_diffrecon.samplers.bridge import run_bridge

__all__ = ["SelfDBSampler"]


class SelfDBSampler(Sampler):
    """Args:
        prior: a :class:`~monai_diffrecon.modalities.mri.SelfDBPrior` (the SelfDB network, 2 → 2 channels, with the
            timestep scale it was trained with), e.g. from the bundle. A bare network is wrapped, with a
            DeprecationWarning (accepted for one release).
        num_steps: bridge steps (1 = direct prediction). t_start: time of the acquired data on the bridge.
        sigma_max: bridge noise (as in training). gamma: data-step size. support: ``"acquired"`` or ``"full"``.
        num_train_steps: deprecated (set it on the prior); only with a bare network: its T (timesteps t·(T−1)).
        keep: ``None`` (start from all of y) or the trainer's ``(keep1, keep2)`` (start from its sub-sampled bridge
            state; module doc). center_lines: ACS lines never dropped by the sub-masks (``None``: the mask's ACS block).
        sigma_y: std of the k-space noise (per real/imaginary component, the units of ``y``); accepted for the
            samplers' uniform construction and recorded, not used: SelfDB is trained on the noisy measurements
            themselves (its loss is ‖M A f_θ − y‖²), so the network's estimate of the acquired lines already is the
            noisy y and the data step (``gamma``) needs no noise-dependent weight.
    """

    def __init__(self, prior, num_steps: int = 1, t_start: float = 1.0, sigma_max: float = 0.05, gamma: float = 1.0,
                 support: str = "acquired", num_train_steps: int | None = None, sigma_y: float | None = None,
                 keep: tuple[float, float] | None = None, center_lines: int | None = None) -> None:
        super().__init__(SelfDBPrior.wrap(prior, num_train_steps))
        if keep is not None and not (len(keep) == 2 and all(0 < float(k) <= 1 for k in keep)):
            raise InvalidValueError(f"keep: None or two fractions in (0, 1], got {keep!r}")
        self.keep = None if keep is None else (float(keep[0]), float(keep[1]))
        self.center_lines = center_lines
        self.sigma_y = check_sigma_y(sigma_y, allow_none=True, allow_zero=True)
        if support not in ("acquired", "full"):
            raise InvalidValueError(f"support: 'acquired' or 'full', got {support!r}")
        self.num_steps, self.t_start, self.sigma_max, self.gamma, self.support = num_steps, t_start, sigma_max, gamma, support

    def initialise(self, y, operator):
        """The bridge starts at the acquired k-space; its image, the zero-filled coil combination ``Sᴴ Fᴴ y``
        (complex ``(B, 1, H, W)``), is returned as ``SamplerOutput.init``."""
        if y is None or not y.is_complex() or y.ndim != 4:
            raise ShapeError("y: complex multi-coil k-space (B, C, H, W) expected")
        return operator.combine(y.to(torch.complex64))

    def sample_one(self, y, operator, generator, counter, progress, init=None):
        if y is None or not y.is_complex() or y.ndim != 4:
            raise ShapeError("y: complex multi-coil k-space (B, C, H, W) expected")
        acq = operator.mask.float()
        y = y.to(torch.complex64)
        B = y.shape[0]

        def endpoint(y_t, t):
            x = self.prior.x0(y_t, torch.full((B,), float(t), device=y.device), operator)
            k = operator.expand(x)
            if self.gamma:
                k = k - self.gamma * acq * (k - y)
            img = operator.combine(k)
            return (acq * k if self.support == "acquired" else k), img

        start = y
        if self.keep is not None:
            if acq.shape[-2] != 1:
                raise InvalidValueError("keep: the training sub-masks are Cartesian lines; this operator's mask is 2D")
            acs = self.center_lines if self.center_lines is not None else acs_lines(acq)
            line = acq.reshape(1, 1, 1, -1).expand(B, 1, 1, -1)
            m_bar = subsample_lines(line, self.keep[0], acs, generator).to(y.device)
            m_prime = subsample_lines(m_bar, self.keep[1], acs, generator).to(y.device)
            t = torch.full((B,), float(self.t_start), device=y.device)
            start = bridge_state(m_bar * y, m_prime * y, t, self.sigma_max, m_bar * complex_randn(y.shape, generator, device=y.device))
        _, img = run_bridge(start, endpoint, self.num_steps, self.sigma_max, generator, self.t_start,
                            noise=lambda shape, g: complex_randn(shape, g, device=y.device) * (acq if self.support == "acquired" else 1.0),
                            counter=counter, progress=progress)
        return img, None, None
