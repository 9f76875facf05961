"""Blind-PnPDM mechanics with exact Gaussian ε-networks as image and kernel priors: the kernel estimate is a valid
kernel (non-negative, sums to 1) close to the truth when the kernel prior says so, and the image is about as good as
PnP-DM's with the true kernel (same prior, same annealing)."""

import pytest
import torch

from monai_diffrecon.errors import ShapeError
from monai_diffrecon.diffusion import DiffusionPrior, GaussianEpsilon, make_scheduler
from monai_diffrecon.physics import Blur, gaussian_kernel
from monai_diffrecon.samplers import PnPDM
from monai_diffrecon.samplers.blind_pnpdm import BlindPnPDM


@pytest.mark.parametrize("mode", ["fixed", "max"])
def test_blind_pnpdm_recovers_kernel_and_deblurs(mode):
    sch = make_scheduler()
    g = torch.Generator().manual_seed(0)
    truth = (0.5 + 0.3 * torch.randn(1, 1, 32, 32, generator=g, dtype=torch.float64))
    k_true = gaussian_kernel(1.5, 9, dtype=torch.float64)
    y = Blur(k_true)(truth) + 0.01 * torch.randn(truth.shape, generator=g, dtype=torch.float64)
    scale = float(k_true.max())
    delta = torch.zeros(9, 9, dtype=torch.float64)
    delta[4, 4] = 1.0
    smp = BlindPnPDM(DiffusionPrior(GaussianEpsilon(sch.alphas_cumprod, 0.5, 0.3), sch),
                     DiffusionPrior(GaussianEpsilon(sch.alphas_cumprod, 2 * k_true / scale - 1, 0.05), sch),
                     kernel_size=(9, 9), kernel_scale=scale if mode == "fixed" else "max", num_iters=30, burn_in=15, rho=(0.5, 0.9, 0.1),
                     kernel_rho=(1.0, 0.9, 0.1), sigma=(0.1, 0.95, 0.01), prior_steps=10)
    out = smp(y, Blur(delta), generator=torch.Generator().manual_seed(1), progress=False)
    k = out.extras["kernel"][0, 0]
    assert out.mean.shape == truth.shape and out.nfe > 0
    assert float(k.min()) >= 0 and abs(float(k.sum()) - 1) < 1e-6
    assert float((k - k_true).pow(2).mean().sqrt()) < 0.3 * float((delta - k_true).pow(2).mean().sqrt())
    known = PnPDM(smp.prior, sigma_y=0.01, num_iters=30, burn_in=15, rho0=0.5, rho_decay=0.9, rho_min=0.1, prior_steps=10)(
        y, Blur(k_true), generator=torch.Generator().manual_seed(1), progress=False)
    mse = lambda a: float((a - truth).pow(2).mean())  # noqa: E731
    assert mse(out.mean) < 1.5 * mse(known.mean), (mse(out.mean), mse(known.mean), mse(y))


def test_kernel_threshold_drops_the_small_positive_background():
    """A denoised kernel with a faint background: summed over a 64² support it would outweigh the 3-pixel path."""
    sch = make_scheduler()
    prior = DiffusionPrior(GaussianEpsilon(sch.alphas_cumprod, 0.0, 0.5), sch)
    kt = torch.full((1, 1, 64, 64), -0.98)  # background k = 0.01 of the peak
    kt[0, 0, 32, 31:34] = 1.0
    plain = BlindPnPDM(prior, prior, (64, 64), "max")._from_prior(kt)
    cut = BlindPnPDM(prior, prior, (64, 64), "max", kernel_threshold=0.05)._from_prior(kt)
    assert float(plain[0, 0, 32, 31:34].sum()) < 0.1  # the path keeps < 10 % of the mass without the threshold
    assert abs(float(cut[0, 0, 32, 31:34].sum()) - 1) < 1e-6 and float(cut.sum()) == pytest.approx(1.0)


def test_max_mode_refuses_a_batch():
    sch = make_scheduler()
    prior = DiffusionPrior(GaussianEpsilon(sch.alphas_cumprod, 0.0, 0.5), sch)
    y = torch.zeros(2, 1, 16, 16)
    with pytest.raises(ShapeError, match="one image at a time"):
        BlindPnPDM(prior, prior, (8, 8), "max", num_iters=1, burn_in=0)(y, Blur(gaussian_kernel(1.0, 8)[None, None]),
                                                                         generator=torch.Generator().manual_seed(0), progress=False)


def test_recentring_keeps_the_blurred_image_and_centres_the_kernel():
    from monai_diffrecon.physics.blur import Blur
    from monai_diffrecon.physics.blur import centroid_shift, shift_kernel
    from monai_diffrecon.samplers.blind_pnpdm import BlindPnPDM

    g = torch.Generator().manual_seed(0)
    k = torch.zeros(2, 1, 9, 9, dtype=torch.float64)
    k[0, 0, 1:4, 5:8] = torch.rand(3, 3, generator=g, dtype=torch.float64)  # off-centre: centroid near (2, 6)
    k[1, 0, 3:6, 3:6] = 1.0  # already centred
    k = k / k.sum(dim=(-2, -1), keepdim=True)
    x = torch.rand(2, 1, 24, 24, generator=g, dtype=torch.float64)
    k2, x2, s2 = BlindPnPDM._recentre(k, x, 2 * x)  # s2: a running sum moves with the chain
    assert centroid_shift(k2[0]) == (0, 0) and centroid_shift(k2[1]) == (0, 0)
    assert torch.equal(k2[1], k[1]) and torch.equal(x2[1], x[1])  # a centred sample is untouched, bit for bit
    torch.testing.assert_close(Blur(k2)(x2), Blur(k)(x))  # φ ⊛ x unchanged
    assert torch.equal(s2, 2 * x2)
    assert torch.equal(shift_kernel(shift_kernel(k[1], 2, -1), -2, 1), k[1])
