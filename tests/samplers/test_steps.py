"""Small consistency steps: x̂₀ clamping (DiffPIR's reference behaviour) and its validation."""

from __future__ import annotations

import pytest
import torch

from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.physics import Mask
from monai_diffrecon.samplers import DPS, ClampX0, DiffPIR
from monai_diffrecon.samplers.testing import gaussian_prior


def test_clamp_x0_limits_the_estimate_and_checks_its_range():
    state = ClampX0(-1.0, 1.0)({"x0": torch.tensor([-3.0, 0.2, 5.0])})
    assert torch.equal(state["x0"], torch.tensor([-1.0, 0.2, 1.0]))
    with pytest.raises(InvalidValueError):
        ClampX0(1.0, 1.0)


def _clipped_trajectory(smp):
    """x̂₀ along 5 steps of ``smp`` on a masked problem whose data (3.0) lies far outside the clip range."""
    op = Mask((torch.rand(1, 1, 4, 4, generator=torch.Generator().manual_seed(0)) > 0.5).double())
    y = op(torch.full((1, 1, 4, 4), 3.0, dtype=torch.float64))
    traj = []
    smp.loop.run(torch.randn(1, 1, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1)), smp.loop.timesteps(5),
                 torch.Generator().manual_seed(2), y, op, trajectory=traj)
    return op, traj


def test_diffpir_clip_keeps_every_estimate_in_range():
    op, traj = _clipped_trajectory(DiffPIR(gaussian_prior(), 5, sigma_y=0.05, clip=(-0.5, 0.5)))
    # the clamp runs before the data step, so x̂₀ stays inside [−0.5, 0.5] where nothing is measured
    unmeasured = op.mask.expand(1, 1, 4, 4) == 0
    assert all(float(t[unmeasured].abs().max()) <= 0.5 + 1e-12 for t in traj)


def test_dps_clip_clamps_every_estimate_before_the_guided_step():
    prior = gaussian_prior()
    _, traj = _clipped_trajectory(DPS(prior, 5, zeta=0.5, clip=(-0.5, 0.5)))
    assert len(traj) == 5 and all(float(t.abs().max()) <= 0.5 + 1e-12 for t in traj)
    assert DPS(prior, 5).loop.x0_steps == []  # unclipped by default (the closed-form Gaussian tests)


def test_quadratic_timestep_skip_matches_diffpir_reference():
    from monai_diffrecon.diffusion import make_scheduler
    from monai_diffrecon.diffusion.schedule import timestep_sequence

    ts = timestep_sequence(make_scheduler(), 20, spacing="quad")
    assert ts[0] == 999 and ts[-1] == 0 and len(ts) == 20
    gaps = -torch.diff(ts)
    assert bool((gaps[1:] <= gaps[:-1]).all())  # big jumps at high noise, dense near t = 0
    assert int(ts[1]) == 999 - int((1000**2 / 19) ** 0.5)
    with pytest.raises(InvalidValueError):
        timestep_sequence(make_scheduler(), 20, spacing="cosine")
