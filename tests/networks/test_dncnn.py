"""DnCNN and the DRUNet-style UNetDenoiser (the classical denoisers of the score-based PnP comparison): noise-level map,
trainer, ScorePnP plug-in."""

import pytest
import torch

from monai_diffrecon.errors import ShapeError, TrainingError
from monai_diffrecon.networks import DnCNN, UNetDenoiser
from monai_diffrecon.physics import Blur, gaussian_kernel
from monai_diffrecon.samplers import ScorePnP
from monai_diffrecon.training import DSMConfig, GaussianDenoiserTrainer, TensorSampler


SMALL = {"dncnn": lambda: DnCNN(1, depth=4, features=8), "unet": lambda: UNetDenoiser(1, (4, 8, 8), res_units=1)}


@pytest.mark.parametrize("kind", sorted(SMALL))
@pytest.mark.parametrize("side", [16, 13, 3])
def test_noise_level_map_reaches_the_output_and_denoise_is_forward(kind, side):
    torch.manual_seed(0)
    net = SMALL[kind]().eval()
    x = torch.randn(2, 1, side, side)
    with torch.no_grad():
        a, b = net(x, 0.1), net(x, torch.tensor([0.1, 0.4]))
        assert a.shape == x.shape and torch.equal(a[0], b[0]) and not torch.equal(a[1], b[1])
        assert torch.equal(net.denoise(x, 0.1), a)
    with pytest.raises(ShapeError):
        net.denoise(x, 0.1, cond=x)
    with pytest.raises(ShapeError):
        net(torch.randn(1, 3, 8, 8), 0.1)


def test_unet_denoiser_defaults_match_the_diffusion_priors_size_and_refuse_one_level():
    assert 1.0e6 < sum(p.numel() for p in UNetDenoiser().parameters()) < 1.1e6
    with pytest.raises(ShapeError):
        UNetDenoiser(1, (8,))


@pytest.mark.parametrize("kind", ["dncnn", "unet"])
def test_trainer_learns_to_denoise_a_simple_image_family(tmp_path, kind):
    """Images are constants in [−1, 1]: the MMSE denoiser averages the pixels; 150 steps must beat the identity by far."""
    torch.manual_seed(0)  # the networks' initialisation: the test must not depend on the tests run before it
    g = torch.Generator().manual_seed(0)
    imgs = (2 * torch.rand(64, 1, 1, 1, generator=g) - 1).expand(64, 1, 16, 16).contiguous()
    net = DnCNN(1, depth=5, features=16) if kind == "dncnn" else UNetDenoiser(1, (8, 16, 16))
    tr = GaussianDenoiserTrainer(net, None, TensorSampler(imgs), tmp_path,
                                 DSMConfig(max_iterations=150, batch_size=16, lr=2e-3, warmup=10, checkpoint_every=1000), progress=False, sigma_max=0.5)
    tr.run()
    net = tr.network.eval()
    x = imgs[:8]
    noisy = x + 0.3 * torch.randn(x.shape, generator=g)
    with torch.no_grad():
        err = float((net(noisy, 0.3) - x).pow(2).mean())
    assert err < 0.3 * 0.09  # identity error is σ² = 0.09
    assert (tmp_path / "model.pt").is_file()
    with pytest.raises(TrainingError):
        GaussianDenoiserTrainer(DnCNN(1, 3, 4), None, TensorSampler(imgs), tmp_path, sigma_max=0.0)


@pytest.mark.parametrize("algorithm", ["admm", "hqs", "red"])
def test_score_pnp_runs_with_the_classical_denoiser(algorithm):
    torch.manual_seed(0)
    op = Blur(gaussian_kernel(1.0, 5))
    y = op(torch.rand(1, 1, 16, 16))
    out = ScorePnP(UNetDenoiser(1, (4, 8)).eval(), algorithm, num_iters=3, sigma_y=0.02)(y, op, generator=torch.Generator(), progress=False)
    assert out.mean.shape == y.shape and bool(torch.isfinite(out.mean).all())
    out = ScorePnP(DnCNN(1, 3, 4).eval(), algorithm, num_iters=3, sigma_y=0.02)(y, op, generator=torch.Generator(), progress=False)
    assert out.mean.shape == y.shape and out.nfe == 3 and bool(torch.isfinite(out.mean).all())


def test_autoencoder_trainer_reduces_reconstruction_error(tmp_path):
    from monai.networks.nets import AutoencoderKL

    from monai_diffrecon.training import AutoencoderTrainer
    from monai_diffrecon.training.autoencoder import kl_divergence

    assert float(kl_divergence(torch.zeros(2, 3, 4, 4), torch.ones(2, 3, 4, 4))) == 0.0
    g = torch.Generator().manual_seed(0)
    imgs = torch.nn.functional.avg_pool2d(torch.rand(32, 1, 16, 16, generator=g), 3, 1, 1) * 2 - 1
    torch.manual_seed(0)
    ae = AutoencoderKL(spatial_dims=2, in_channels=1, out_channels=1, channels=(8, 8), latent_channels=2, num_res_blocks=1,
                       norm_num_groups=4, attention_levels=(False, False), with_encoder_nonlocal_attn=False, with_decoder_nonlocal_attn=False)
    tr = AutoencoderTrainer(ae, None, TensorSampler(imgs), tmp_path,
                            DSMConfig(max_iterations=60, batch_size=8, lr=3e-3, warmup=5, checkpoint_every=1000), progress=False)
    tr.run()
    assert sum(tr.losses[-5:]) / 5 < 0.6 * sum(tr.losses[:5]) / 5 and (tmp_path / "model.pt").is_file()
    with pytest.raises(TrainingError):
        AutoencoderTrainer(ae, None, TensorSampler(imgs), tmp_path, kl_weight=-1.0)
