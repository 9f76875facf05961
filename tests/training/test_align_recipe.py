"""Score alignment with the prior's own training recipe (EDM preconditioning, λ(σ), log-normal σ): the default
recipe is the ε-MSE exactly, the recipe's loss ignores unobserved outputs, and aligning an EDM network lowers its
held-out masked loss."""

import torch

from monai_diffrecon.diffusion import make_scheduler
from monai_diffrecon.training.align import AlignConfig, align_prior, masked_eps_loss, masked_loss
from tests.training.test_align import Affine, data

EDM = AlignConfig(lr=5e-2, batch_size=8, max_epochs=200, prediction="edm", loss_weighting="edm", t_sampling="lognormal")


def test_default_recipe_is_the_eps_loss():
    y, m = data(4)
    ac = make_scheduler().alphas_cumprod
    a = masked_loss(Affine(), y, m, ac, torch.Generator().manual_seed(3), AlignConfig())
    assert torch.equal(a, masked_eps_loss(Affine(), y, m, ac, torch.Generator().manual_seed(3)))


def test_edm_loss_ignores_unobserved_outputs():
    y, m = data(4)
    ac = make_scheduler().alphas_cumprod
    net = Affine()

    class Poisoned(torch.nn.Module):
        def forward(self, x, t):
            return net(x, t) + (1 - m) * 1e6

    base = masked_loss(net, y, m, ac, torch.Generator().manual_seed(3), EDM)
    assert torch.isfinite(base) and torch.equal(masked_loss(Poisoned(), y, m, ac, torch.Generator().manual_seed(3), EDM), base)


def test_aligning_an_edm_network_lowers_its_held_out_loss():
    y, m = data(32)
    net = Affine()
    out = align_prior(net, make_scheduler(), y, m, EDM)
    assert out["best_val"] < out["val_curve"][0] and out["epochs"] < 200
