"""SelfDB training: a self-supervised diffusion bridge for MRI from undersampled k-space only (arXiv 2501.03430).

From each acquired ``y = M F S x + n`` the loss sub-samples twice more: ``M̄ ⊂ M`` (each non-ACS acquired line
kept with probability ``keep1``) and ``M' ⊂ M̄`` (``keep2``). The bridge state between the two

    y_t = (1 − t) M̄ y + t M' y + σ_max √(t(1 − t)) M̄ ε,   t ~ U(0, 1),

is shown to the network as the zero-filled coil-combined image (2 channels, timestep ``t·(T−1)``); the network
outputs the image ``f_θ(y_t, t)`` and the loss is on the *available* k-space, ``‖M F S f_θ(y_t, t) − y‖²`` — the
lines of M that were hidden from the input supervise the prediction (SSDU-like), and no fully sampled data is read.
"""

from __future__ import annotations

import torch

from monai_diffrecon.errors import TrainingError
from monai_diffrecon.modalities.mri import selfdb_predict, subsample_lines
from monai_diffrecon.physics.functional.sense import complex_randn
from monai_diffrecon.physics.base import finite_checks
from monai_diffrecon.physics.mri import MultiCoilMRI
from monai_diffrecon.diffusion.bridge import bridge_state
from monai_diffrecon.physics.functional.devices import rand
from monai_diffrecon.training.dsm import DenoisingScoreTrainer
from monai_diffrecon.training.msm import kspace_batch

# selfdb_predict and subsample_lines live in monai_diffrecon.modalities.mri (shared with the sampler); re-exported here
__all__ = ["SelfDBTrainer", "subsample_lines", "selfdb_predict"]


class SelfDBTrainer(DenoisingScoreTrainer):
    """:class:`~monai_diffrecon.training.DenoisingScoreTrainer` with SelfDB's bridge loss (module doc). Batches come
    from :class:`~monai_diffrecon.training.msm.KSpaceSampler` (``kspace``, ``mask``, ``maps``).

    Extra args:
        keep1, keep2: line-keeping probabilities of the two sub-samplings. sigma_max: bridge noise.
        center_lines: ACS lines (never dropped).

    Of the recipe only ``precision`` applies (bf16 autocast of the network): the bridge network predicts the image
    directly, there is no diffusion parameterisation to choose.
    """

    supports_recipe = ("precision",)

    def __init__(self, *args, keep1: float = 0.6, keep2: float = 0.6, sigma_max: float = 0.05, center_lines: int = 20, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not (0 < keep1 <= 1 and 0 < keep2 <= 1) or sigma_max < 0:
            raise TrainingError("keep1, keep2 must be in (0, 1] and sigma_max ≥ 0")
        self.keep1, self.keep2, self.sigma_max, self.center_lines = keep1, keep2, sigma_max, center_lines

    def loss(self, batch: dict, generator: torch.Generator) -> torch.Tensor:
        # the data were checked when the cohort was built; a non-finite network output must surface as the trainer's
        # "loss is nan" TrainingError (checkpoint kept), not as an operator input error
        with finite_checks(False):
            return self._loss(batch, generator)

    def _loss(self, batch: dict, generator: torch.Generator) -> torch.Tensor:
        g = generator
        dev = self.device
        y, mask, maps, count = kspace_batch(batch)
        B = y.shape[0]
        m_bar = subsample_lines(mask, self.keep1, self.center_lines, g)
        m_prime = subsample_lines(m_bar, self.keep2, self.center_lines, g)
        t = rand(B, g)
        n = complex_randn(y.shape, g)
        y, mask, maps, m_bar, m_prime, n, t, count = (v.to(dev) for v in (y, mask, maps, m_bar, m_prime, n, t, count))
        y_t = bridge_state(m_bar * y, m_prime * y, t, self.sigma_max, m_bar * n)
        A = MultiCoilMRI(maps, mask)  # M F S on the acquired lines: the loss is in y's domain
        with self.autocast():
            x = selfdb_predict(self.model, y_t, A, t, self.alphas_cumprod.numel())
        x = x.to(torch.complex64)
        r = A(x) - y
        return ((r.abs() ** 2).sum(dim=(1, 2, 3)) / count).mean()
