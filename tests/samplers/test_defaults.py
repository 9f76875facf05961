"""Uniform construction and σ_y-derived defaults (issue 21, item 5).

Every posterior sampler takes ``sigma_y`` as a keyword; where a step size or weight should scale with the noise or
the data range, its default is derived from them (the closed-form checks of those defaults are in
``test_gaussian_closed_form.py``). Values a method cannot use are refused, not ignored."""

from __future__ import annotations

import math

import pytest
import torch

from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.modalities.mri import SelfDBPrior
from monai_diffrecon.samplers import (
    DDNM,
    DPS,
    RELD,
    SPECT25D,
    BlindPnPDM,
    DiffPIR,
    DiffUnfolding,
    MSMSampler,
    PnPDM,
    ScorePnP,
    SelfDBSampler,
)
from monai_diffrecon.samplers.base import prior_sigma_min
from monai_diffrecon.samplers.pnp_dm import annealing_length, prior_levels
from monai_diffrecon.samplers.testing import gaussian_prior


@pytest.fixture(scope="module")
def prior():
    return gaussian_prior()


def _unfolding_net(sigma_y=0.02):
    from monai_diffrecon.diffusion import make_scheduler
    from monai_diffrecon.networks.unfolding import unfolded_denoiser

    return unfolded_denoiser(make_scheduler().alphas_cumprod, num_unroll=1, size="tiny", sigma_y=sigma_y)


def _posterior_samplers(prior, sigma_y):
    from monai_diffrecon.networks import diffusion_unet

    return {"DPS": lambda: DPS(prior, 2, sigma_y=sigma_y), "DDNM": lambda: DDNM(prior, 2, sigma_y=sigma_y),
            "DiffPIR": lambda: DiffPIR(prior, 2, sigma_y=sigma_y), "PnPDM": lambda: PnPDM(prior, sigma_y=sigma_y),
            "ScorePnP": lambda: ScorePnP(prior, sigma_y=sigma_y), "RELD": lambda: RELD(prior, sigma_y=sigma_y),
            "MSM": lambda: MSMSampler(prior, sigma_y=sigma_y),
            "BlindPnPDM": lambda: BlindPnPDM(prior, prior, sigma_y=sigma_y),
            "SelfDB": lambda: SelfDBSampler(SelfDBPrior(diffusion_unet(2, 2, size="tiny")), sigma_y=sigma_y),
            "DiffUnfolding": lambda: DiffUnfolding(_unfolding_net(sigma_y), sigma_y=sigma_y)}


@pytest.mark.parametrize("name", ["DPS", "DDNM", "DiffPIR", "PnPDM", "ScorePnP", "RELD", "MSM", "BlindPnPDM", "SelfDB",
                                  "DiffUnfolding"])
def test_every_posterior_sampler_takes_sigma_y_and_refuses_bad_values(prior, name):
    assert _posterior_samplers(prior, 0.03)[name]().sigma_y == pytest.approx(0.03)
    for bad in (-0.1, math.nan, math.inf):
        with pytest.raises(InvalidValueError, match="sigma_y"):
            _posterior_samplers(prior, bad)[name]()


def test_samplers_whose_noise_is_not_a_free_sigma_y_refuse_one():
    from monai_diffrecon.networks import diffusion_unet

    with pytest.raises(InvalidValueError, match="Poisson"):  # SPECT: counts, variance = mean
        SPECT25D(gaussian_prior(), sigma_y=0.05)
    assert SPECT25D(gaussian_prior(), sigma_y=None).prox_lam is None
    with pytest.raises(InvalidValueError, match="unrolled network"):  # the data term lives in the trained network
        DiffUnfolding(_unfolding_net(0.02), sigma_y=0.05)
    assert DiffUnfolding(_unfolding_net(0.02)).sigma_y == pytest.approx(0.02)
    with pytest.raises(InvalidValueError, match="DiffPIR needs"):
        DiffPIR(gaussian_prior(), 2, sigma_y=0.0)
    assert SelfDBSampler(SelfDBPrior(diffusion_unet(2, 2, size="tiny"))).sigma_y is None


def test_pnpdm_defaults_follow_sigma_y_and_the_data_range(prior):
    s0 = prior_sigma_min(prior)
    assert s0 == pytest.approx(0.01, rel=1e-3)  # the DDPM linear schedule's σ(0)
    p = PnPDM(prior, sigma_y=0.1)
    assert (p.rho0, p.rho_min, p.rho_decay) == (10.0, 0.05, 0.9)  # ρ_min = σ_y/2 (was a fixed 0.3)
    assert p.burn_in == annealing_length(10.0, 0.9, 0.05) == 51 and p.num_iters == 111
    assert 10.0 * 0.9 ** (p.burn_in - 1) > 0.05 >= 10.0 * 0.9**p.burn_in  # averaging starts when ρ reaches ρ_min
    assert PnPDM(prior, sigma_y=0.001).rho_min == pytest.approx(1.5 * s0)  # floor above the prior's σ(0)
    assert PnPDM(prior, sigma_y=0.1, data_range=(0.0, 1.0)).rho0 == 5.0
    assert PnPDM(prior, 0.1, 30).burn_in == 29  # an explicit short run still averages its last state
    ts = prior_levels(prior, 0.3, 100)
    assert float(ts[0]) == pytest.approx(float(prior.match(0.3)[0])) and float(ts[-1]) == pytest.approx(0.0, abs=1e-9)
    assert bool((ts[1:] < ts[:-1]).all()) and 10 <= ts.numel() <= 40


def test_score_pnp_dps_reld_blind_defaults(prior):
    s = ScorePnP(prior, "hqs", sigma_y=0.1)
    assert (s.sigma_start, s.sigma_end, s.lam) == (0.5, 0.1, 1.0)  # DPIR: σ_K = σ_y; λ = 1 the posterior's weight
    assert s.sigmas[0] == pytest.approx(0.5) and s.sigmas[-1] == pytest.approx(0.1)
    assert ScorePnP(prior, "hqs", sigma_y=0.001).sigma_end == pytest.approx(prior_sigma_min(prior))
    assert ScorePnP(prior, "pgm", sigma_y=0.1).lam == pytest.approx(1 / 0.4)  # λα = 1
    assert ScorePnP(prior, sigma_y=0.1, data_range=(0.0, 1.0)).sigma_start == 0.25
    assert ScorePnP(torch.nn.Identity(), sigma_y=0.1).sigma_end == 0.1  # a denoiser without a schedule: no floor
    assert DPS(prior).zeta == 1.0 and DPS(prior, data_range=(0.0, 1.0)).zeta == 0.5 and DPS(prior).sigma_y is None
    assert RELD(prior, sigma=0.1, sigma_y=0.05).lam == pytest.approx(0.25)  # (σ_y/σ)²
    b = BlindPnPDM(prior, prior)  # σ_y = 0.05: PRISM's settings exactly (the natural_blind_deblur bundle's output)
    assert (b.rho, b.sigma, b.prior_spacing) == ((1.0, 0.9, 0.1), (0.5, 0.98, 0.08), "uniform")
    assert BlindPnPDM(prior, prior, sigma_y=0.01).sigma == pytest.approx((0.1, 0.98, 0.016))
    assert MSMSampler(prior).data_weight(torch.tensor(0.5)) == 1.0  # noiseless: replace the measured lines
    a = torch.tensor(1 / (1 + 0.1**2))  # σ_t = 0.1 = σ_y: half-way
    assert float(MSMSampler(prior, sigma_y=0.1).data_weight(a)) == pytest.approx(0.5)
