"""`diffrecon train` campaigns (issue 22, item 5) on a tiny fake bundle in tmp_path: a run interrupted (SIGTERM, then
a wall budget) and resumed equals an uninterrupted one bit for bit, every session appends a valid ledger entry, work folders inside the repository
or the bundle are refused, resuming another recipe is refused, and the promotion gate refuses worse weights (the real
bundles are never touched)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from monai_diffrecon.cli import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, main
from monai_diffrecon.networks.weights import sha256_file
from monai_diffrecon.training import campaign
from monai_diffrecon.training.dsm import load_checkpoint

TRAIN = {
    "imports": ["$import torch", "$import monai_diffrecon"],
    "bundle_root": ".",
    "output_dir": "$@bundle_root + '/train_output'",
    "max_iterations": 12,
    "batch_size": 4,
    "lr": 0.002,
    "seed": 0,
    "progress": True,
    "device": "$torch.device('cpu')",
    "network_def": {"_target_": "monai.networks.nets.DiffusionModelUNet", "spatial_dims": 2, "in_channels": 1, "out_channels": 1,
                    "num_res_blocks": 1, "channels": [8, 8], "attention_levels": [False, False], "norm_num_groups": 8},
    "scheduler": {"_target_": "monai_diffrecon.diffusion.make_scheduler", "kind": "ddim"},
    "images": "$torch.randn(32, 1, 8, 8, generator=torch.Generator().manual_seed(0)).clamp(-1, 1)",
    "batches": {"_target_": "monai_diffrecon.training.TensorSampler", "images": "@images", "augment": True},
    "val_cohort": {"target": "$torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(1)).clamp(-1, 1)"},
    "trainer_config": {"_target_": "monai_diffrecon.training.DSMConfig", "max_iterations": "@max_iterations", "batch_size": "@batch_size",
                      "lr": "@lr", "warmup": 2, "checkpoint_every": 1000, "seed": "@seed"},
    "trainer": {"_target_": "monai_diffrecon.training.DenoisingScoreTrainer", "network": "@network_def", "scheduler": "@scheduler",
                "batches": "@batches", "out_dir": "@output_dir", "config": "@trainer_config", "progress": "@progress", "device": "@device"},
    "validation": {"_target_": "monai_diffrecon.training.validation_loss", "trainer": "@trainer", "cohort": "@val_cohort",
                   "n_batches": 3, "batch_size": 8},
    "run": ["$@trainer.run()", "$@validation.report()"],
}


@pytest.fixture
def bundle(tmp_path):
    root = tmp_path / "tiny_bundle"
    (root / "configs").mkdir(parents=True)
    (root / "models").mkdir()
    (root / "configs" / "train.json").write_text(json.dumps(TRAIN, indent=1))
    (root / "configs" / "metadata.json").write_text(json.dumps({"version": "0.1.0", "model_sha256": ""}, indent=4))
    return root


def _train(bundle, work, ledger, *extra):
    return main(["train", str(bundle), "--trust-config", "--quiet", "--work", str(work), "--ledger", str(ledger), *extra])


def _sha(work: Path) -> tuple[str, str]:
    """sha256 of the checkpoint's model and EMA parameters (names, dtypes, bytes)."""
    import hashlib

    sd = load_checkpoint(work / "checkpoint.pt")
    out = []
    for key in ("model", "ema"):
        h = hashlib.sha256()
        for k, v in sd[key].items():
            h.update(k.encode() + str(v.dtype).encode() + v.contiguous().numpy().tobytes())
        out.append(h.hexdigest())
    return out[0], out[1]


