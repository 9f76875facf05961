"""BlindDPS (arXiv 2211.10656), the blind diffusion baseline, with exact Gaussian ε-networks as image and kernel
priors: a valid kernel close to the truth when the kernel prior says so, and an image about as good as DPS's with the
true kernel (one posterior sample each; same prior, steps and step size)."""

import pytest
import torch

from monai_diffrecon.diffusion import DiffusionPrior, GaussianEpsilon, make_scheduler
from monai_diffrecon.errors import ShapeError
from monai_diffrecon.physics import Blur, Identity, gaussian_kernel
from monai_diffrecon.samplers import DPS, BlindDPS


def test_blind_dps_recovers_kernel_and_deblurs():
    sch = make_scheduler()
    g = torch.Generator().manual_seed(0)
    truth = 0.5 + 0.3 * torch.randn(1, 1, 32, 32, generator=g, dtype=torch.float64)
    k_true = gaussian_kernel(1.5, 9, dtype=torch.float64)
    y = Blur(k_true)(truth) + 0.01 * torch.randn(truth.shape, generator=g, dtype=torch.float64)
    delta = torch.zeros(9, 9, dtype=torch.float64)
    delta[4, 4] = 1.0
    smp = BlindDPS(DiffusionPrior(GaussianEpsilon(sch.alphas_cumprod, 0.5, 0.3), sch).double(),
                   DiffusionPrior(GaussianEpsilon(sch.alphas_cumprod, 2 * k_true / float(k_true.max()) - 1, 0.05), sch).double(),
                   num_steps=50)
    out = smp(y, Blur(delta), generator=torch.Generator().manual_seed(1), progress=False)
    k = out.extras["kernel"][0, 0]
    assert out.mean.shape == truth.shape and out.nfe == 100
    assert float(k.min()) >= 0 and float(k.sum()) == pytest.approx(1.0)
    assert float((k - k_true).pow(2).mean().sqrt()) < 0.3 * float((delta - k_true).pow(2).mean().sqrt())
    known = DPS(smp.prior, num_steps=50, zeta=smp.zeta, clip=(-1.0, 1.0))(y, Blur(k_true), generator=torch.Generator().manual_seed(1), progress=False)
    mse = lambda a: float((a - truth).pow(2).mean())  # noqa: E731
    assert mse(out.mean) < 1.3 * mse(known.mean), (mse(out.mean), mse(known.mean))  # one posterior sample each


def test_needs_a_blur_operator():
    sch = make_scheduler()
    prior = DiffusionPrior(GaussianEpsilon(sch.alphas_cumprod, 0.0, 0.5), sch)
    with pytest.raises(ShapeError):
        BlindDPS(prior, prior, num_steps=2)(torch.zeros(1, 1, 8, 8), Identity(), generator=torch.Generator().manual_seed(0))
