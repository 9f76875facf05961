"""The per-modality preprocessing shared by samplers and trainers (monai_diffrecon.modalities) and the bridge priors
(issue 22, item 7): old import paths still resolve to the same objects, the moved functions compute what they did,
and the DB-CR / SelfDB samplers take a prior (a bare network is wrapped, with a DeprecationWarning)."""

from __future__ import annotations

import pytest
import torch

from monai_diffrecon.diffusion.bridge import BridgePrior
from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.modalities import mri, satellite, spect
from monai_diffrecon.networks import dbcr_network, diffusion_unet
from monai_diffrecon.physics.functional.sense import complex_to_channels, sense_combine
from monai_diffrecon.samplers import DBCR, SelfDBSampler

from ..device_cases import _g, _mri_data


def test_old_import_paths_are_aliases():
    from monai_diffrecon.data.mri_sim import acs_scale
    from monai_diffrecon.data.satellite_sim import sen12ms_normalize
    from monai_diffrecon.samplers.spect25d import MU_REF, spect_condition, spect_scale
    from monai_diffrecon.training.msm import msm_x0
    from monai_diffrecon.training.selfdb import selfdb_predict
    from monai_diffrecon.workflows.mri import acs_lines

    assert (acs_scale, acs_lines) == (mri.acs_scale, mri.acs_lines)
    assert (msm_x0, selfdb_predict) == (mri.msm_x0, mri.selfdb_predict)
    assert (spect_scale, spect_condition, MU_REF) == (spect.spect_scale, spect.spect_condition, spect.MU_REF)
    assert sen12ms_normalize is satellite.sen12ms_normalize


def test_acs_block_lines_and_scale():
    W = 16
    mask = torch.zeros(1, 1, 1, W)
    mask[..., [1, 6, 7, 8, 9, 10, 13]] = 1.0  # centre line 8, block 6..10
    assert mri.acs_block(mask) == (6, 10) and mri.acs_lines(mask) == 5
    A, k = _mri_data(3)
    maps = A.coil_maps
    acs = torch.zeros(1, 1, 1, k.shape[-1])
    lo, hi = mri.acs_block(A.mask)
    acs[..., lo:hi + 1] = 1.0
    assert mri.acs_scale(k, maps, A.mask) == float(sense_combine(k, maps, acs).abs().amax())
    off = torch.ones(1, 1, 1, k.shape[-1])
    off[..., k.shape[-1] // 2] = 0.0  # the centre is not sampled: no ACS block, the whole data sets the scale
    assert mri.acs_block(off) is None and mri.acs_lines(off) == 0
    assert mri.acs_scale(k, maps, off) == float(sense_combine(k, maps).abs().amax())


def test_msm_x0_inverts_the_forward_diffusion_with_the_true_noise():
    A, k = _mri_data(4)
    x = sense_combine(k, A.coil_maps, A.mask)
    e = torch.randn(x.shape, dtype=x.dtype, generator=_g(5))
    a = torch.tensor(0.3)
    u = a.sqrt() * x + (1 - a).sqrt() * e
    s_t = A(u)  # M F S u
    u_seen = sense_combine(s_t, A.coil_maps, A.mask)
    e_seen = (u_seen - a.sqrt() * x) / (1 - a).sqrt()  # what an oracle ε-network would predict for this input
    x0 = mri.msm_x0(lambda c, t: complex_to_channels(e_seen), s_t, A, torch.zeros(1), a)
    assert torch.allclose(x0, x, atol=1e-5)


def test_selfdb_prior_is_selfdb_predict_and_the_sampler_wraps_a_bare_network():
    net = diffusion_unet(2, 2, size="tiny").eval()
    A, k = _mri_data(6)
    prior = mri.SelfDBPrior(net)
    t = torch.full((1,), 0.4)
    with torch.no_grad():
        assert torch.equal(prior.x0(k, t, A), mri.selfdb_predict(net, k, A, t, 1000))
        assert torch.equal(prior.x0(k, 0.4, A), prior.x0(k, t, A))
        want = SelfDBSampler(prior, num_steps=2)(k, A, generator=_g(0), progress=False).mean
        with pytest.warns(DeprecationWarning, match="SelfDBPrior"):
            old = SelfDBSampler(net, num_steps=2)
        assert isinstance(old.prior, mri.SelfDBPrior)
        assert torch.equal(old(k, A, generator=_g(0), progress=False).mean, want)


def test_dbcr_prior_and_sampler():
    torch.manual_seed(0)
    net = dbcr_network(size="tiny").eval()
    prior = satellite.DBCRPrior(net, num_train_steps=500)
    assert (prior.optical_channels, prior.sar_channels, prior.use_sar) == (4, 2, True)
    y = torch.rand(1, 6, 16, 16, generator=_g(7))
    with torch.no_grad():
        direct = net(y[:, :4], torch.full((1,), 0.5 * 499), y[:, :4], y[:, 4:])
        assert torch.equal(prior.x0(y[:, :4], 0.5, y[:, :4], y[:, 4:]), direct)
        want = DBCR(prior, num_steps=2)(y, None, generator=_g(1), progress=False).mean
        with pytest.warns(DeprecationWarning, match="DBCRPrior"):
            old = DBCR(net, num_steps=2, num_train_steps=500)
        assert torch.equal(old(y, None, generator=_g(1), progress=False).mean, want)
    with pytest.raises(InvalidValueError, match="disagrees"):
        DBCR(prior, num_train_steps=1000)
    with pytest.raises(InvalidValueError, match="a prior"):
        BridgePrior(prior)
    with pytest.raises(InvalidValueError, match="DBCRPrior expected"):
        DBCR(mri.SelfDBPrior(diffusion_unet(2, 2, size="tiny")))
