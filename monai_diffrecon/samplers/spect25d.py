"""DiffSPECT-3D-style sampler (Xie et al., arXiv 2412.16573): 2.5D conditional diffusion with
per-step projection consistency and a TV constraint across slices.

Per volume:

1. initial reconstruction ``x_init`` = OSEM of the (low-dose or few-view) projections with the full system model;
2. intensity scale ``s`` = :func:`~monai_diffrecon.modalities.spect.spect_scale` (robust maximum of ``x_init``):
   images are mapped to the prior's [−1, 1] range by ``x ↦ 2x/s − 1`` (the same mapping the training data used);
3. condition for every axial slice: its ``2k+1`` neighbours in ``x_init``, optionally ``x_init`` smoothed along z
   (``z_context``: whole-volume context at a bounded channel count), the co-registered μ-map slice (μ/μ_ref·2 − 1)
   and optionally the CT slice (HU/1000), stacked as channels (:func:`~monai_diffrecon.modalities.spect.spect_condition`);
4. all slices are denoised as one batch, with the same noise image for every slice (DDPET-3D);
5. after each x̂₀: ``mlem_iterations`` MLEM iterations with the projector on the measured counts (Poisson
   likelihood; :class:`PoissonMLEMConsistency` through ``projector @ SlicesToVolume``), then the closed-form TV prox
   along z (``tv_weight``; ``tv_3d`` for all three axes), then the DDIM/DDPM step.

Scatter: a projection-domain estimate (TEW/DEW from the file's scatter windows) passed as ``additive`` to the call
enters the data model ``E[y] = A x + s`` of the initial OSEM and of every MLEM step. Memory: the slices are denoised
as one batch; the prior's ``batch_chunk`` bounds the network's share, so sampling memory does not grow with the
number of slices beyond the volume itself and the projector.

Data outrank the prior where they disagree (clinical safety): after sampling, regions whose measured counts the
volume does not explain (``|z| > honour_threshold`` in :func:`~monai_diffrecon.recon.discrepancy.count_discrepancy`'s
z-map of the Poisson residuals — an erased lesion, or activity the data do not support) get OSEM passes restricted to
them (:func:`~monai_diffrecon.recon.discrepancy.honour_counts`); the change it makes is reported as part of the posterior
standard deviation, so the std map flags where prior and data disagree.

Dose-adaptive defaults (``adaptive``): an ordered list of rules ``{"max_counts": C, "max_views": V, <settings>}``;
the first rule whose bounds the study meets (total measured photopeak counts ≤ C, number of views ≤ V; a missing
bound always holds) sets its ``<settings>`` (any of :data:`ADAPTIVE_KEYS`: warm start, steps, consistency strength,
TV weight, …) for that call, so the user tunes nothing per study. The bundle's rules are chosen on validation
phantoms over the 1–50 % dose × 1–9 view grid by ``benchmarks/spect_tune.py``.

Works on full-dose data too (enhancement mode). The result is in the measured data's units (counts per voxel of
this acquisition), so it can be written as a derived series next to the OSEM. The OSEM runs once per call, whatever
``num_samples``, and is returned as ``SamplerOutput.init`` ``(1, 1, X, Y, Z)``, so a workflow need not repeat it.
"""

from __future__ import annotations

import torch

from monai_diffrecon.errors import InvalidValueError, ShapeError
from monai_diffrecon.modalities.spect import MU_REF, spect_condition, spect_scale
from monai_diffrecon.physics import SlicesToVolume
from monai_diffrecon.recon.discrepancy import honour_counts
from monai_diffrecon.recon.em import osem
from monai_diffrecon.samplers.base import Sampler
from monai_diffrecon.samplers.consistency import PoissonMLEMConsistency, TVProx
from monai_diffrecon.samplers.engine import DiffusionLoop, ddim_noise, diffpir_noise

# spect_scale, spect_condition, MU_REF: moved to monai_diffrecon.modalities.spect (shared with the training cohort),
# re-exported here for the old import path
__all__ = ["ADAPTIVE_KEYS", "SPECT25D", "spect_scale", "spect_condition", "MU_REF"]

#: the settings a dose-adaptive rule may set
ADAPTIVE_KEYS = ("num_steps", "eta", "t_start", "mlem_iterations", "prox_lam", "tv_weight", "honour_threshold")


