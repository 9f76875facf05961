"""What a diffusion network predicts, and how its output becomes ε̂, x̂₀ and the training target.

On a VP schedule ``x_t = √ᾱ x₀ + √(1−ᾱ) ε`` (equivalently the VE state ``x_t/√ᾱ = x₀ + σ ε`` with
``σ = √((1−ᾱ)/ᾱ)``) a network ``F`` may predict (MONAI's scheduler ``prediction_type`` names, plus EDM):

* ``"epsilon"`` — ε (DDPM, Ho et al. 2020): ``x̂₀ = (x_t − √(1−ᾱ) F)/√ᾱ``. An ε error δ becomes an x̂₀ error
  ``σ δ`` — ×160 at the top of the linear schedule, which is why ε-priors give unusable x̂₀ from pure noise.
* ``"sample"`` — x₀ itself.
* ``"v_prediction"`` — ``v = √ᾱ ε − √(1−ᾱ) x₀`` ("Progressive Distillation for Fast Sampling of Diffusion Models",
  arXiv 2202.00512): ``x̂₀ = √ᾱ x_t − √(1−ᾱ) F``.
* ``"edm"`` — the preconditioning of "Elucidating the Design Space of Diffusion-Based Generative Models"
  (Karras et al. 2022, arXiv 2206.00364): ``D(x; σ) = c_skip x + c_out F(c_in x, c_noise)`` on the VE state, with
  ``c_skip = σ_d²/(σ² + σ_d²)``, ``c_out = σ σ_d/√(σ² + σ_d²)``, ``c_in = 1/√(σ² + σ_d²)``. ``c_noise`` is the VP
  timestep ``t`` (a monotone function of σ, in the range MONAI's sinusoidal timestep embedding is built for) instead of
  the paper's ``¼ ln σ``. With ``σ_d = 1`` the network input ``c_in x_t/√ᾱ`` is exactly ``x_t``.

Training (:meth:`Parameterization.loss_weight`): the network regresses :meth:`Parameterization.target` with a weight
per sample that is a weight on the x̂₀ error, converted through the gain ``k = |∂x̂₀/∂F|``
(:meth:`Parameterization.x0_gain`): ``"uniform"`` — plain MSE on the network's own target (the DDPM loss for ε);
``"edm"`` — EDM's ``λ(σ) = (σ² + σ_d²)/(σ σ_d)²`` on x̂₀ (unit weight on F for ``"edm"``); ``"min_snr"`` — min-SNR-γ
("Efficient Diffusion Training via Min-SNR Weighting Strategy", arXiv 2303.09556): ``min(SNR, γ)`` on x̂₀ with
``SNR = 1/σ²``, i.e. ``min(SNR, γ)/SNR`` for ε and ``min(SNR, γ)/(SNR + 1)`` for v.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from monai_diffrecon.errors import InvalidValueError

__all__ = ["Parameterization", "PREDICTIONS", "LOSS_WEIGHTINGS"]

PREDICTIONS = ("epsilon", "sample", "v_prediction", "edm")
LOSS_WEIGHTINGS = ("uniform", "edm", "min_snr")
_TINY = 1e-20  # guards 1 − ᾱ = 0 (t = −1, no noise): ε is undefined there and never needed


@dataclass(frozen=True)
class Parameterization:
    """Conversions for one prediction type (module doc); ``a`` is ᾱ broadcastable to the image."""

    prediction: str = "epsilon"
    sigma_data: float = 0.5

    def __post_init__(self) -> None:
        if self.prediction not in PREDICTIONS:
            raise InvalidValueError(f"prediction: one of {PREDICTIONS}, got {self.prediction!r}")
        if not float(self.sigma_data) > 0:
            raise InvalidValueError(f"sigma_data: must be > 0, got {self.sigma_data}")

    # ------------------------------------------------------------------ EDM coefficients on the VE state
    def _edm(self, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(c_skip, c_out)`` at ᾱ = a (σ² = (1−ᾱ)/ᾱ)."""
        sd2 = self.sigma_data**2
        s2 = (1 - a) / a
        return sd2 / (s2 + sd2), torch.sqrt(s2 * sd2 / (s2 + sd2))

    def network_input(self, x_t: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """What the network is fed: ``x_t`` (EDM: ``c_in x_t/√ᾱ = x_t/√(1 − ᾱ + ᾱσ_d²)``)."""
        if self.prediction != "edm":
            return x_t
        return x_t / torch.sqrt(1 - a + a * self.sigma_data**2)

    def input_to_state(self, inp: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`network_input` (analytic networks use it to recover ``x_t``)."""
        if self.prediction != "edm":
            return inp
        return inp * torch.sqrt(1 - a + a * self.sigma_data**2)

    # ------------------------------------------------------------------ output → ε̂, x̂₀
    def to_x0(self, out: torch.Tensor, x_t: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        p = self.prediction
        if p == "epsilon":
            return (x_t - torch.sqrt(1 - a) * out) / torch.sqrt(a)
        if p == "sample":
            return out
        if p == "v_prediction":
            return torch.sqrt(a) * x_t - torch.sqrt(1 - a) * out
        c_skip, c_out = self._edm(a)
        return c_skip * x_t / torch.sqrt(a) + c_out * out

    def to_eps(self, out: torch.Tensor, x_t: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        p = self.prediction
        if p == "epsilon":
            return out
        if p == "v_prediction":
            return torch.sqrt(1 - a) * x_t + torch.sqrt(a) * out
        return (x_t - torch.sqrt(a) * self.to_x0(out, x_t, a)) / torch.sqrt((1 - a).clamp_min(_TINY))

    # ------------------------------------------------------------------ training
    def target(self, x0: torch.Tensor, eps: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """The network's regression target for ``x_t = √ᾱ x₀ + √(1−ᾱ) ε``."""
        p = self.prediction
        if p == "epsilon":
            return eps
        if p == "sample":
            return x0
        if p == "v_prediction":
            return torch.sqrt(a) * eps - torch.sqrt(1 - a) * x0
        c_skip, c_out = self._edm(a)
        x_ve = x0 + torch.sqrt((1 - a) / a) * eps
        return (x0 - c_skip * x_ve) / c_out

    def x0_gain(self, a: torch.Tensor) -> torch.Tensor:
        """``k = |∂x̂₀/∂F|``: an output error δ is an x̂₀ error ``k δ``."""
        p = self.prediction
        if p == "epsilon":
            return torch.sqrt((1 - a) / a)
        if p == "sample":
            return torch.ones_like(a)
        if p == "v_prediction":
            return torch.sqrt(1 - a)
        return self._edm(a)[1]

    def loss_weight(self, a: torch.Tensor, weighting: str = "uniform", gamma: float = 5.0) -> torch.Tensor:
        """Per-sample weight on the network-output MSE (module doc)."""
        if weighting == "uniform":
            return torch.ones_like(a)
        k2 = self.x0_gain(a) ** 2
        s2 = (1 - a) / a
        if weighting == "edm":
            sd2 = self.sigma_data**2
            return (s2 + sd2) / (s2 * sd2) * k2
        if weighting == "min_snr":
            return torch.clamp(1 / s2, max=gamma) * k2
        raise InvalidValueError(f"loss_weighting: one of {LOSS_WEIGHTINGS}, got {weighting!r}")
