"""Satellite (SEN12MS-CR) preprocessing shared by the cloud-removal trainer, sampler and workflow.

* :func:`sen12ms_normalize`: the SEN12MS-CR scaling of optical DN and SAR dB to [0, 1], applied to the simulated
  training scenes and to real input rasters alike;
* :class:`DBCRPrior`: the DB-CR network (arXiv 2504.03607) as the prior of :class:`~monai_diffrecon.samplers.DBCR`.

Shapes: optical ``(B, C_opt, H, W)`` (C_opt = 4: B2, B3, B4, B8), SAR ``(B, C_sar, H, W)`` (C_sar = 2: VV, VH).
"""

from __future__ import annotations

import torch

from monai_diffrecon.diffusion.bridge import BridgePrior

__all__ = ["sen12ms_normalize", "DBCRPrior"]


def sen12ms_normalize(optical_dn: torch.Tensor, sar_db: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """SEN12MS-CR preprocessing: optical DN clipped to [0, 10000] and /10000; VV clipped to [−25, 0] dB, VH to
    [−32.5, 0] dB, then linearly mapped to [0, 1]. ``sar_db`` is ``(2, H, W)`` (VV, VH)."""
    opt = optical_dn.clamp(0, 10000) / 10000.0
    vv = (sar_db[0].clamp(-25.0, 0.0) + 25.0) / 25.0
    vh = (sar_db[1].clamp(-32.5, 0.0) + 32.5) / 32.5
    return opt, torch.stack([vv, vh])


class DBCRPrior(BridgePrior):
    """A :class:`~monai_diffrecon.networks.dbcr.DBCRNet` (x̂₀-prediction on the cloudy → clear bridge, trained by
    :class:`~monai_diffrecon.training.BridgeTrainer`) as the prior of :class:`~monai_diffrecon.samplers.DBCR`:
    ``x0(x_t, t, cloudy, sar)`` is its clear-image estimate ``(B, C_opt, H, W)`` at bridge time ``t``.

    Args:
        network: the DB-CR network (its ``optical_channels``, ``sar_channels`` and ``use_sar`` are the prior's).
        num_train_steps: T of its training scheduler (timesteps ``t·(T − 1)``).

    Example:
        ``DBCR(DBCRPrior(load_verified(dbcr_network(size="small"), path, sha256)))``
    """

    @property
    def optical_channels(self) -> int:
        return self.network.optical_channels

    @property
    def sar_channels(self) -> int:
        return self.network.sar_channels

    @property
    def use_sar(self) -> bool:
        return self.network.use_sar

    def x0(self, x_t: torch.Tensor, t, cloudy: torch.Tensor, sar: torch.Tensor | None = None) -> torch.Tensor:
        """Clear-image estimate from the bridge state ``x_t`` at bridge time ``t`` (a number or ``(B,)``); ``sar`` is
        ignored (``None`` passed) when the network was trained without SAR."""
        ts = self.timesteps(t, x_t.shape[0], x_t.device)
        return self.network(x_t, ts, cloudy, sar if self.use_sar else None)
