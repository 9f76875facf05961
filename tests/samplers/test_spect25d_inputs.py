"""SPECT25D's study inputs (issue 23): the scatter estimate enters the data model of the initial OSEM and of every
MLEM step; the condition gains z-context and CT channels; the prior's batch chunking leaves the result unchanged."""

from __future__ import annotations

import pytest
import torch

from monai_diffrecon.diffusion import DiffusionPrior, make_scheduler
from monai_diffrecon.errors import InvalidValueError, ShapeError
from monai_diffrecon.modalities.spect import (REFERENCE, condition_channels, full_dose_reference, gaussian_filter3d,
                                              spect_condition, spect_scale)
from monai_diffrecon.networks import diffusion_unet
from monai_diffrecon.physics import SPECTProjector
from monai_diffrecon.recon.em import osem
from monai_diffrecon.samplers import SPECT25D


def _problem(seed=3):
    g = torch.Generator().manual_seed(seed)
    mu = 0.1 + 0.05 * torch.rand(16, 16, 8, generator=g, dtype=torch.float64)
    P = SPECTProjector(torch.arange(0, 360, 30.0), 8.0, mu.float(), (2.0, 0.05), radii_mm=80.0)
    x = torch.rand(1, 1, 16, 16, 8, generator=g)
    scatter = 0.4 * P(x).mean() * torch.ones(P(x).shape)
    y = torch.poisson(50 * (P(x) + scatter), generator=g)
    return P, y, 50 * scatter


def _prior(cond_channels, **kw):
    torch.manual_seed(0)
    return DiffusionPrior(diffusion_unet(2, 1, cond_channels=cond_channels, size="tiny").eval(), make_scheduler(), **kw)


def test_condition_channels_in_order():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 1, 8, 8, 6, generator=g) + 0.1
    mu = torch.full((8, 8, 6), 0.154)
    s = spect_scale(x)
    c = spect_condition(x, mu, s, 1, z_context=(2.0, 8.0), ct_channel=True)
    assert c.shape == (6, condition_channels(1, (2.0, 8.0), True), 8, 8) == (6, 7, 8, 8)
    assert torch.allclose(c[:, 1], (2 * x[0, 0].permute(2, 0, 1) / s - 1))  # centre slice
    # z-smoothing keeps a constant-in-z volume unchanged and averages a varying one
    flat = torch.ones(1, 1, 8, 8, 6)
    cf = spect_condition(flat, mu, torch.tensor(1.0), 0, z_context=(3.0,))
    assert torch.allclose(cf[:, 1], torch.ones(6, 8, 8))
    assert float(c[:, 3].std()) < float(c[:, 1].std())
    # the CT channel synthesised from μ: water is 0 HU; an explicit CT image is used as given, clipped to [-1000, 2000]
    assert torch.allclose(c[:, 6], torch.zeros(6, 8, 8), atol=1e-6)
    ct = torch.full((8, 8, 6), 5000.0)
    assert torch.allclose(spect_condition(x, mu, s, 1, ct=ct, ct_channel=True)[:, -1], torch.full((6, 8, 8), 2.0))
    with pytest.raises(InvalidValueError):
        spect_condition(x, mu, s, 1, z_context=(0.0,))


def test_scatter_estimate_enters_the_initial_osem_and_the_data_steps():
    P, y, scatter = _problem()
    samp = SPECT25D(_prior(4), num_steps=2, init_iterations=2, init_subsets=4, t_start=100)
    with torch.no_grad():
        out = samp(y, P, generator=torch.Generator().manual_seed(1), progress=False, additive=scatter)
        plain = samp(y, P, generator=torch.Generator().manual_seed(1), progress=False)
    assert torch.allclose(out.init, osem(P, y, 2, 4, additive=scatter))
    assert not torch.allclose(out.init, plain.init)
    # scatter-corrected reconstructions carry fewer counts (the scatter is no longer put into the image)
    assert float(out.mean.sum()) < 0.9 * float(plain.mean.sum())
    assert samp._data == {}  # per-call inputs do not leak into the next call
    with pytest.raises(ShapeError):
        samp(y, P, generator=torch.Generator().manual_seed(1), progress=False, additive=scatter[:, :, :3])
    with pytest.raises(InvalidValueError):
        samp(y, P, generator=torch.Generator().manual_seed(1), progress=False, additive=-scatter)


