"""MSM sampling: full multi-coil k-space from partial measurement scores (arXiv 2505.11853, Algorithm 1).

The state is the full multi-coil k-space ``z (B, C, H, W)``. Each reverse step runs ``w`` stochastic loops; loop i
draws a mask ``S_i`` from the training distribution (random Cartesian lines with ACS, preferring lines not yet
covered in this step), denoises the partial measurement ``S_i z_t`` with the network (input: the zero-filled image
``Sᴴ Fᴴ S_i z_t``; output ε → x̂₀ → ``ŝ_i = S_i F S x̂₀``), optionally applies the CS-MRI data step
``ŝ_i ← ŝ_i − γ M(ŝ_i − y)`` (M the acquisition mask), re-noises ``ŝ_i`` to level t on ``S_i`` (DDIM with η) and
writes it back into ``z_t``. The estimates are aggregated with coverage weights ``W = 1/max(C, 1)`` (``C`` the count
of loops that covered a line; lines never covered keep the previous estimate), and one DDIM step takes ``z_t`` to
``z_{t−1}``. The image is ``x = Sᴴ Fᴴ ẑ`` of the last estimate. NFE = steps × w.
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from monai_diffrecon.diffusion.schedule import timestep_sequence
from monai_diffrecon.errors import InvalidValueError, ShapeError
from monai_diffrecon.physics.functional.sense import channels_to_complex, complex_randn, complex_to_channels, sense_combine, sense_expand
from monai_diffrecon.samplers.base import Sampler

__all__ = ["MSMSampler", "draw_training_mask"]


def draw_training_mask(width: int, acceleration: float, center_lines: int, generator: torch.Generator,
                       uncovered: torch.Tensor | None = None, candidates: int = 8) -> torch.Tensor:
    """A ``(1, 1, 1, W)`` mask from the training distribution (random lines kept with the fastMRI probability, ACS
    always); with ``uncovered`` (bool ``(W,)``) the best of ``candidates`` draws covering the most uncovered lines."""
    n_target = width / acceleration
    prob = max(0.0, (n_target - center_lines) / max(width - center_lines, 1))
    lo = width // 2 - center_lines // 2
    best, score = None, -1
    for _ in range(candidates if uncovered is not None else 1):
        keep = torch.rand(width, generator=generator, dtype=torch.float64) < prob
        keep[lo:lo + center_lines] = True
        sc = int((keep & uncovered).sum()) if uncovered is not None else 0
        if sc > score:
            best, score = keep, sc
    return best.to(torch.float32).reshape(1, 1, 1, width)


class MSMSampler(Sampler):
    """Stochastic MSM sampler; with ``y`` and a ``MultiCoilMRI`` operator it samples the CS-MRI posterior.

    Args:
        prior: :class:`~monai_diffrecon.diffusion.DiffusionPrior` whose network was trained by
            :class:`~monai_diffrecon.training.MSMTrainer` (2 channels: real, imaginary).
        num_steps: DDIM steps (paper: 200). loops: w stochastic loops per step (paper: 3 for MRI).
        eta: DDIM η (paper: 0.85 for inverse problems, 1.0 for generation).
        gamma: data-step size γ (paper: 2.0 in its own scaling; 1.0 here replaces the measured lines by y).
        acceleration, center_lines: the training mask distribution p(S).
    """

    def __init__(self, prior, num_steps: int = 50, loops: int = 3, eta: float = 0.85, gamma: float = 1.0, acceleration: float = 4.0,
                 center_lines: int = 20) -> None:
        super().__init__(prior)
        if loops < 1 or num_steps < 1:
            raise InvalidValueError("num_steps and loops must be ≥ 1")
        self.num_steps, self.loops, self.eta, self.gamma = num_steps, loops, eta, gamma
        self.acceleration, self.center_lines = acceleration, center_lines

    def _x0(self, s_t, mask, maps, t, a):
        u = sense_combine(s_t, maps, mask)
        eps = channels_to_complex(self.prior.eps(complex_to_channels(u), t))
        return (u - torch.sqrt(1 - a) * eps) / torch.sqrt(a)

    def sample_one(self, y, operator, generator, counter, progress):
        maps = operator.coil_maps.to(torch.complex64)
        acq = operator.mask.float()
        if y is None or not y.is_complex():
            raise ShapeError("y: complex multi-coil k-space (B, C, H, W) expected")
        B, C, H, W = y.shape
        y = y.to(torch.complex64)
        z = complex_randn((B, C, H, W), generator)
        z_hat = torch.zeros_like(z)
        steps = timestep_sequence(self.prior.scheduler, self.num_steps).tolist()
        for t, t_prev in tqdm(list(zip(steps, steps[1:] + [-1.0])), desc="MSM", disable=not progress, leave=False):
            a = self.prior.alpha_bar(t, z.real)
            a_prev = self.prior.alpha_bar(t_prev, z.real) if t_prev >= 0 else torch.ones_like(a)
            acc = torch.zeros_like(z)
            cover = torch.zeros(1, 1, 1, W)
            for _ in range(self.loops):
                S = draw_training_mask(W, self.acceleration, self.center_lines, generator, uncovered=cover.reshape(-1) == 0)
                s_t = S * z
                x0 = self._x0(s_t, S, maps, t, a)
                counter += 1
                s_hat = sense_expand(x0, maps, S)
                if self.gamma:
                    s_hat = S * (s_hat - self.gamma * acq * (s_hat - y))
                eps_k = (s_t - torch.sqrt(a) * s_hat) / torch.sqrt(1 - a)
                renoised = torch.sqrt(a) * s_hat + torch.sqrt(1 - a) * (
                    self.eta * complex_randn(z.shape, generator) + (1 - self.eta**2) ** 0.5 * eps_k)
                z = S * renoised + (1 - S) * z
                acc = acc + s_hat
                cover = cover + S
            z_hat = torch.where(cover > 0, acc / cover.clamp_min(1), z_hat)
            if t_prev < 0:
                break
            eps_z = (z - torch.sqrt(a) * z_hat) / torch.sqrt(1 - a)
            c1 = self.eta * torch.sqrt((1 - a_prev) * (1 - a / a_prev).clamp_min(0) / (1 - a)) if self.eta else torch.zeros_like(a)
            c2 = torch.sqrt((1 - a_prev - c1**2).clamp_min(0))
            z = torch.sqrt(a_prev) * z_hat + c2 * eps_z + c1 * complex_randn(z.shape, generator)
        if self.gamma:
            z_hat = z_hat - self.gamma * acq * (z_hat - y)  # final data consistency on the acquired lines
        return sense_combine(z_hat, maps), None, None
