"""Denoising score matching trainer: exact resume, SIGTERM checkpoint, NaN stop, safe loading, DDP."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from monai_diffrecon.diffusion import DiffusionPrior, make_scheduler
from monai_diffrecon.errors import TrainingError
from monai_diffrecon.networks import diffusion_unet
from monai_diffrecon.training import DenoisingScoreTrainer, DSMConfig, TensorSampler, load_checkpoint

HERE = Path(__file__).parent
IMGS = torch.rand(32, 1, 16, 16, generator=torch.Generator().manual_seed(0))


def _trainer(d, iters=8, batches=None, cond=False):
    torch.manual_seed(0)
    net = diffusion_unet(2, 1, cond_channels=1 if cond else 0, size="tiny")
    smp = batches or TensorSampler(IMGS, IMGS.flip(-1) if cond else None, augment=True)
    return DenoisingScoreTrainer(net, make_scheduler(), smp, d, DSMConfig(max_iterations=iters, batch_size=4, checkpoint_every=4), progress=False)


def test_resumed_training_equals_uninterrupted_bit_for_bit(tmp_path):
    a = _trainer(tmp_path / "a")
    a.run()
    b = _trainer(tmp_path / "b")
    b.run(max_iterations=3)  # stop between checkpoints: the final save still records everything
    b2 = _trainer(tmp_path / "b")
    b2.run()
    assert b2.iteration == a.iteration == 8
    for p, q in zip(a.network.parameters(), b2.network.parameters()):
        assert torch.equal(p, q)
    for p, q in zip(a.ema.parameters(), b2.ema.parameters()):
        assert torch.equal(p, q)
    assert a.losses == b2.losses
    assert (tmp_path / "a" / "loss.png").stat().st_size > 5000


def test_conditional_training_and_prior_use(tmp_path):
    tr = _trainer(tmp_path, iters=2, cond=True)
    tr.run()
    prior = DiffusionPrior(tr.ema, make_scheduler())
    x = torch.randn(2, 1, 16, 16)
    assert prior.eps(x, 10, cond=torch.zeros(2, 1, 16, 16)).shape == x.shape


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_checkpoint(tmp_path):
    good = _trainer(tmp_path, iters=4)
    good.run()
    before = load_checkpoint(tmp_path / "checkpoint.pt")["iteration"]

    def poisoned(g, b):
        return {"image": torch.full((b, 1, 16, 16), float("nan")), "cond": None}

    bad = _trainer(tmp_path, iters=8, batches=poisoned)
    with pytest.raises(TrainingError, match="loss is nan at iteration 5"):
        bad.run()
    assert load_checkpoint(tmp_path / "checkpoint.pt")["iteration"] == before == 4


def test_checkpoints_load_with_weights_only(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    p = tmp_path / "evil.pt"
    with open(p, "wb") as f:
        pickle.dump({"model": Evil()}, f)
    with pytest.raises(TrainingError, match="not a loadable checkpoint"):
        load_checkpoint(p)
    assert not (tmp_path / "pwned").exists()


def test_sigterm_writes_a_final_checkpoint_then_exits(tmp_path):
    proc = subprocess.Popen([sys.executable, str(HERE / "train_script.py"), str(tmp_path), "100000"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "started"
    deadline = time.time() + 120
    while not (tmp_path / "checkpoint.pt").exists() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "interrupted True" in out
    ck = load_checkpoint(tmp_path / "checkpoint.pt")
    it = int(out.split("iteration ")[1].split()[0])
    assert ck["iteration"] == it and 5 <= it < 100000


def test_torchrun_ddp_on_cpu(tmp_path):
    torchrun = Path(sys.executable).parent / "torchrun"
    if not torchrun.exists():
        pytest.skip("torchrun not installed next to the interpreter")
    env = dict(os.environ, OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1")
    r = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node=2", str(HERE / "train_script.py"), str(tmp_path), "6"],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    digests = {line.split("digest ")[1] for line in r.stdout.splitlines() if "digest" in line}
    assert len(digests) == 1  # both ranks hold the same weights after DDP's all-reduce
    assert load_checkpoint(tmp_path / "checkpoint.pt")["iteration"] == 6


def test_ema_warm_up_forgets_the_initial_weights(tmp_path):
    """A constant 0.999 decay keeps 0.999ⁿ of the initial weights; the warm-up schedule min(0.999, (1+i)/(10+i))
    keeps a vanishing share, and after one step the average is 0.9·θ₁ + 0.1·θ₀ exactly."""
    tr = _trainer(tmp_path, iters=1)
    assert tr.ema_decay_at(0) == pytest.approx(0.1) and tr.ema_decay_at(10**6) == pytest.approx(0.999)
    share = 1.0
    for i in range(1470):
        share *= tr.ema_decay_at(i)
    assert share < 1e-12 < 0.999**1470
    theta0 = [p.detach().clone() for p in tr.network.parameters()]
    tr.run()
    for e, p, p0 in zip(tr.ema.parameters(), tr.network.parameters(), theta0):
        assert torch.allclose(e, 0.9 * p.detach() + 0.1 * p0, atol=1e-6)


def test_save_cohort_from_concurrent_processes_never_collides(tmp_path):
    """DDP ranks build the same cohort at the same path at once (the torchrun bundle test failed on a shared temp name).
    Separate interpreters (not fork: forking a process whose OpenMP pool is running can hang)."""
    # a barrier (each interpreter announces itself once imported, then all save for one second, at least once each), so a
    # slow import on a loaded machine cannot make them miss each other
    code = ("import sys, time, pathlib, torch\nfrom monai_diffrecon.training.cohort_io import save_cohort\n"
            "d = pathlib.Path(sys.argv[1]).parent\n(d / f'ready{sys.argv[2]}').touch()\n"
            "while len(list(d.glob('ready*'))) < 3:\n    time.sleep(0.01)\n"
            "t0 = time.time()\nwhile True:\n    save_cohort({'x': torch.zeros(200_000)}, sys.argv[1])\n"
            "    if time.time() > t0 + 1.0:\n        break\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "c.pt"), str(i)], stderr=subprocess.PIPE, text=True) for i in range(3)]
    errors = [pr.communicate(timeout=120)[1] for pr in procs]
    assert all(pr.returncode == 0 for pr in procs), errors
    assert torch.load(tmp_path / "c.pt", weights_only=True)["x"].shape == (200_000,)
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


def test_batch_source_is_called_batches(tmp_path):
    """The trainer's batch source is ``batches`` (issue 22, item 7: "sampler" names the posterior sampler); the old
    keyword and attribute still work for one release, with a DeprecationWarning."""
    smp = TensorSampler(IMGS)
    net, sch = diffusion_unet(2, 1, size="tiny"), make_scheduler()
    tr = DenoisingScoreTrainer(net, sch, batches=smp, out_dir=tmp_path, progress=False)
    assert tr.batches is smp
    with pytest.warns(DeprecationWarning, match="batches"):
        old = DenoisingScoreTrainer(net, sch, sampler=smp, out_dir=tmp_path, progress=False)
    assert old.batches is smp
    with pytest.warns(DeprecationWarning, match="trainer.batches"):
        assert old.sampler is smp
    with pytest.raises(TrainingError, match="once"):
        DenoisingScoreTrainer(net, sch, smp, tmp_path, sampler=smp)
    with pytest.raises(TrainingError, match="required"):
        DenoisingScoreTrainer(net, sch, out_dir=tmp_path)