def test_ct_channel_and_z_context_sampler_runs_and_chunking_is_invisible():
    P, y, _ = _problem()
    kw = dict(num_steps=2, init_iterations=1, init_subsets=2, t_start=100, neighbours=2, z_context=(4.0,), ct_channel=True)
    cc = condition_channels(2, (4.0,), True)
    ct = torch.zeros(16, 16, 8)
    with torch.no_grad():
        a = SPECT25D(_prior(cc), **kw)(y, P, generator=torch.Generator().manual_seed(2), progress=False, ct=ct)
        b = SPECT25D(_prior(cc, batch_chunk=3), **kw)(y, P, generator=torch.Generator().manual_seed(2), progress=False, ct=ct)
    assert a.mean.shape == (1, 1, 16, 16, 8)
    assert torch.allclose(a.mean, b.mean, rtol=1e-4, atol=1e-5)


def test_full_dose_reference_is_osem_then_filter():
    P, y, scatter = _problem()
    ref = full_dose_reference(P, y, scatter, iterations=3, subsets=4, sigma=1.0)
    assert torch.allclose(ref, gaussian_filter3d(osem(P, y, 3, 4, additive=scatter), 1.0))
    assert REFERENCE == {"iterations": 8, "subsets": 8, "sigma": 0.5}
    v = torch.rand(1, 1, 16, 16, 12, generator=torch.Generator().manual_seed(0))
    f = gaussian_filter3d(v, 1.5)
    assert abs(float(f.mean()) - float(v.mean())) < 0.02 and float(f.std()) < float(v.std())


def test_counts_outrank_the_prior_and_the_disagreement_is_reported():
    """A tiny untrained prior cannot explain the counts: with ``honour_threshold`` the flagged regions are pulled to the
    data (χ² closer to the Poisson level) and the change appears in the std; ``None`` turns it off."""
    P, y, scatter = _problem()
    kw = dict(num_steps=2, init_iterations=2, init_subsets=4, t_start=100)
    with torch.no_grad():
        on = SPECT25D(_prior(4), honour_threshold=2.0, **kw)(y, P, generator=torch.Generator().manual_seed(1), progress=False, additive=scatter)
        off = SPECT25D(_prior(4), honour_threshold=None, **kw)(y, P, generator=torch.Generator().manual_seed(1), progress=False, additive=scatter)

    def chi2(x):
        est = P(x) + scatter
        return float(((est - y) ** 2 / est.clamp_min(1)).mean())

    assert chi2(on.mean) < chi2(off.mean)
    assert float(off.std.max()) == 0.0 and float(on.std.max()) > 0  # one sample: the std is the disagreement alone
    with pytest.raises(InvalidValueError):
        SPECT25D(_prior(4), honour_threshold=0.0)


def test_dose_adaptive_rules_pick_settings_from_counts_and_views_and_restore_them():
    smp = SPECT25D(_prior(4), num_steps=2, init_iterations=1, init_subsets=2, honour_threshold=None,
                   adaptive=[{"max_views": 3, "num_steps": 1, "t_start": None}, {"max_counts": 1000.0, "tv_weight": 0.05}])
    assert smp.adaptive_settings(50.0, 2) == {"num_steps": 1, "t_start": None}  # the first matching rule wins
    assert smp.adaptive_settings(50.0, 12) == {"tv_weight": 0.05}
    assert smp.adaptive_settings(1e6, 12) == {}
    P, y, _ = _problem()
    seen = []
    real = smp.sample_one

    def spy(*a, **k):
        seen.append((smp.num_steps, smp.tv_weight))
        return real(*a, **k)

    smp.sample_one = spy
    with torch.no_grad():
        smp(y, P, generator=torch.Generator().manual_seed(0), progress=False)  # 12 views, many counts: no rule
        idx = torch.tensor([0, 4, 8])
        smp(y[:, :, idx], P.select_views(idx), generator=torch.Generator().manual_seed(0), progress=False)  # 3 views
        smp(torch.poisson(y / y.sum() * 500), P, generator=torch.Generator().manual_seed(0), progress=False)  # ~500 counts
    assert seen == [(2, 0.002), (1, 0.002), (2, 0.05)]
    assert (smp.num_steps, smp.t_start, smp.tv_weight) == (2, None, 0.002)  # the constructor's settings are back
    with pytest.raises(InvalidValueError, match="adaptive"):
        SPECT25D(_prior(4), adaptive=[{"max_views": 3, "init_iterations": 9}])
