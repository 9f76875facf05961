"""``SamplerOutput.init``: the starting reconstruction each sampler computes from the data, once per call (issue 20).

SPECT25D used to run its OSEM once per sample and the SPECT workflow ran it once more for the figure; the OSEM now
runs once per call, whatever ``num_samples``, and is returned in ``out.init``."""

from __future__ import annotations

import pytest
import torch

from monai_diffrecon.physics.functional.sense import sense_combine
from monai_diffrecon.recon import cg_sense, osem
from monai_diffrecon.samplers import DDNM, DPS, RELD, DiffPIR, MSMSampler, PnPDM, ScorePnP, SelfDBSampler, Unconditional
from monai_diffrecon.samplers.base import regularised_start

from ..device_cases import _blur_problem, _g, _gauss_prior, _mri_data, _spect_problem


def _counting(monkeypatch, module, name):
    calls = []
    real = getattr(module, name)

    def wrapped(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(module, name, wrapped)
    return calls


@pytest.mark.parametrize("t_start", [None, 50])
def test_spect25d_runs_its_osem_once_per_call_and_returns_it(monkeypatch, t_start):
    import monai_diffrecon.samplers.spect25d as mod
    from monai_diffrecon.diffusion import DiffusionPrior, make_scheduler
    from monai_diffrecon.networks import diffusion_unet
    from monai_diffrecon.samplers import SPECT25D

    torch.manual_seed(0)
    prior = DiffusionPrior(diffusion_unet(2, 1, cond_channels=4, size="tiny"), make_scheduler())
    P, y = _spect_problem()
    smp = SPECT25D(prior, num_steps=1, init_iterations=2, init_subsets=4, t_start=t_start)
    calls = _counting(monkeypatch, mod, "osem")
    with torch.no_grad():
        res = smp(y, P, generator=_g(0), num_samples=3, progress=False)
    assert len(calls) == 1 and res.x.shape[0] == 3  # was 3 (one per sample), and a 4th in the SPECT workflow
    assert res.init.shape == (1, 1, 16, 16, 4) and res.init.shape == res.mean.shape
    assert torch.equal(res.init, osem(P, y, 2, 4))
    assert torch.equal(smp.prepare(y, P)[0], res.init)  # the public prepare() still gives the same x_init


@pytest.mark.parametrize("make", [lambda p: PnPDM(p, sigma_y=0.05, num_iters=2, burn_in=1, prior_steps=4),
                                  lambda p: ScorePnP(p, "hqs", num_iters=2, sigma_y=0.05)], ids=["PnPDM", "ScorePnP"])
def test_tikhonov_start_is_computed_once_and_returned(monkeypatch, make):
    import monai_diffrecon.samplers.pnp_dm as pnp_mod
    import monai_diffrecon.samplers.score_pnp as spnp_mod

    op, y = _blur_problem(1)
    calls = _counting(monkeypatch, pnp_mod, "regularised_start")
    calls2 = _counting(monkeypatch, spnp_mod, "regularised_start")
    out = make(_gauss_prior())(y, op, generator=_g(0), num_samples=3, progress=False)
    assert len(calls) + len(calls2) == 1  # once per call, not once per chain
    assert torch.equal(out.init, regularised_start(y, op, 0.05)) and out.init.shape == out.mean.shape


def test_reld_blind_dbcr_selfdb_msm_return_their_start():
    from monai_diffrecon.networks import dbcr_network, diffusion_unet
    from monai_diffrecon.physics import Blur, Downsample
    from monai_diffrecon.modalities.mri import SelfDBPrior
    from monai_diffrecon.modalities.satellite import DBCRPrior
    from monai_diffrecon.samplers import DBCR, BlindPnPDM

    prior = _gauss_prior(0.4, 0.3)
    op, y = _blur_problem(2)
    assert torch.equal(RELD(prior, num_iters=1)(y, op, generator=_g(0), progress=False).init, y)  # deblurring: b itself
    ds = Downsample(2).double()
    b = ds(torch.rand(1, 1, 8, 8, generator=_g(3), dtype=torch.float64))
    sr = RELD(prior, num_iters=1, sigma_y=0.05)(b, ds, generator=_g(0), progress=False)
    assert sr.init.shape == (1, 1, 8, 8) and torch.equal(sr.init, regularised_start(b, ds, 0.05))

    delta = torch.zeros(1, 1, 3, 3, dtype=torch.float64)
    delta[..., 1, 1] = 1
    blind = BlindPnPDM(prior, prior, (3, 3), 0.5, num_iters=1, burn_in=0, prior_steps=2)(y[:1], Blur(delta), generator=_g(0), progress=False)
    assert torch.equal(blind.init, y[:1])

    torch.manual_seed(0)
    cloudy_sar = torch.rand(1, 6, 16, 16, generator=_g(4))
    with torch.no_grad():
        d = DBCR(DBCRPrior(dbcr_network(size="tiny").eval()))(cloudy_sar, None, generator=_g(0), progress=False)
    assert torch.equal(d.init, cloudy_sar[:, :4]) and d.init.shape == d.mean.shape

    A, k = _mri_data(5)
    with torch.no_grad():
        s = SelfDBSampler(SelfDBPrior(diffusion_unet(2, 2, size="tiny").eval()))(k, A, generator=_g(0), progress=False)
    assert torch.equal(s.init, sense_combine(k, A.coil_maps)) and s.init.shape == s.mean.shape and s.init.is_complex()

    mprior = _gauss_prior(0.0, 0.5).float()
    warm = MSMSampler(mprior, num_steps=2, loops=1, acceleration=2, center_lines=4, t_start=300, init_iters=4)(k, A, generator=_g(0), progress=False)
    assert torch.equal(warm.init, cg_sense(A, k, 0.0, 4).to(torch.complex64)) and warm.init.shape == warm.mean.shape
    assert MSMSampler(mprior, num_steps=2, loops=1, acceleration=2, center_lines=4)(k, A, generator=_g(0), progress=False).init is None


def test_samplers_that_start_from_noise_return_no_init():
    prior = _gauss_prior()
    op, y = _blur_problem(6)
    for smp in (DPS(prior, 2), DDNM(prior, 2), DiffPIR(prior, 2, sigma_y=0.05)):
        assert smp(y, op, generator=_g(0), progress=False).init is None
    assert Unconditional(prior, (1, 1, 4, 4), 2)(None, None, generator=_g(0), progress=False).init is None
