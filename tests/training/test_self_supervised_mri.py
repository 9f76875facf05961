"""MSM and SelfDB: the losses read only undersampled k-space (a poisoned truth changes nothing), train, resume, and
their samplers run with the expected NFE and data consistency."""

from __future__ import annotations

import pytest
import torch

from monai_diffrecon.data.mri_sim import mr_phantom, simulate_multicoil
from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.diffusion import DiffusionPrior, make_scheduler
from monai_diffrecon.modalities.mri import SelfDBPrior
from monai_diffrecon.networks import diffusion_unet
from monai_diffrecon.physics import MultiCoilMRI
from monai_diffrecon.physics.functional import sense_expand
from monai_diffrecon.samplers import MSMSampler, SelfDBSampler
from monai_diffrecon.samplers.msm import draw_training_mask
from monai_diffrecon.training import DSMConfig, KSpaceSampler, MSMTrainer, SelfDBTrainer
from monai_diffrecon.training.selfdb import subsample_lines

N = 16


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    imgs = torch.stack([mr_phantom(N, g) for _ in range(6)])
    ks, masks = [], []
    for i in range(6):
        smp = simulate_multicoil(imgs[i:i + 1], coils=4, acceleration=2, center_lines=4, noise_sigma=0.01, generator=torch.Generator().manual_seed(i))
        ks.append(smp.kspace)
        masks.append(smp.mask)
    return {"kspace": torch.cat(ks), "mask": torch.cat(masks), "maps": smp.maps, "truth": imgs[:, None]}


def _trainer(kind, tmp_path, data, **kw):
    torch.manual_seed(0)
    net = diffusion_unet(2, 2, size="tiny")
    cfg = DSMConfig(max_iterations=3, batch_size=2, checkpoint_every=2, seed=1)
    cls = {"msm": MSMTrainer, "selfdb": SelfDBTrainer}[kind]
    extra = {"center_lines": 4} if kind == "selfdb" else {}
    return cls(net, make_scheduler(), KSpaceSampler(data["kspace"], data["mask"], data["maps"]), tmp_path / kind, cfg, progress=False, **extra, **kw)


@pytest.mark.parametrize("kind, kw", [("msm", {}), ("msm", {"eta": 0.01}), ("msm", {"eta": 0.01, "sure_batch": 1}), ("selfdb", {})])
def test_loss_never_reads_fully_sampled_data(kind, kw, tmp_path, data):
    tr = _trainer(kind, tmp_path, data, **kw)
    batch = KSpaceSampler(data["kspace"], data["mask"], data["maps"])(torch.Generator().manual_seed(3), 2)
    poisoned = dict(batch, truth=torch.full((2, 1, N, N), float("nan")), kspace_full=torch.full((2, 4, N, N), float("nan")))
    clean = dict(batch, truth=data["truth"][:2], kspace_full=torch.zeros(2, 4, N, N, dtype=torch.complex64))
    a = tr.loss(poisoned, torch.Generator().manual_seed(5))
    b = tr.loss(clean, torch.Generator().manual_seed(5))
    assert torch.isfinite(a) and float(a.detach()) == float(b.detach())
    # and the loss only sees k-space on each item's own mask: changing unmeasured k-space entries changes nothing
    other = dict(batch, kspace=batch["kspace"] + (1 - batch["mask"]) * 100.0)
    assert float(tr.loss(other, torch.Generator().manual_seed(5))) == pytest.approx(float(a), rel=1e-6)


@pytest.mark.parametrize("kind", ["msm", "selfdb"])
def test_trains_and_resumes_exactly(kind, tmp_path, data):
    a = _trainer(kind, tmp_path / "a", data)
    a.run(max_iterations=3)
    b = _trainer(kind, tmp_path / "b", data)
    b.run(max_iterations=2)
    b2 = _trainer(kind, tmp_path / "b", data)
    b2.run(max_iterations=3)
    assert a.losses == b2.losses and all(torch.isfinite(torch.tensor(a.losses)))
    for p, q in zip(a.ema.state_dict().values(), b2.ema.state_dict().values()):
        assert torch.equal(p, q)


def test_subsampling_keeps_acs_and_nests():
    g = torch.Generator().manual_seed(0)
    m = draw_training_mask(64, 4, 8, g)
    m1 = subsample_lines(m, 0.5, 8, g)
    m2 = subsample_lines(m1, 0.5, 8, g)
    assert bool((m1 <= m).all() and (m2 <= m1).all())
    assert bool((m2[..., 28:36] == 1).all()) and m2.sum() < m.sum()
    covered = draw_training_mask(64, 4, 8, g, uncovered=(m.reshape(-1) == 0))
    assert float((covered.reshape(-1) * (m.reshape(-1) == 0)).sum()) > 0.5 * float(covered.sum() - 8)


