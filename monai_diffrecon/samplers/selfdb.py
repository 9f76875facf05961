"""SelfDB inference: run the self-supervised bridge from the acquired k-space (arXiv 2501.03430).

State: multi-coil k-space. The degraded endpoint at ``t_start`` is the acquired ``y``. Each step the network predicts
the image ``x̂ = f_θ(y_t, t)``; its k-space ``F S x̂`` gets the data step ``k̂ ← k̂ − γ M(k̂ − y)`` (γ = 1 puts the
acquired lines back) and, with ``support="acquired"``, is restricted to the acquired lines as in training (where
the bridge endpoints are masked measurements); ``support="full"`` lets the state fill in all lines. The bridge
update (:func:`~monai_diffrecon.samplers.bridge.run_bridge`) then moves to the next time. The paper leaves σ_t, the
masks and the test-time endpoints unspecified; these choices are ours and are measured in benchmarks/results/mri.md.
NFE = steps; one step is the direct prediction.
"""

from __future__ import annotations

import torch

from monai_diffrecon.errors import InvalidValueError, ShapeError
from monai_diffrecon.modalities.mri import SelfDBPrior
from monai_diffrecon.physics.functional.sense import complex_randn, sense_combine, sense_expand
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
        sigma_y: std of the k-space noise (per real/imaginary component, the units of ``y``); accepted for the
            samplers' uniform construction and recorded, not used: SelfDB is trained on the noisy measurements
            themselves (its loss is ‖M A f_θ − y‖²), so the network's estimate of the acquired lines already is the
            noisy y and the data step (``gamma``) needs no noise-dependent weight.
    """

    def __init__(self, prior, num_steps: int = 1, t_start: float = 1.0, sigma_max: float = 0.05, gamma: float = 1.0,
                 support: str = "acquired", num_train_steps: int | None = None, sigma_y: float | None = None) -> None:
        super().__init__(SelfDBPrior.wrap(prior, num_train_steps))
        self.sigma_y = check_sigma_y(sigma_y, allow_none=True, allow_zero=True)
        if support not in ("acquired", "full"):
            raise InvalidValueError(f"support: 'acquired' or 'full', got {support!r}")
        self.num_steps, self.t_start, self.sigma_max, self.gamma, self.support = num_steps, t_start, sigma_max, gamma, support

    def initialise(self, y, operator):
        """The bridge starts at the acquired k-space; its image, the zero-filled coil combination ``Sᴴ Fᴴ y``
        (complex ``(B, 1, H, W)``), is returned as ``SamplerOutput.init``."""
        if y is None or not y.is_complex() or y.ndim != 4:
            raise ShapeError("y: complex multi-coil k-space (B, C, H, W) expected")
        return sense_combine(y.to(torch.complex64), operator.coil_maps.to(torch.complex64))

    def sample_one(self, y, operator, generator, counter, progress, init=None):
        if y is None or not y.is_complex() or y.ndim != 4:
            raise ShapeError("y: complex multi-coil k-space (B, C, H, W) expected")
        maps = operator.coil_maps.to(torch.complex64)
        acq = operator.mask.float()
        y = y.to(torch.complex64)
        B = y.shape[0]

        def endpoint(y_t, t):
            x = self.prior.x0(y_t, torch.full((B,), float(t), device=y.device), maps)
            k = sense_expand(x, maps)
            if self.gamma:
                k = k - self.gamma * acq * (k - y)
            img = sense_combine(k, maps)
            return (acq * k if self.support == "acquired" else k), img

        _, img = run_bridge(y, endpoint, self.num_steps, self.sigma_max, generator, self.t_start,
                            noise=lambda shape, g: complex_randn(shape, g, device=y.device) * (acq if self.support == "acquired" else 1.0),
                            counter=counter, progress=progress)
        return img, None, None
