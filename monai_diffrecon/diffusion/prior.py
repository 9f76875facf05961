"""Diffusion priors over MONAI networks and schedulers.

:class:`DiffusionPrior` wraps a network with MONAI's ``DiffusionModelUNet`` signature
``network(x, timesteps, context=None)`` and a MONAI scheduler (for its VP schedule ᾱ_t). The network predicts ε (the
default), x₀ (``"sample"``), v (``"v_prediction"``) or is EDM-preconditioned (``"edm"``); see
:mod:`monai_diffrecon.diffusion.parameterization`. Whatever it predicts, the prior answers in the same terms:

* ``eps(x_t, t)`` — ε̂; ``x0(x_t, t)`` — the Tweedie estimate E[x₀ | x_t]; ``score(x_t, t) = −ε̂/√(1−ᾱ)``;
* ``denoise(x, σ)`` — the VE Gaussian denoiser by parameter matching (arXiv 2412.11108):
  ``t*`` with ``√((1−ᾱ)/ᾱ) = σ`` (interpolated between schedule steps), ``c = √ᾱ(t*)``,
  ``D_σ(x) = x̂₀(c·x, t*)`` (for ε: ``x − σ·ε̂(c·x, t*)`` = ``x + c σ² s(c x, t*)``).

Conditional networks: ``cond`` (e.g. 2.5D neighbour slices + CT) is concatenated to ``x_t`` along channels before
the network, so the network has ``in_channels = C + C_cond``; ``context`` is passed through (cross-attention).
Latent priors: ``autoencoder`` (anything with ``encode``/``decode``, e.g. MONAI ``AutoencoderKL``) defines
:meth:`encode` / :meth:`decode`; the diffusion then runs in its latent space.
"""

from __future__ import annotations

import torch
from torch import nn

from monai_diffrecon.diffusion.parameterization import Parameterization
from monai_diffrecon.diffusion.schedule import alpha_bar_at, t_of_sigma
from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.physics.functional.devices import device_of

__all__ = ["DiffusionPrior", "encode_mean"]


