"""``kl_from_denoisers`` reports each sample's own integral; their mean is the estimate (image and measurement domain)."""

from __future__ import annotations

import pytest
import torch

from monai_diffrecon.metrics.shift import kl_from_denoisers


def test_per_sample_contributions_average_to_the_estimate():
    Dp = lambda x, s: x / (1 + s**2)  # Gaussian N(0, 1) and N(0.3, 2) denoisers
    Dq = lambda x, s: (2 * x + 0.3 * s**2) / (2 + s**2)
    x = torch.randn(10, 1, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    m = (torch.rand(x.shape, generator=torch.Generator().manual_seed(1)) < 0.6).double()
    m[0] = 1.0
    sig = torch.linspace(0.05, 5.0, 12, dtype=torch.float64)
    for kw in ({}, {"masks": m}):
        e = kl_from_denoisers(Dp, Dq, x if not kw else m * x, sig, noise_draws=2, batch_size=3, **kw)
        assert e.per_sample.shape == (10,) and float(e.per_sample.mean()) == pytest.approx(e.kl, rel=1e-10)
        assert bool((e.per_sample > 0).all())


def test_a_known_mask_mean_replaces_the_empirical_one():
    Dp = lambda x, s: x / (1 + s**2)  # noqa: E731
    Dq = lambda x, s: 0.5 * x  # noqa: E731
    x = torch.randn(6, 1, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    m = (torch.rand(x.shape, generator=torch.Generator().manual_seed(1)) < 0.5).double()
    m[0] = 1.0
    sig = torch.linspace(0.1, 2.0, 5, dtype=torch.float64)
    a = kl_from_denoisers(Dp, Dq, m * x, sig, masks=m)
    assert kl_from_denoisers(Dp, Dq, m * x, sig, masks=m, mask_mean=m.mean(dim=0, keepdim=True)).kl == a.kl
    m[:, :, 0, 0] = 0.0  # never observed: fine once E[P] is known
    b = kl_from_denoisers(Dp, Dq, m * x, sig, masks=m, mask_mean=0.5)
    assert b.kl > 0 and b.per_sample.shape == (6,)
