"""DB-CR: SAR-fused bridge network, 1-step and multi-step bridge sampling from the cloudy image, trainer."""

import pytest
import torch

from monai_diffrecon.errors import ShapeError
from monai_diffrecon.networks.dbcr import dbcr_network
from monai_diffrecon.diffusion import make_scheduler
from monai_diffrecon.samplers.dbcr import DBCR
from monai_diffrecon.training import DSMConfig
from monai_diffrecon.training.dbcr import BridgeTrainer, SceneSampler

N = 32


def _data(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    clear = torch.rand(n, 4, N, N, generator=g)
    cloud = torch.rand(n, 1, N, N, generator=g)
    return clear, clear * (1 - cloud) + cloud, torch.randn(n, 2, N, N, generator=g)


def test_sar_reaches_the_output_through_cross_attention():
    torch.manual_seed(0)
    net = dbcr_network(size="tiny")
    with torch.no_grad():  # MONAI zero-initialises output and attention projections; give them weights to probe the path
        for p in net.parameters():
            if p.ndim > 1 and not p.any():
                p.normal_(0, 0.02)
    clear, cloudy, sar = _data(2)
    sar.requires_grad_(True)
    out = net(cloudy, torch.tensor([500.0, 999.0]), cloudy, sar)
    out.sum().backward()
    assert out.shape == clear.shape and float(sar.grad.abs().sum()) > 0
    with pytest.raises(ShapeError, match="sar"):
        net(cloudy, torch.tensor([1.0, 1.0]), cloudy, None)
    assert sum(p.numel() for p in dbcr_network(size="tiny", use_sar=False).parameters()) < sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("use_sar", [True, False])
def test_bridge_sampler_starts_at_the_cloudy_image(use_sar):
    torch.manual_seed(0)
    net = dbcr_network(size="tiny", use_sar=use_sar).eval()
    clear, cloudy, sar = _data(2)
    y = torch.cat([cloudy, sar], 1) if use_sar else cloudy
    calls = []
    net.register_forward_hook(lambda m, a, o: calls.append(a[0].clone()))
    with torch.no_grad():
        out = DBCR(net, num_steps=3)(y, None, generator=torch.Generator().manual_seed(0), progress=False)
    assert out.nfe == 3 and out.mean.shape == clear.shape
    assert torch.equal(calls[0], cloudy)  # the bridge starts from the cloudy image, not from noise
    with pytest.raises(ShapeError):
        DBCR(net)(torch.zeros(1, 3, N, N), None, generator=torch.Generator(), progress=False)


def test_trainer_learns_the_identity_bridge(tmp_path):
    """With cloudy == clear the bridge target is the input: a few steps must reduce the loss."""
    torch.manual_seed(0)
    clear, _, sar = _data(8)
    tr = BridgeTrainer(dbcr_network(size="tiny"), make_scheduler(), SceneSampler(clear, clear.clone(), sar), tmp_path,
                       DSMConfig(max_iterations=30, batch_size=4, lr=2e-3, warmup=1, checkpoint_every=100), progress=False)
    tr.run()
    assert sum(tr.losses[-5:]) / 5 < 0.5 * sum(tr.losses[:5]) / 5


def test_satellite_cohort_is_normalised_disjoint_and_cached(tmp_path):
    from monai_diffrecon.training.satellite_cohort import cached_satellite_cohort

    tr = cached_satellite_cohort(tmp_path / "train.pt", 2, "train", size=32, progress=False)
    te = cached_satellite_cohort(tmp_path / "test.pt", 2, "test", size=32, progress=False)
    assert tr["clear"].shape == (2, 4, 32, 32) and tr["sar"].shape == (2, 2, 32, 32)
    for k in ("clear", "cloudy", "sar"):
        assert float(tr[k].min()) >= 0 and float(tr[k].max()) <= 1
    assert not torch.equal(tr["clear"], te["clear"])
    mtime = (tmp_path / "train.pt").stat().st_mtime_ns
    again = cached_satellite_cohort(tmp_path / "train.pt", 2, "train", size=32, progress=False)
    assert torch.equal(again["cloudy"], tr["cloudy"]) and (tmp_path / "train.pt").stat().st_mtime_ns == mtime
