"""Score alignment: the masked loss ignores unobserved pixels, and fine-tuning on corrupted measurements lowers the
held-out masked loss, stops early and restores the best weights."""

import torch

from monai_diffrecon.diffusion import make_scheduler
from monai_diffrecon.training.align import AlignConfig, align_prior, masked_eps_loss


class Affine(torch.nn.Module):
    """ε̂ = w·x + b per pixel (t ignored): enough to learn a shifted mean."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(0.5))
        self.b = torch.nn.Parameter(torch.tensor(0.0))

    def forward(self, x, t):
        return self.w * x + self.b


def data(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = 0.6 + 0.1 * torch.randn(n, 1, 8, 8, generator=g)
    m = (torch.rand(n, 1, 8, 8, generator=g) < 0.5).float()
    return m * x, m


def test_masked_loss_ignores_unobserved_outputs():
    y, m = data(4)
    ac = make_scheduler().alphas_cumprod
    net = Affine()
    base = masked_eps_loss(net, y, m, ac, torch.Generator().manual_seed(3))

    class Poisoned(torch.nn.Module):
        def forward(self, x, t):
            return net(x, t) + (1 - m) * 1e6  # garbage wherever the measurement does not observe

    assert torch.equal(masked_eps_loss(Poisoned(), y, m, ac, torch.Generator().manual_seed(3)), base)


def test_alignment_lowers_held_out_loss_and_stops_early():
    y, m = data(32)
    net = Affine()
    out = align_prior(net, make_scheduler(), y, m, AlignConfig(lr=5e-2, batch_size=8, max_epochs=200, seed=0))
    assert out["best_val"] < 0.9 * out["val_curve"][0]
    assert out["epochs"] < 200  # early stopping fired
    assert min(out["val_curve"]) == out["best_val"]
