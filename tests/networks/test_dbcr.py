"""DB-CR: SAR-fused bridge network, 1-step and multi-step bridge sampling from the cloudy image, trainer."""

import pytest
import torch

from monai_diffrecon.errors import ShapeError
from monai_diffrecon.errors import TrainingError
from monai_diffrecon.modalities.satellite import DBCRPrior
from monai_diffrecon.networks.dbcr import StackedDBCR, dbcr_network
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
        out = DBCR(DBCRPrior(net), num_steps=3)(y, None, generator=torch.Generator().manual_seed(0), progress=False)
    assert out.nfe == 3 and out.mean.shape == clear.shape
    assert torch.equal(calls[0], cloudy)  # the bridge starts from the cloudy image, not from noise
    with pytest.raises(ShapeError):
        DBCR(DBCRPrior(net))(torch.zeros(1, 3, N, N), None, generator=torch.Generator(), progress=False)


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


def test_stacked_network_is_the_same_network_behind_monai_signature():
    torch.manual_seed(0)
    net = dbcr_network(size="tiny").eval()
    stacked = StackedDBCR(net)
    _, cloudy, sar = _data(2)
    x_t = torch.randn_like(cloudy)
    t = torch.tensor([10.0, 700.0])
    with torch.no_grad():
        assert torch.equal(stacked(torch.cat([x_t, cloudy, sar], 1), t), net(x_t, t, cloudy, sar))
    assert sum(p.numel() for p in stacked.parameters()) == sum(p.numel() for p in net.parameters())
    with pytest.raises(ShapeError, match="x_t, cloudy, SAR"):
        stacked(torch.cat([x_t, cloudy], 1), t)


def test_scene_sampler_crops_co_registered_windows_and_stacks_for_dsm():
    clear, cloudy, sar = _data(3)
    s = SceneSampler(clear, cloudy, sar, augment=False, crop=16)
    b = s(torch.Generator().manual_seed(0), 2)
    assert b["clear"].shape == (2, 4, 16, 16) and b["sar"].shape == (2, 2, 16, 16)
    # the same window in the three: find it in the full scene it came from
    found = [(i, r, c) for i in range(3) for r in range(N - 15) for c in range(N - 15) if torch.equal(clear[i, :, r:r + 16, c:c + 16], b["clear"][0])]
    assert len(found) == 1
    i, r, c = found[0]
    assert torch.equal(cloudy[i, :, r:r + 16, c:c + 16], b["cloudy"][0]) and torch.equal(sar[i, :, r:r + 16, c:c + 16], b["sar"][0])
    st = SceneSampler(clear, cloudy, sar, crop=16, stacked=True)(torch.Generator().manual_seed(0), 2)
    assert set(st) == {"image", "cond"} and st["image"].shape == (2, 4, 16, 16) and st["cond"].shape == (2, 6, 16, 16)
    with pytest.raises(TrainingError, match="crop"):
        SceneSampler(clear, cloudy, sar, crop=64)


def test_regression_mode_trains_only_at_t_1_on_the_cloudy_image(tmp_path):
    clear, cloudy, sar = _data(4)
    net = dbcr_network(size="tiny")
    seen = []
    net.register_forward_hook(lambda m, a, o: seen.append((a[0].clone(), a[1].clone(), a[2].clone())))
    tr = BridgeTrainer(net, make_scheduler(), SceneSampler(clear, cloudy, sar, augment=False), tmp_path,
                       DSMConfig(max_iterations=2, batch_size=2, warmup=1, checkpoint_every=100), progress=False, regression=True)
    tr.run()
    for x_t, t, c in seen:
        assert torch.equal(x_t, c) and bool((t == 999).all())  # x_t is the cloudy input, t = T − 1


def test_conditional_ddpm_from_noise_runs_and_trains_with_the_plain_dsm_trainer(tmp_path):
    from monai_diffrecon.diffusion import DiffusionPrior
    from monai_diffrecon.samplers import Conditional
    from monai_diffrecon.training import DenoisingScoreTrainer

    clear, cloudy, sar = _data(4)
    net = StackedDBCR(dbcr_network(size="tiny"))
    tr = DenoisingScoreTrainer(net, make_scheduler(), SceneSampler(clear, cloudy, sar, crop=16, stacked=True), tmp_path,
                               DSMConfig(max_iterations=2, batch_size=2, warmup=1, checkpoint_every=100), progress=False)
    tr.run()
    y = torch.cat([cloudy[:1], sar[:1]], 1)
    with torch.no_grad():
        out = Conditional(DiffusionPrior(net.eval(), make_scheduler()), 4, num_steps=3)(y, None, generator=torch.Generator().manual_seed(0), progress=False)
    assert out.nfe == 3 and out.mean.shape == (1, 4, N, N)
    with torch.no_grad():  # clip: x̂₀ clamped to the data range at every step, so the result is in it too
        out = Conditional(DiffusionPrior(net, make_scheduler()), 4, num_steps=3, clip=(0.0, 1.0))(y, None, generator=torch.Generator().manual_seed(0), progress=False)
    assert float(out.mean.min()) >= 0 and float(out.mean.max()) <= 1
