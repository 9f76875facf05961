"""DB-CR training: x̂₀ regression on the bridge between the clear (t = 0) and cloudy (t = 1) image, SAR-conditioned.

Loss ``E_{t, ε} ‖f_θ(x_t, t, cloudy, sar) − clear‖²`` with ``x_t = (1−t) clear + t cloudy + σ_max √(t(1−t)) ε``
(:func:`~monai_diffrecon.diffusion.bridge.bridge_state`), t ~ U(0, 1), network timestep ``t·(T−1)``. Batches come from
:class:`SceneSampler`: ``{"clear", "cloudy", "sar"}`` already normalised (SEN12MS-CR conventions,
:func:`~monai_diffrecon.modalities.satellite.sen12ms_normalize`).
"""

from __future__ import annotations

import torch

from monai_diffrecon.diffusion.bridge import bridge_state
from monai_diffrecon.errors import TrainingError
from monai_diffrecon.physics.functional.devices import rand, randint, randn
from monai_diffrecon.training.dsm import DenoisingScoreTrainer

__all__ = ["SceneSampler", "BridgeTrainer"]


class SceneSampler:
    """Random mini-batches of co-registered scenes: ``clear (N, C, H, W)``, ``cloudy`` (same), ``sar (N, C_sar, H, W)``;
    random flips and 90° rotations applied identically to the three.

    Args:
        crop: a random ``crop × crop`` window per batch (same window for the three; ``None``: whole scenes).
        stacked: return ``{"image": clear, "cond": concat(cloudy, sar)}`` instead — the batches the plain
            :class:`~monai_diffrecon.training.DenoisingScoreTrainer` expects (the conditional-DDPM baseline).
    """

    def __init__(self, clear: torch.Tensor, cloudy: torch.Tensor, sar: torch.Tensor, augment: bool = True,
                 crop: int | None = None, stacked: bool = False) -> None:
        if clear.shape != cloudy.shape or sar.shape[0] != clear.shape[0] or sar.shape[-2:] != clear.shape[-2:]:
            raise TrainingError("clear, cloudy and sar must be co-registered (N, C, H, W) tensors")
        if crop is not None and not 0 < crop <= min(clear.shape[-2:]):
            raise TrainingError(f"crop: must be in (0, {min(clear.shape[-2:])}], got {crop}")
        self.clear, self.cloudy, self.sar, self.augment = clear.float(), cloudy.float(), sar.float(), augment
        self.crop, self.stacked = crop, stacked

    def __call__(self, generator: torch.Generator, batch_size: int) -> dict:
        idx = randint(0, self.clear.shape[0], (batch_size,), generator)
        out = {"clear": self.clear[idx], "cloudy": self.cloudy[idx], "sar": self.sar[idx]}
        if self.crop is not None:
            H, W = self.clear.shape[-2:]
            i0 = int(randint(0, H - self.crop + 1, (1,), generator))
            j0 = int(randint(0, W - self.crop + 1, (1,), generator))
            out = {k: v[..., i0:i0 + self.crop, j0:j0 + self.crop] for k, v in out.items()}
        if self.augment:
            k = int(randint(0, 4, (1,), generator))
            flip = bool(rand((), generator) < 0.5)
            for key in out:
                v = torch.rot90(out[key], k, dims=(-2, -1))
                out[key] = v.flip(-1) if flip else v
        if self.stacked:
            return {"image": out["clear"], "cond": torch.cat([out["cloudy"], out["sar"]], dim=1)}
        return out


class BridgeTrainer(DenoisingScoreTrainer):
    """:class:`~monai_diffrecon.training.DenoisingScoreTrainer` with the DB-CR bridge loss (module doc); the network is a
    :class:`~monai_diffrecon.networks.dbcr.DBCRNet` (``use_sar=False``: the ablation without SAR).

    ``regression=True`` trains the non-diffusion baseline with the same network: t ≡ 1, so x_t is the cloudy image and
    the loss is plain ``‖f_θ(cloudy, cloudy, sar) − clear‖²`` (sampled with one :class:`~monai_diffrecon.samplers.DBCR`
    step, which evaluates exactly that).
    """

    def __init__(self, *args, sigma_max: float = 0.05, regression: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if sigma_max < 0:
            raise TrainingError(f"sigma_max: must be ≥ 0, got {sigma_max}")
        self.sigma_max, self.regression = float(sigma_max), bool(regression)

    def loss(self, batch: dict, generator: torch.Generator) -> torch.Tensor:
        g, dev = generator, self.device
        clear, cloudy, sar = batch["clear"], batch["cloudy"], batch["sar"]
        B = clear.shape[0]
        t = torch.ones(B, device=g.device) if self.regression else rand(B, g)
        n = randn(clear.shape, g)
        x_t = bridge_state(clear, cloudy, t, self.sigma_max, n).to(dev)
        net = self.network
        pred = self.model(x_t, (t * (self.alphas_cumprod.numel() - 1)).to(dev), cloudy.to(dev), sar.to(dev) if net.use_sar else None)
        return torch.nn.functional.mse_loss(pred, clear.to(dev))