class SPECT25D(Sampler):
    """2.5D conditional diffusion reconstruction of a SPECT volume (see module doc).

    Args:
        prior: conditional prior whose network takes ``1 + (2k+1) + 1`` channels.
        num_steps: reverse steps (default 20). eta: DDIM noise (1 = ancestral).
        neighbours: k neighbouring slices on each side in the condition.
        z_context: σ (slices) of the z-smoothed copies of ``x_init`` added to the condition (default none).
        ct_channel: add the CT slice (HU) to the condition; the CT image comes with the call (``ct=``), else it is
            synthesised from the projector's μ-map.
        adaptive: dose-adaptive rules (module doc); ``None``: the settings above for every study.
        honour_threshold: |z| of the count discrepancy above which a region is pulled to the data after sampling
            (``None`` disables); honour_iterations: OSEM passes (8 subsets) inside those regions.
        mlem_iterations: MLEM iterations per step (Poisson data consistency); 0 disables.
        prox_lam: ``None``: plain MLEM from x̂₀; ``> 0``: Poisson proximal step (penalised EM anchored at x̂₀ with
            weight ``prox_lam/(σ_t s/2)²``, see :class:`PoissonMLEMConsistency`) — late steps keep the prior's estimate.
        tv_weight: λ of the closed-form TV prox along z after each step (0 disables); ``tv_3d``: all three axes.
        init_iterations, init_subsets: the OSEM that makes ``x_init``.
        conditional: ``False`` for an unconditional 2D slice prior (no condition channels; the OSEM only sets the
            intensity scale) — the "unconditional prior + per-step data consistency" baseline.
        zeta: use DiffPIR's re-noising rule with this ζ instead of DDIM's η.
        t_start: ``None``: start from pure noise at the last timestep. A timestep ``< T``: start from the initial
            reconstruction diffused to ``t_start`` (``√ᾱ·x_init + √(1−ᾱ)·n``, "come closer, diffuse faster", Chung et
            al. CVPR 2022) — skips the high-noise steps where an ε-prediction network's x̂₀ is least reliable.
        sigma_y: accepted for the samplers' uniform construction; must be ``None``. The projections are Poisson
            counts, whose noise is set by the counts themselves (variance = mean), so there is no σ_y to give: the
            data steps use the Poisson likelihood (MLEM), and ``prox_lam`` weighs it against the prior in units of
            the step's own noise level. A number raises :class:`~monai_diffrecon.errors.InvalidValueError` instead
            of being ignored.
    """

    def __init__(self, prior, num_steps: int = 20, eta: float = 1.0, neighbours: int = 1, mlem_iterations: int = 2, tv_weight: float = 0.002,
                 tv_3d: bool = False, init_iterations: int = 4, init_subsets: int = 8, shared_noise: bool = True,
                 conditional: bool = True, zeta: float | None = None, prox_lam: float | None = None,
                 t_start: float | None = None, sigma_y: None = None, z_context=(), ct_channel: bool = False,
                 honour_threshold: float | None = 4.0, honour_iterations: int = 3, adaptive: list[dict] | None = None) -> None:
        super().__init__(prior)
        if sigma_y is not None:
            raise InvalidValueError(f"sigma_y: SPECT25D models Poisson counts (variance = mean), there is no Gaussian "
                                    f"σ_y to set; leave it None (got {sigma_y})")
        if neighbours < 0 or mlem_iterations < 0 or tv_weight < 0:
            raise InvalidValueError("neighbours, mlem_iterations and tv_weight must be ≥ 0")
        self.num_steps, self.eta, self.neighbours = num_steps, eta, neighbours
        self.mlem_iterations, self.tv_weight, self.tv_3d = mlem_iterations, tv_weight, tv_3d
        self.init_iterations, self.init_subsets, self.shared_noise = init_iterations, init_subsets, shared_noise
        self.conditional, self.zeta, self.prox_lam, self.t_start = conditional, zeta, prox_lam, t_start
        self.z_context, self.ct_channel = tuple(float(s) for s in z_context), bool(ct_channel)
        if honour_threshold is not None and not honour_threshold > 0:
            raise InvalidValueError(f"honour_threshold: must be > 0 or None, got {honour_threshold}")
        self.honour_threshold, self.honour_iterations = honour_threshold, int(honour_iterations)
        self.adaptive = [dict(r) for r in adaptive or []]
        for r in self.adaptive:
            bad = set(r) - set(ADAPTIVE_KEYS) - {"max_counts", "max_views"}
            if bad:
                raise InvalidValueError(f"adaptive: a rule may bound max_counts / max_views and set {', '.join(ADAPTIVE_KEYS)}; got {sorted(bad)}")
        self._data: dict = {}

    def adaptive_settings(self, counts: float, views: int) -> dict:
        """The settings the first matching ``adaptive`` rule gives a study of ``counts`` total photopeak counts and
        ``views`` views (``{}`` when none matches: the constructor's settings)."""
        for r in self.adaptive:
            if (r.get("max_counts") is None or counts <= r["max_counts"]) and (r.get("max_views") is None or views <= r["max_views"]):
                return {k: v for k, v in r.items() if k in ADAPTIVE_KEYS}
        return {}

    def forward(self, y: torch.Tensor, operator, generator: torch.Generator | None = None, num_samples: int = 1,
                progress: bool = True, additive: torch.Tensor | None = None, ct: torch.Tensor | None = None):
        """:meth:`Sampler.forward` with the study's optional inputs: ``additive`` — expected scatter counts in the
        projections' layout (``(1, 1, V, X, Z)`` or ``(1, V, X, Z)``, ≥ 0); ``ct`` — the CT image in HU on the
        reconstruction grid (``(X, Y, Z)`` with optional leading singleton dimensions)."""
        if additive is not None:
            additive = additive.reshape(y.shape).to(y.dtype) if additive.numel() == y.numel() else additive
            if additive.shape != y.shape:
                raise ShapeError(f"additive: the scatter estimate must match the projections {tuple(y.shape)}, got {tuple(additive.shape)}")
            if bool((additive < 0).any()) or not bool(torch.isfinite(additive).all()):
                raise InvalidValueError("additive: the scatter estimate must be finite and ≥ 0")
        self._data = {"additive": additive, "ct": ct}
        chosen = self.adaptive_settings(float(y.sum()), int(operator.num_views))
        saved = {k: getattr(self, k) for k in chosen}
        try:
            for k, v in chosen.items():
                setattr(self, k, v)
            return super().forward(y, operator, generator, num_samples, progress)
        finally:
            self._data = {}
            for k, v in saved.items():
                setattr(self, k, v)

    def initialise(self, y: torch.Tensor, projector) -> torch.Tensor:
        """``x_init``: the OSEM of the measured counts ``y (1, 1, V, X, Z)`` with the full system model, ``(1, 1, X, Y,
        Z)`` — computed once per call and returned as ``SamplerOutput.init``."""
        if y.shape[0] != 1:
            raise ShapeError(f"y: one volume at a time, got batch {y.shape[0]}")
        subsets = max(1, min(self.init_subsets, projector.num_views))
        return osem(projector, y, self.init_iterations, subsets, additive=self._data.get("additive"))

    def condition_from(self, x_init: torch.Tensor, projector) -> tuple[torch.Tensor, torch.Tensor]:
        """``(scale, cond)`` derived from ``x_init`` (cheap: a blur, a quantile and the slice stacks)."""
        scale = spect_scale(x_init)
        return scale, spect_condition(x_init, projector.attenuation_map, scale, self.neighbours, self.z_context,
                                      self._data.get("ct"), self.ct_channel)

    def prepare(self, y: torch.Tensor, projector) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(x_init, scale, cond)`` for measured counts ``y (1, 1, V, X, Z)`` (runs the OSEM; a sampler call returns
        ``x_init`` as ``SamplerOutput.init`` without a second OSEM)."""
        x_init = self.initialise(y, projector)
        return (x_init, *self.condition_from(x_init, projector))

    def sample_one(self, y, operator, generator, counter, progress, init=None):
        x_init = init if init is not None else self.initialise(y, operator)
        scale, cond = self.condition_from(x_init, operator)
        Z = x_init.shape[-1]
        A = operator @ SlicesToVolume(Z)
        steps = []
        if self.mlem_iterations:
            steps.append(PoissonMLEMConsistency(self.mlem_iterations, scale=float(scale) / 2, offset=-1.0, lam=self.prox_lam,
                                                additive=self._data.get("additive")))
        if self.tv_weight:
            steps.append(TVProx(self.tv_weight, dims=(0, 2, 3) if self.tv_3d else (0,)))
        noise = ddim_noise(self.eta) if self.zeta is None else diffpir_noise(self.zeta)
        loop = DiffusionLoop(self.prior, steps, noise, shared_noise=self.shared_noise)
        shape = (Z, 1, *x_init.shape[2:4])
        x = loop.draw(shape, generator, torch.float32, y.device)
        ts = loop.timesteps(self.num_steps, self.t_start)
        if self.t_start is not None:
            a = self.prior.alpha_bar(ts[0], x)
            start = (2 * x_init[0].permute(3, 0, 1, 2) / scale - 1).float()  # (Z, 1, X, Y) in prior units
            x = torch.sqrt(a) * start + torch.sqrt(1 - a) * x
        x0 = loop.run(x.contiguous(), ts, generator, y, A, cond if self.conditional else None, counter, progress)
        vol = SlicesToVolume(Z)(((x0 + 1) * scale / 2).clamp_min(0).to(y.dtype))
        if self.honour_threshold is None:
            return vol, None, None
        fixed, _, _ = honour_counts(operator, y, vol, self._data.get("additive"), self.honour_threshold, self.honour_iterations)
        return fixed, fixed, (fixed - vol) ** 2  # the prior–data disagreement enters the reported variance
