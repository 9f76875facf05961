"""MSM training: measurement-score diffusion learned from undersampled (noisy) multi-coil k-space only.

Park, Shoushtari, An, Kamilov, "Measurement Score-Based Diffusion Model", arXiv 2505.11853.
The full measurement is the multi-coil k-space ``z = F S x`` (S the coil maps); a training item is only
``s = M z + η n`` on its own random mask ``M`` (random Cartesian lines, R = 4, 20 ACS lines) — no clean image.

Noiseless variant (``eta = 0``), per item and uniform timestep t:

* diffuse in the measurement domain on the mask only: ``s_t = M(√ᾱ_t s + √(1−ᾱ_t) n)``;
* the network sees the zero-filled coil-combined image ``u = Sᴴ Fᴴ s_t`` (2 channels) and predicts ε;
  ``x̂₀ = (u − √(1−ᾱ_t) ε̂)/√ᾱ_t``;
* loss ``ᾱ_t/(1−ᾱ_t) · ‖M F S x̂₀ − s‖²`` (SNR weighting: the measurement-domain x₀ loss on ε's scale).

Noisy variant (``eta > 0``; σ_t = √((1−ᾱ_t)/ᾱ_t) the VE level):

* σ_t > η: top the data's own noise up to σ_t, ``s' = s + √(σ_t² − η²) n``; the network's estimate of the clean
  measurement D is turned into an estimate of the *noisy* s by the shrinkage ``s' + (σ_t² − η²)/σ_t² · (D − s')``,
  which is regressed onto s (noisy targets are unbiased here);
* σ_t ≤ η: the same network at the level matching η denoises s into a pseudo-clean ``ŷ₁`` (no gradient), which is
  diffused to σ_t and regressed on;
* plus a SURE term for the level-η denoiser D_η(s) (Monte-Carlo divergence):
  ``‖D_η(s) − s‖² − m η² + 2 η² div D_η(s)``, weighted by ``sure_weight``.

The network never sees fully sampled data: :meth:`MSMTrainer.loss` reads only ``kspace``, ``mask`` and ``maps``
of the batch (tests pass a poisoned ``truth`` and check the loss is unchanged).
"""

from __future__ import annotations

import torch

from monai_diffrecon.errors import TrainingError
from monai_diffrecon.modalities.mri import msm_x0
from monai_diffrecon.physics.functional.devices import randint
from monai_diffrecon.physics.functional.sense import complex_randn
from monai_diffrecon.physics.base import finite_checks
from monai_diffrecon.physics.mri import MultiCoilMRI
from monai_diffrecon.training.dsm import DenoisingScoreTrainer

# msm_x0 lives in monai_diffrecon.modalities.mri (shared with the sampler); re-exported for the old path
__all__ = ["KSpaceSampler", "MSMTrainer", "msm_x0", "kspace_batch"]


class KSpaceSampler:
    """Random mini-batches of undersampled k-space: ``{"kspace" (B, C, H, W), "mask" (B, 1, 1, W), "maps" (B|1, C, H, W)}``.

    Args:
        kspace: ``(N, C, H, W)`` complex, zero outside each item's mask. masks: ``(N, 1, 1, W)`` (or ``(N, 1, H, W)``).
        maps: ``(N | 1, C, H, W)`` coil maps (e.g. ESPIRiT from each item's ACS lines).
    """

    def __init__(self, kspace: torch.Tensor, masks: torch.Tensor, maps: torch.Tensor) -> None:
        if not kspace.is_complex():
            raise TrainingError("kspace: must be complex")
        if masks.shape[0] != kspace.shape[0] or maps.shape[0] not in (1, kspace.shape[0]):
            raise TrainingError("kspace, masks and maps must have matching first dimensions")
        self.kspace, self.masks, self.maps = kspace, masks, maps

    def __call__(self, generator: torch.Generator, batch_size: int) -> dict:
        idx = randint(0, self.kspace.shape[0], (batch_size,), generator)
        maps = self.maps if self.maps.shape[0] == 1 else self.maps[idx]
        return {"kspace": self.kspace[idx], "mask": self.masks[idx], "maps": maps}