def test_interrupted_then_resumed_equals_uninterrupted_and_ledger(bundle, tmp_path, monkeypatch):
    import os
    import signal

    from monai_diffrecon.training.dsm import DenoisingScoreTrainer

    ledger = tmp_path / "ledger.json"
    a, b = tmp_path / "work_a", tmp_path / "work_b"
    assert _train(bundle, a, ledger) == EXIT_OK  # 12 iterations at once
    # SIGTERM during iteration 5 (saved, exit 0), a session stopped by its wall budget, then resumed to the same target
    step = DenoisingScoreTrainer.step

    def step_then_sigterm(self, *args):
        out = step(self, *args)
        if self.iteration == 5:
            os.kill(os.getpid(), signal.SIGTERM)
        return out

    with monkeypatch.context() as m:
        m.setattr(DenoisingScoreTrainer, "step", step_then_sigterm)
        assert _train(bundle, b, ledger) == EXIT_OK
    assert json.loads(ledger.read_text())["entries"][-1]["stopped"] == "SIGTERM"
    assert _train(bundle, b, ledger, "--resume", "--minutes", "0.0001") == EXIT_OK
    first = load_checkpoint(b / "checkpoint.pt")["iteration"]
    assert first == 5
    assert _train(bundle, b, ledger, "--resume") == EXIT_OK
    assert load_checkpoint(b / "checkpoint.pt")["iteration"] == 12
    assert _sha(a) == _sha(b)  # model and EMA parameters bit for bit
    entries = json.loads(ledger.read_text())["entries"]
    assert len(entries) == 4
    e = entries[-1]
    assert e["bundle"] == "tiny_bundle" and e["recipe_id"] == "default" and e["iterations"] == {"start": first, "end": 12, "target": 12}
    assert e["stopped"] == "iterations" and e["cpu_hours"] > 0 and e["torch"] == torch.__version__ and e["command"].startswith("diffrecon train")
    assert e["validation_curve"] and e["validation_curve"][-1]["iteration"] == 12 and e["validation_curve"][-1]["validation_eps_mse"] > 0
    assert entries[2]["stopped"] == "wall budget" and entries[2]["iterations"]["start"] == 5
    # a checkpoint is not overwritten without --resume; a different recipe does not resume it
    assert _train(bundle, b, ledger) == EXIT_BAD_INPUT
    assert _train(bundle, b, ledger, "--resume", "--set", "lr=0.01") == EXIT_BAD_INPUT
    assert len(json.loads(ledger.read_text())["entries"]) == 4


def test_work_folder_inside_repository_or_bundle_refused(bundle, tmp_path, capsys):
    for work in (campaign.REPO_ROOT / "train_work_refused", bundle / "train_output"):
        assert _train(bundle, work, tmp_path / "ledger.json") == EXIT_BAD_INPUT
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "OutputError" in err and "inside" in err
        assert not work.exists()
    assert not (tmp_path / "ledger.json").exists()


def test_gate_refuses_worse_weights_and_promotes_better(bundle, tmp_path, capsys):
    work = tmp_path / "work"
    assert _train(bundle, work, tmp_path / "ledger.json", "--iterations", "30") == EXIT_OK
    good = torch.load(work / "model.pt", weights_only=True)
    bad = {k: v + 0.3 * torch.randn(v.shape, generator=torch.Generator().manual_seed(0)) if v.is_floating_point() else v
           for k, v in good.items()}
    shipped = bundle / "models" / "model.pt"
    # the shipped weights are the trained ones; a worse candidate is refused and the bundle is unchanged
    torch.save(good, shipped)
    before = sha256_file(shipped)
    torch.save(bad, work / "model.pt")
    capsys.readouterr()
    assert main(["train", str(bundle), "--trust-config", "--work", str(work), "--promote"]) == EXIT_FAILED
    captured = capsys.readouterr()
    res = json.loads(captured.out)
    assert not res["promoted"] and res["candidate"] > res["shipped"] and "missed by" in captured.err
    assert sha256_file(shipped) == before and not (bundle / "models" / "model.provenance.json").exists()
    # the other way round: the better candidate replaces the worse shipped weights, with sha256 and provenance
    torch.save(bad, shipped)
    torch.save(good, work / "model.pt")
    res = campaign.promote(bundle, work, trust_config=True)
    assert res["promoted"] and res["candidate"] < res["shipped"]
    digest = sha256_file(shipped)
    assert digest == sha256_file(work / "model.pt")
    assert json.loads((bundle / "configs" / "metadata.json").read_text())["model_sha256"] == digest
    prov = json.loads((bundle / "models" / "model.provenance.json").read_text())
    assert prov["sha256"] == digest and prov["training_commands"][0].startswith("diffrecon train")
    with pytest.raises(Exception, match="cap"):
        campaign.promote(bundle, work, trust_config=True, max_mb=1e-4)


