"""DB-CR sampling (arXiv 2504.03607): the diffusion bridge from the cloudy image to the clear one.

The measurement is ``y = concat(cloudy optical (C_opt), SAR (C_sar))`` along channels (no forward operator: pass
``operator=None``). The bridge starts at the cloudy image at t = 1 (not at noise) and runs
:func:`~monai_diffrecon.samplers.bridge.run_bridge` with x̂₀ from a
:class:`~monai_diffrecon.modalities.satellite.DBCRPrior`; one step (the default) is the direct prediction, 3–5 steps
the paper's ablation. NFE = steps.
"""

from __future__ import annotations

from monai_diffrecon.errors import ShapeError
from monai_diffrecon.modalities.satellite import DBCRPrior
from monai_diffrecon.samplers.base import Sampler
from monai_diffrecon.samplers.bridge import run_bridge

__all__ = ["DBCR"]


class DBCR(Sampler):
    """Args:
        prior: a :class:`~monai_diffrecon.modalities.satellite.DBCRPrior` (a
            :class:`~monai_diffrecon.networks.dbcr.DBCRNet`, x̂₀-prediction, with its timestep scale ``t·(T−1)``). A
            bare network is wrapped, with a DeprecationWarning (accepted for one release).
        num_steps: bridge steps (1 = direct prediction). sigma_max: bridge noise, as in training.
        num_train_steps: deprecated (set it on the prior); only with a bare network: its T.
    """

    def __init__(self, prior, num_steps: int = 1, sigma_max: float = 0.05, num_train_steps: int | None = None) -> None:
        super().__init__(DBCRPrior.wrap(prior, num_train_steps))
        self.num_steps, self.sigma_max = num_steps, sigma_max

    def initialise(self, y, operator):
        """The bridge starts at the cloudy optical image ``y[:, :C_opt]`` (returned as ``SamplerOutput.init``)."""
        return y[:, :self.prior.optical_channels]

    def sample_one(self, y, operator, generator, counter, progress, init=None):
        c = self.prior.optical_channels
        need = c + (self.prior.sar_channels if self.prior.use_sar else 0)
        if y.ndim != 4 or y.shape[1] != need:
            raise ShapeError(f"DBCR: y must be (B, {need}, H, W) = cloudy optical ({c}) + SAR channels, got {tuple(y.shape)}")
        cloudy, sar = y[:, :c], (y[:, c:] if self.prior.use_sar else None)

        def endpoint(x_t, t):
            x0 = self.prior.x0(x_t, float(t), cloudy, sar)
            return x0, x0

        _, x0 = run_bridge(cloudy, endpoint, self.num_steps, self.sigma_max, generator, counter=counter, progress=progress)
        return x0, None, None