def kspace_batch(batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(kspace, mask, maps, m)`` from a :class:`KSpaceSampler` batch: k-space zeroed outside each mask (only the
    measured entries exist), and ``m`` the number of measured real components per item (loss normalisation)."""
    mask = batch["mask"].float()
    k = batch["kspace"].to(torch.complex64) * mask
    m = (mask.expand_as(k.real).sum(dim=(1, 2, 3)) * 2).clamp_min(1)
    return k, mask, batch["maps"].to(torch.complex64), m


class MSMTrainer(DenoisingScoreTrainer):
    """:class:`~monai_diffrecon.training.DenoisingScoreTrainer` with MSM's measurement-domain loss (module doc).

    The recipe of :class:`~monai_diffrecon.training.DSMConfig` applies: ``prediction`` (ε, or EDM preconditioning of
    the zero-filled input, :func:`~monai_diffrecon.modalities.mri.msm_x0`), ``loss_weighting`` (the x̂₀-domain weight
    ``λ(σ)`` — uniform ε is the paper's SNR weight ᾱ/(1−ᾱ), EDM's ``(σ² + σ_d²)/(σσ_d)²``), ``t_sampling`` (EDM's
    log-normal σ) and ``precision`` (bf16 autocast of the network).

    Extra args:
        eta: noise std of the training k-space (real and imaginary parts each); 0 for the noiseless variant.
        sure_weight: weight of the SURE term (noisy variant). sure_tau: finite-difference step of its divergence.
        sure_batch: evaluate the SURE term on the first ``sure_batch`` items of each batch only (``None``: all) —
            it costs two extra network passes per item, so a sub-batch keeps CPU training affordable.
    """

    def __init__(self, *args, eta: float = 0.0, sure_weight: float = 1.0, sure_tau: float = 1e-3, sure_batch: int | None = None,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if eta < 0:
            raise TrainingError(f"eta: must be ≥ 0, got {eta}")
        if sure_batch is not None and sure_batch < 1:
            raise TrainingError(f"sure_batch: must be ≥ 1 or None, got {sure_batch}")
        self.eta, self.sure_weight, self.sure_tau = float(eta), float(sure_weight), float(sure_tau)
        self.sure_batch = sure_batch
        sig = torch.sqrt((1 - self.alphas_cumprod) / self.alphas_cumprod)
        self.t_eta = int(torch.argmin((sig - self.eta).abs())) if eta > 0 else 0

    supports_recipe = ("prediction", "loss_weighting", "t_sampling", "precision")

    def _x0(self, s_t, op, t, a):
        """x̂₀ of the network in training (the recipe's parameterisation and precision); ``op`` the items' operator."""
        with self.autocast():
            return msm_x0(self.model, s_t, op, t, a, self.parameterization).to(torch.complex64)

    def x0_weight(self, a: torch.Tensor) -> torch.Tensor:
        """The recipe's weight on the x̂₀-domain error at ᾱ = ``a``: ``loss_weight / x0_gain²`` (uniform ε: ᾱ/(1−ᾱ))."""
        p = self.parameterization
        return p.loss_weight(a, self.cfg.loss_weighting, self.cfg.min_snr_gamma) / p.x0_gain(a) ** 2

    def loss(self, batch: dict, generator: torch.Generator) -> torch.Tensor:
        # the data were checked when the cohort was built; a non-finite network output must surface as the trainer's
        # "loss is nan" TrainingError (checkpoint kept), not as an operator input error
        with finite_checks(False):
            return self._loss(batch, generator)

    def _loss(self, batch: dict, generator: torch.Generator) -> torch.Tensor:
        g = generator
        dev = self.device
        s, mask, maps, m_count = kspace_batch(batch)
        B = s.shape[0]
        t, a = self.draw_t(B, g)
        n = complex_randn(s.shape, g)
        a = a.reshape(B, 1, 1, 1)
        s, mask, maps, n, a, t_dev, m_count = (v.to(dev) for v in (s, mask, maps, n, a, t, m_count))

        def op(idx=None):  # the measurement operator M F S of the items ``idx`` (all if None): every step speaks through it
            return MultiCoilMRI(maps if idx is None or maps.shape[0] == 1 else maps[idx], mask if idx is None else mask[idx])

        snr = self.x0_weight(a)
        if self.eta == 0:
            A = op()
            s_t = mask * (torch.sqrt(a) * s + torch.sqrt(1 - a) * n)
            r = A(self._x0(s_t, A, t_dev, a)) - s
            return ((snr * r.abs() ** 2).sum(dim=(1, 2, 3)) / m_count).mean()
        eta = self.eta
        sig2 = ((1 - a) / a).reshape(B)
        hi = sig2 > eta**2
        total = torch.zeros((), device=dev)
        if bool(hi.any()):
            A = op(hi)
            extra = torch.sqrt((sig2[hi] - eta**2).clamp_min(0)).reshape(-1, 1, 1, 1)
            s1 = s[hi] + extra * n[hi] * mask[hi]
            a1 = a[hi]
            D = A(self._x0(torch.sqrt(a1) * s1, A, t_dev[hi], a1))
            shrink = (extra**2) / sig2[hi].reshape(-1, 1, 1, 1)
            pred = s1 + shrink * (D - s1)
            total = total + ((snr[hi] * (pred - s[hi]).abs() ** 2).sum(dim=(1, 2, 3)) / m_count[hi]).sum()
        lo = ~hi
        a_eta = self.alphas_cumprod[self.t_eta].to(dev).reshape(1, 1, 1, 1)
        t_eta = torch.full((B,), self.t_eta, device=dev, dtype=t_dev.dtype)
        if bool(lo.any()):
            A = op(lo)
            with torch.no_grad():
                y1 = A(self._x0(torch.sqrt(a_eta) * s[lo], A, t_eta[lo], a_eta))
            a2 = a[lo]
            s2 = mask[lo] * (torch.sqrt(a2) * y1 + torch.sqrt(1 - a2) * n[lo])
            D = A(self._x0(s2, A, t_dev[lo], a2))
            total = total + ((snr[lo] * (D - y1).abs() ** 2).sum(dim=(1, 2, 3)) / m_count[lo]).sum()
        loss = total / B
        if self.sure_weight > 0:
            k = B if self.sure_batch is None else min(B, self.sure_batch)
            A = op(slice(0, k))
            s, mask, m_count, t_eta = s[:k], mask[:k], m_count[:k], t_eta[:k]
            b = complex_randn(s.shape, g).to(dev) * mask
            D0 = A(self._x0(torch.sqrt(a_eta) * s, A, t_eta, a_eta))
            Db = A(self._x0(torch.sqrt(a_eta) * (s + self.sure_tau * b), A, t_eta, a_eta))
            div = (b.conj() * (Db - D0)).real.sum(dim=(1, 2, 3)) / self.sure_tau
            sure = ((D0 - s).abs() ** 2).sum(dim=(1, 2, 3)) - m_count * eta**2 + 2 * eta**2 * div
            loss = loss + self.sure_weight * (sure / m_count).mean() / eta**2
        return loss