def test_samplers_run_with_data_consistency(data):
    torch.manual_seed(0)
    net = diffusion_unet(2, 2, size="tiny").eval()
    A = MultiCoilMRI(data["maps"], data["mask"][:1])
    y = data["kspace"][:1]
    prior = DiffusionPrior(net, make_scheduler())
    msm = MSMSampler(prior, num_steps=3, loops=2, acceleration=2, center_lines=4)
    with torch.no_grad():
        out = msm(y, A, generator=torch.Generator().manual_seed(0), num_samples=2, progress=False)
        free = MSMSampler(prior, num_steps=3, loops=2, gamma=0.0, acceleration=2, center_lines=4)(y, A, generator=torch.Generator().manual_seed(0), progress=False)
    assert out.x.shape == (2, 1, 1, N, N) and out.x.is_complex() and out.nfe == 12
    res = lambda x: float((A(x) - y).norm())  # noqa: E731
    assert res(out.mean) < res(free.mean)
    sdb = SelfDBSampler(SelfDBPrior(net), num_steps=3, t_start=1.0, sigma_max=0.05)
    with torch.no_grad():
        o = sdb(y, A, generator=torch.Generator().manual_seed(0), progress=False)
        o2 = sdb(y, A, generator=torch.Generator().manual_seed(0), progress=False)
    assert o.nfe == 3 and torch.equal(o.x, o2.x) and o.x.shape == (1, 1, 1, N, N)
    assert res(o.mean) < float(y.norm())
    # the coil-combined data step keeps the acquired lines: its k-space matches y there up to the coil projection
    k = sense_expand(o.mean, data["maps"], A.mask)
    assert float((k - y).norm()) < 0.5 * float(y.norm())


class _InterfaceOnly:
    """A MultiCoilMRI seen only through its operator interface: reading its coil maps (unpacking the physics, as the
    samplers once did) fails the test."""

    ALLOWED = {"restrict", "expand", "combine", "mask", "adjoint", "forward", "normal", "__call__", "check_input", "check_output",
               "in_shape", "out_shape", "in_complex", "out_complex", "prox_l2", "pinv"}

    def __init__(self, op):
        self._op = op

    def __call__(self, x):
        return self._op(x)

    def __getattr__(self, name):
        if name not in self.ALLOWED:
            raise AssertionError(f"the sampler read operator.{name}")
        return getattr(self._op, name)


def test_msm_and_selfdb_act_through_the_operator_interface(data):
    torch.manual_seed(0)
    net = diffusion_unet(2, 2, size="tiny").eval()
    A = MultiCoilMRI(data["maps"], data["mask"][:1])
    y = data["kspace"][:1]
    prior = DiffusionPrior(net, make_scheduler())
    with torch.no_grad():
        for smp in (MSMSampler(prior, num_steps=3, loops=2, acceleration=2, center_lines=4),
                    MSMSampler(prior, num_steps=3, loops=2, acceleration=2, center_lines=4, sigma_y=0.01, clip=2.0),
                    SelfDBSampler(SelfDBPrior(net), num_steps=2), SelfDBSampler(SelfDBPrior(net), num_steps=2, keep=(0.6, 0.6))):
            a = smp(y, _InterfaceOnly(A), generator=torch.Generator().manual_seed(0), progress=False)
            b = smp(y, A, generator=torch.Generator().manual_seed(0), progress=False)
            assert torch.equal(a.mean, b.mean) and torch.isfinite(torch.view_as_real(a.mean)).all()


def test_selfdb_training_endpoints_start_from_submasked_data(data):
    """keep=(k1, k2): each chain starts from the trainer's sub-sampled bridge state (fresh sub-masks per chain), so
    chains differ and their mean uses every line; the 2D-mask case is refused in one line."""
    torch.manual_seed(0)
    net = diffusion_unet(2, 2, size="tiny").eval()
    with torch.no_grad():  # MONAI zero-initialises the output convolution: give the untrained network an input dependence
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    mask = torch.zeros(1, 1, 1, N)
    mask[..., ::2] = 1
    mask[..., 6:10] = 1
    A = MultiCoilMRI(data["maps"], mask)
    y = A(data["truth"][:1].to(torch.complex64))
    smp = SelfDBSampler(SelfDBPrior(net), num_steps=1, keep=(0.5, 0.5), center_lines=4)
    with torch.no_grad():
        o = smp(y, A, generator=torch.Generator().manual_seed(0), num_samples=3, progress=False)
    assert o.nfe == 3 and not torch.equal(o.x[0], o.x[1]) and float(o.std.max()) > 0
    with pytest.raises(InvalidValueError):
        SelfDBSampler(SelfDBPrior(net), keep=(0.0, 0.5))
    A2 = MultiCoilMRI(data["maps"], torch.ones(1, 1, N, N))
    with pytest.raises(InvalidValueError, match="2D"), torch.no_grad():
        smp(y, A2, generator=torch.Generator().manual_seed(0), progress=False)


