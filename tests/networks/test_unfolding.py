"""Diff-Unfolding: the unrolled conditional denoiser, its sampler and trainer (tiny sizes)."""

import pytest
import torch

from monai_diffrecon.diffusion import make_scheduler
from monai_diffrecon.networks.unfolding import unfolded_denoiser
from monai_diffrecon.physics import Blur, ChannelsToComplex, MultiCoilMRI, birdcage_maps, equispaced_mask, gaussian_kernel, random_lines_mask
from monai_diffrecon.samplers.unfolding import DiffUnfolding
from monai_diffrecon.training import DSMConfig
from monai_diffrecon.training.unfolding import BlurOperatorSampler, MRIOperatorSampler, UnfoldingTrainer

N = 16


def _net(channels=1, K=2, **kw):
    torch.manual_seed(0)
    return unfolded_denoiser(make_scheduler().alphas_cumprod, channels=channels, num_unroll=K, size="tiny", **kw)


def test_identity_blocks_give_the_closed_form_map():
    """With the (zero-initialised) prior blocks at identity and K = 1, D(x_t, t, y, A) is the minimiser of
    ½‖y − Ax‖²/σ² + ᾱ‖x_t/√ᾱ − x‖²/(2(1−ᾱ)) + ρ‖x‖²/2 — checked against a dense float64 solve."""
    net = _net(K=1, sigma_y=0.05).double()
    g = torch.Generator().manual_seed(0)
    A = Blur(gaussian_kernel(1.2, 5, dtype=torch.float64))
    x_t, y = torch.randn(1, 1, 8, 8, generator=g, dtype=torch.float64), torch.randn(1, 1, 8, 8, generator=g, dtype=torch.float64)
    t = 400
    with torch.no_grad():
        out = net(x_t, t, y, A)
    a = float(make_scheduler().alphas_cumprod[t])
    rho = float(net.log_rho[0].detach().exp())
    M = torch.stack([A(e.reshape(1, 1, 8, 8)).reshape(-1) for e in torch.eye(64, dtype=torch.float64)], 1)
    lam = a / (1 - a)
    H = M.T @ M / 0.05**2 + (lam + rho) * torch.eye(64, dtype=torch.float64)
    b = M.T @ y.reshape(-1) / 0.05**2 + lam * x_t.reshape(-1) / a**0.5
    assert torch.allclose(out.reshape(-1), torch.linalg.solve(H, b), atol=1e-8)


def test_operator_is_an_input_not_a_parameter():
    net = _net(channels=2)
    maps = birdcage_maps(4, (N, N))
    x = torch.randn(1, 2, N, N)
    A4 = MultiCoilMRI(maps, random_lines_mask(N, 2, 4, generator=torch.Generator().manual_seed(0))) @ ChannelsToComplex()
    A8 = MultiCoilMRI(maps, equispaced_mask(N, 4, 2)) @ ChannelsToComplex()
    with torch.no_grad():
        o4, o8 = net(x, 500, A4(x), A4), net(x, 500, A8(x), A8)
    assert o4.shape == x.shape and not torch.allclose(o4, o8)
    assert not any("mask" in k or "coil" in k for k in net.state_dict())


@pytest.mark.parametrize("kind", ["blur", "mri"])
def test_sampler_is_data_consistent_and_swaps_operators(kind):
    g = torch.Generator().manual_seed(1)
    sigma = 0.02
    if kind == "blur":
        net = _net(sigma_y=sigma)
        x = torch.rand(2, 1, N, N, generator=g)
        ops = [Blur(gaussian_kernel(1.0, 5)), Blur(gaussian_kernel(2.0, 7))]
    else:
        net = _net(channels=2, sigma_y=sigma)
        x = torch.randn(2, 2, N, N, generator=g) * 0.3
        maps = birdcage_maps(4, (N, N))
        masks = [equispaced_mask(N, 2, 4), random_lines_mask(N, 3, 4, generator=g)]
        ops = [MultiCoilMRI(maps, m) @ ChannelsToComplex() for m in masks]
    outs = []
    for i, op in enumerate(ops):
        clean = op(x)
        noise = torch.randn(clean.shape, generator=g) if not clean.is_complex() else torch.complex(torch.randn(clean.real.shape, generator=g), torch.randn(clean.real.shape, generator=g))
        y = clean + sigma * noise * (masks[i] if kind == "mri" else 1)
        out = DiffUnfolding(net, num_steps=4)(y, op, generator=torch.Generator().manual_seed(0), progress=False)
        assert out.nfe == 4 and out.mean.shape == x.shape
        r = op(out.mean) - y
        m = float((op(torch.ones_like(x)) != 0).sum()) * (2 if r.is_complex() else 1)
        rms = float(r.abs().pow(2).sum() / m) ** 0.5
        assert rms < 2 * sigma, rms  # data term inside the network keeps the residual at the noise level
        outs.append(out.mean)
    assert not torch.allclose(outs[0], outs[1])


@pytest.mark.parametrize("kind", ["blur", "mri"])
def test_trainer_step_reaches_every_parameter(kind, tmp_path):
    g = torch.Generator().manual_seed(0)
    if kind == "blur":
        net = _net()
        kernels = torch.stack([gaussian_kernel(s, 7) for s in (0.8, 1.6)])
        smp = BlurOperatorSampler(torch.rand(6, 1, N, N, generator=g), kernels, sigma=(0.02, 0.05))
    else:
        net = _net(channels=2)
        imgs = torch.complex(torch.randn(6, 1, N, N, generator=g), torch.randn(6, 1, N, N, generator=g)) * 0.3
        smp = MRIOperatorSampler(imgs, birdcage_maps(4, (N, N)), accelerations=(2, 3), kinds=("random", "equispaced"), center_lines=(4, 2))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    tr = UnfoldingTrainer(net, make_scheduler(), smp, tmp_path, DSMConfig(max_iterations=2, batch_size=2, warmup=1, seed=0), progress=False)
    out = tr.run(max_iterations=2)
    assert out["iteration"] == 2 and all(torch.isfinite(torch.tensor(tr.losses)))
    changed = [k for k, v in net.state_dict().items() if not torch.equal(v, before[k])]
    assert "log_rho" in changed and any(k.startswith("blocks.0.") for k in changed)
    assert (tmp_path / "model.pt").is_file()


def test_complex_operators_are_wrapped():
    net = _net(channels=2)
    maps = birdcage_maps(4, (N, N))
    A = MultiCoilMRI(maps, equispaced_mask(N, 2, 4))
    x = torch.complex(torch.randn(1, 1, N, N), torch.randn(1, 1, N, N))
    out = DiffUnfolding(net, num_steps=2)(A(x), A, generator=torch.Generator().manual_seed(0), progress=False)
    assert out.mean.shape == (1, 1, N, N) and out.mean.is_complex()