def encode_mean(autoencoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Deterministic latent of ``x``: the posterior mean μ for a variational autoencoder whose ``encode`` returns
    ``(μ, σ)`` (MONAI ``AutoencoderKL``; its ``encode_stage_2_inputs`` would add a random σ·ε), else ``encode(x)``."""
    z = autoencoder.encode(x)
    return z[0] if isinstance(z, (tuple, list)) else z


class DiffusionPrior(nn.Module):
    """Diffusion prior (see module doc).

    Args:
        network: ``network(x, timesteps, context=None)`` (MONAI ``DiffusionModelUNet`` or an analytic module).
        scheduler: MONAI scheduler (``DDPMScheduler``/``DDIMScheduler``) providing ``alphas_cumprod``.
        autoencoder: optional latent-space autoencoder (``encode(x)``, ``decode(z)``).
        latent_scale: multiplies encoded latents (the usual LDM scale factor).
        prediction: what the network predicts: ``"epsilon"``, ``"sample"``, ``"v_prediction"`` or ``"edm"``.
        sigma_data: EDM's σ_d (the data's standard deviation; used by ``"edm"`` only).
        precision: ``"bf16"`` runs the network under bf16 autocast for float32 inputs (2.1× faster on a CPU with
            avx512_bf16, output within 0.3 %: benchmarks/results/training_speed.md); ``"fp32"`` (default) as it is.
        batch_chunk: evaluate the network on at most this many images at a time (``None``: the whole batch) — bounds
            the activation memory of a large batch, e.g. every slice of a 128³ volume denoised together; the result
            is the same as one call (each image is processed independently).

    Example:
        >>> from monai_diffrecon.diffusion import DiffusionPrior, GaussianEpsilon, make_scheduler
        >>> sch = make_scheduler()
        >>> prior = DiffusionPrior(GaussianEpsilon(sch.alphas_cumprod, mean=0.0, std=1.0), sch)
        >>> x = torch.randn(2, 1, 8, 8)
        >>> bool(torch.allclose(prior.denoise(x, 0.5), x / 1.25, rtol=1e-4))
        True
    """

    def __init__(self, network: nn.Module, scheduler, autoencoder: nn.Module | None = None, latent_scale: float = 1.0,
                 prediction: str = "epsilon", sigma_data: float = 0.5, precision: str = "fp32", batch_chunk: int | None = None) -> None:
        super().__init__()
        if batch_chunk is not None and int(batch_chunk) < 1:
            raise InvalidValueError(f"batch_chunk: must be ≥ 1 or None, got {batch_chunk}")
        self.batch_chunk = None if batch_chunk is None else int(batch_chunk)
        self.parameterization = Parameterization(prediction, float(sigma_data))
        if precision not in ("fp32", "bf16"):
            raise InvalidValueError(f"precision: 'fp32' or 'bf16', got {precision!r}")
        self.precision = precision
        self.network = network
        self.scheduler = scheduler
        self.autoencoder = autoencoder
        self.latent_scale = float(latent_scale)
        # ᾱ next to the network's weights, so that ``.to(device)`` moves both and ᾱ(t) is indexed on that device
        dev = device_of(network, scheduler.alphas_cumprod)
        self.register_buffer("alphas_cumprod", torch.as_tensor(scheduler.alphas_cumprod, dtype=torch.float64, device=dev).clone(),
                             persistent=False)

    @property
    def num_train_timesteps(self) -> int:
        return int(self.alphas_cumprod.numel())

    def alpha_bar(self, t, like: torch.Tensor | None = None) -> torch.Tensor:
        """ᾱ at (continuous) t, shaped ``(B, 1, …, 1)`` like ``like`` when given."""
        a = alpha_bar_at(self.alphas_cumprod, t)
        if like is None:
            return a
        a = a.to(device=like.device, dtype=like.real.dtype if like.is_complex() else like.dtype)
        return a.reshape(-1, *([1] * (like.ndim - 1))) if a.ndim else a

    def _t(self, t, x: torch.Tensor) -> torch.Tensor:
        tt = torch.as_tensor(t, dtype=torch.float32, device=x.device)
        return tt.expand(x.shape[0]) if tt.ndim == 0 else tt

    @property
    def prediction(self) -> str:
        return self.parameterization.prediction

    def output(self, x_t: torch.Tensor, t, cond: torch.Tensor | None = None, context: torch.Tensor | None = None) -> torch.Tensor:
        """The network's raw output at ``(x_t, t)`` (what it was trained to predict; input preconditioned for EDM)."""
        inp = x_t if self.prediction != "edm" else self.parameterization.network_input(x_t, self.alpha_bar(t, x_t))
        inp = inp if cond is None else torch.cat([inp, cond.to(inp.dtype)], dim=1)
        tt = self._t(t, x_t)
        n, c = inp.shape[0], self.batch_chunk
        if c is None or n <= c:
            return self._network(inp, tt, context, x_t.dtype)
        ctx = (lambda i: None) if context is None else (lambda i: context[i:i + c] if context.shape[0] == n else context)
        return torch.cat([self._network(inp[i:i + c], tt[i:i + c], ctx(i), x_t.dtype) for i in range(0, n, c)])

    def _network(self, inp: torch.Tensor, tt: torch.Tensor, context, dtype) -> torch.Tensor:
        kw = {} if context is None else {"context": context}
        if self.precision == "bf16" and inp.dtype == torch.float32:
            with torch.autocast(inp.device.type, dtype=torch.bfloat16):
                return self.network(inp, tt, **kw).to(dtype)
        return self.network(inp, tt, **kw)

    def eps(self, x_t: torch.Tensor, t, cond: torch.Tensor | None = None, context: torch.Tensor | None = None) -> torch.Tensor:
        """ε̂(x_t, t) (``t`` scalar or ``(B,)``, continuous allowed)."""
        out = self.output(x_t, t, cond, context)
        return out if self.prediction == "epsilon" else self.parameterization.to_eps(out, x_t, self.alpha_bar(t, x_t))

    def x0(self, x_t: torch.Tensor, t, cond=None, context=None) -> torch.Tensor:
        """Tweedie estimate E[x₀ | x_t] (for ε: (x_t − √(1−ᾱ) ε̂)/√ᾱ)."""
        return self.parameterization.to_x0(self.output(x_t, t, cond, context), x_t, self.alpha_bar(t, x_t))

    def score(self, x_t: torch.Tensor, t, cond=None, context=None) -> torch.Tensor:
        """∇ log p_t(x_t) = −ε̂/√(1−ᾱ)."""
        a = self.alpha_bar(t, x_t)
        return -self.eps(x_t, t, cond, context) / torch.sqrt(1 - a)

    def match(self, sigma: float | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameter matching: ``(t*, c)`` with σ(t*) = sigma and c = √ᾱ(t*)."""
        t = t_of_sigma(self.alphas_cumprod, sigma)
        return t, torch.sqrt(alpha_bar_at(self.alphas_cumprod, t))

    def denoise(self, x: torch.Tensor, sigma: float | torch.Tensor, cond=None, context=None) -> torch.Tensor:
        """VE MMSE denoiser for ``x = x₀ + σ n``: ``D_σ(x) = x̂₀(c x, t*)`` (ε: ``x − σ ε̂(c x, t*)``)."""
        t, c = self.match(sigma)
        c = c.to(device=x.device, dtype=x.dtype).reshape(-1, *([1] * (x.ndim - 1))) if c.ndim else float(c)
        if self.prediction != "epsilon":
            return self.x0(c * x, t, cond, context)
        s = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        s = s.reshape(-1, *([1] * (x.ndim - 1))) if s.ndim else s
        return x - s * self.eps(c * x, t, cond, context)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        if self.autoencoder is None:
            return x
        return encode_mean(self.autoencoder, x) * self.latent_scale

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if self.autoencoder is None:
            return z
        z = z / self.latent_scale
        return self.autoencoder.decode_stage_2_outputs(z) if hasattr(self.autoencoder, "decode_stage_2_outputs") else self.autoencoder.decode(z)