def test_msm_trainer_takes_the_edm_recipe_and_its_prior_reads_it(tmp_path, data):
    """The v2 recipe (EDM preconditioning, EDM weight, log-normal σ, bf16) trains MSM; the uniform-ε weight is the
    paper's SNR weight ᾱ/(1 − ᾱ); a DiffusionPrior with the trainer's prior_kwargs gives the trainer's x̂₀."""
    torch.manual_seed(0)
    cfg = DSMConfig(max_iterations=2, batch_size=2, checkpoint_every=5, seed=1, prediction="edm", loss_weighting="edm",
                    t_sampling="lognormal", precision="bf16")
    tr = MSMTrainer(diffusion_unet(2, 2, size="tiny"), make_scheduler(), KSpaceSampler(data["kspace"], data["mask"], data["maps"]),
                    tmp_path / "edm", cfg, progress=False, eta=0.01, sure_weight=0.1, sure_batch=1)
    tr.run(max_iterations=2)
    assert all(torch.isfinite(torch.tensor(tr.losses)))
    eps = MSMTrainer(diffusion_unet(2, 2, size="tiny"), make_scheduler(), KSpaceSampler(data["kspace"], data["mask"], data["maps"]),
                     tmp_path / "eps", DSMConfig(max_iterations=1, batch_size=2), progress=False)
    a = torch.tensor([0.2, 0.7]).reshape(2, 1, 1, 1)
    assert torch.allclose(eps.x0_weight(a), a / (1 - a))
    prior = DiffusionPrior(tr.ema.eval(), make_scheduler(), **tr.prior_kwargs())
    A = MultiCoilMRI(data["maps"], data["mask"][:1])
    s_t = data["kspace"][:1] * 0.5
    tr.cfg.precision = "fp32"
    with torch.no_grad():
        t = torch.tensor([300.0])
        ab = prior.alpha_bar(t, s_t.real)
        want = tr._x0.__func__(type("T", (), {"autocast": tr.autocast, "model": tr.ema, "parameterization": tr.parameterization})(),
                               s_t, A, t, ab)
        from monai_diffrecon.physics.functional.sense import channels_to_complex, complex_to_channels

        got = channels_to_complex(prior.x0(complex_to_channels(A.adjoint(s_t)), t))
    assert torch.allclose(got, want, atol=1e-5)


def test_selfdb_trains_in_bf16_and_refuses_diffusion_recipe_keys(tmp_path, data):
    cfg = DSMConfig(max_iterations=2, batch_size=2, checkpoint_every=5, seed=1, precision="bf16")
    tr = SelfDBTrainer(diffusion_unet(2, 2, size="tiny"), make_scheduler(), KSpaceSampler(data["kspace"], data["mask"], data["maps"]),
                       tmp_path / "bf16", cfg, progress=False, center_lines=4)
    tr.run(max_iterations=2)
    assert all(torch.isfinite(torch.tensor(tr.losses)))
    from monai_diffrecon.errors import TrainingError

    with pytest.raises(TrainingError, match="prediction"):
        SelfDBTrainer(diffusion_unet(2, 2, size="tiny"), make_scheduler(), KSpaceSampler(data["kspace"], data["mask"], data["maps"]),
                      tmp_path / "edm", DSMConfig(prediction="edm"), progress=False, center_lines=4)


@pytest.mark.parametrize("kind", ["msm", "selfdb"])
def test_non_finite_network_output_is_the_trainers_nan_error(kind, tmp_path, data):
    """The trainers speak through MultiCoilMRI; a NaN network output still stops with the trainer's TrainingError
    (the operator's input check is off inside the loss), and the maps-tensor call of the old API is refused."""
    from monai_diffrecon.errors import TrainingError
    from monai_diffrecon.modalities.mri import msm_x0, selfdb_predict

    tr = _trainer(kind, tmp_path, data)
    with torch.no_grad():
        for p in tr.model.parameters():
            p.fill_(float("nan"))
    with pytest.raises(TrainingError, match="loss is nan"):
        tr.run()
    k = data["kspace"][:1]
    with pytest.raises(InvalidValueError, match="MultiCoilMRI operator"):
        msm_x0(lambda x, t: x, k, data["maps"], torch.zeros(1), torch.tensor(0.5))
    with pytest.raises(InvalidValueError, match="MultiCoilMRI operator"):
        selfdb_predict(lambda x, t: x, k, data["maps"], torch.zeros(1), 1000)