def test_gate_reads_each_weights_with_its_own_prediction_and_refuses_a_mismatch(bundle, tmp_path):
    """An EDM-trained candidate (recipe override) is scored by x̂₀ MSE as an EDM network, the shipped ε weights as ε;
    even when better it is not copied while configs/inference.json builds an ε prior."""
    (bundle / "configs" / "inference.json").write_text(json.dumps(
        {"prior": {"_target_": "monai_diffrecon.diffusion.DiffusionPrior", "network": "@network_def", "scheduler": "@scheduler"}}))
    assert campaign.bundle_prediction(bundle) == "epsilon"
    work = tmp_path / "edm"
    assert _train(bundle, work, tmp_path / "ledger.json", "--iterations", "20", "--set", 'trainer_config#prediction="edm"') == EXIT_OK
    torch.save(torch.load(work / "model.pt", weights_only=True), bundle / "models" / "model.pt")  # same weights shipped, read as ε
    res = campaign.promote(bundle, work, trust_config=True)
    assert "x0_mse" in res["metric"] and res["candidate"] != res["shipped"]
    assert not res["promoted"]
    if res["candidate"] < res["shipped"]:
        assert "prediction 'epsilon'" in res["reason"]


def test_a_non_empty_folder_it_did_not_write_is_refused_and_left_intact(bundle, tmp_path, capsys):
    work = tmp_path / "study"
    work.mkdir()
    (work / "model.pt").write_bytes(b"a user's file")
    assert _train(bundle, work, tmp_path / "ledger.json", "--iterations", "2") != EXIT_OK
    assert "did not write" in capsys.readouterr().err
    assert (work / "model.pt").read_bytes() == b"a user's file" and sorted(p.name for p in work.iterdir()) == ["model.pt"]


def test_task_change_is_promoted_only_with_passing_evidence_for_these_weights(bundle, tmp_path, capsys):
    """Shipped weights of another network (a task change, e.g. SPECT v1 → v2) cannot be compared by x̂₀ MSE: without
    evidence the gate refuses in one line; evidence must name both files' sha256 and must have passed."""
    work = tmp_path / "work"
    assert _train(bundle, work, tmp_path / "ledger.json", "--iterations", "4") == EXIT_OK
    shipped = bundle / "models" / "model.pt"
    torch.save({"other.weight": torch.zeros(3)}, shipped)  # does not fit the recipe's network
    before = sha256_file(shipped)
    capsys.readouterr()
    assert main(["train", str(bundle), "--trust-config", "--work", str(work), "--promote"]) != EXIT_OK
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--evidence" in err
    ev = tmp_path / "evidence.json"
    doc = {"candidate_sha256": sha256_file(work / "model.pt"), "shipped_sha256": before, "metric": "heart PSNR (dB)", "passed": False}
    ev.write_text(json.dumps(doc))
    res = campaign.promote(bundle, work, trust_config=True, evidence=ev)
    assert not res["promoted"] and "not passed" in res["reason"] and sha256_file(shipped) == before
    ev.write_text(json.dumps({**doc, "passed": True, "candidate_sha256": "0" * 64}))  # evidence about other weights
    with pytest.raises(Exception, match="other candidate"):
        campaign.promote(bundle, work, trust_config=True, evidence=ev)
    with pytest.raises(Exception, match="missing metric"):
        campaign.write_task_evidence(work, {k: v for k, v in doc.items() if k != "metric"})
    ev = campaign.write_task_evidence(work, {**doc, "passed": True})  # what the benchmarks' gates write
    assert ev == (work / "gate" / "task_evidence.json").resolve()
    res = campaign.promote(bundle, work, trust_config=True, evidence=ev)
    assert res["promoted"] and sha256_file(shipped) == sha256_file(work / "model.pt")
    prov = json.loads((bundle / "models" / "model.provenance.json").read_text())
    assert prov["task_evidence"]["passed"] and prov["metric"] == "heart PSNR (dB)"
