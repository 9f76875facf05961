"""The RELD and Diff-Unfolding natural-image bundles (``bundles/natural_reld``, ``bundles/natural_unfolding_deblur``)
through MONAI's ConfigWorkflow on tiny random networks — RELD inference on the three tasks (denoise / deblur / 4× SR)
and one training iteration of each stage, Diff-Unfolding 2-step inference and one training iteration — plus the latent
plumbing RELD needs (deterministic encoding, the latent scale, the latent batch sampler) and the workflow's task handling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.workflows.natural import NaturalRestoration, natural_datalist, read_png
from tests.conftest import case_dirs

TINY_AE = {"autoencoder_def#channels": [8, 8, 8], "autoencoder_def#norm_num_groups": 4}


def _autoencoder():
    from monai.networks.nets import AutoencoderKL

    return AutoencoderKL(spatial_dims=2, in_channels=1, out_channels=1, channels=(8, 8, 8), latent_channels=4, num_res_blocks=1,
                         norm_num_groups=4, attention_levels=(False, False, False))


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    from monai_diffrecon.networks import diffusion_unet
    from monai_diffrecon.networks.weights import sha256_file

    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("w")
    torch.save(_autoencoder().state_dict(), d / "ae.pt")
    torch.save(diffusion_unet(2, 4, size="tiny").state_dict(), d / "unet.pt")
    return {"autoencoder_path": str(d / "ae.pt"), "autoencoder_sha256": sha256_file(d / "ae.pt"),
            "model_path": str(d / "unet.pt"), "model_sha256": sha256_file(d / "unet.pt")}


@pytest.mark.parametrize("task", ["denoise", "deblur", "sr"])
def test_reld_bundle_inference_on_each_task(task, cases, weights, tmp_path):
    from monai_diffrecon.bundles import run_bundle

    out = tmp_path / "out"
    m = run_bundle("natural_reld", input_dir=str(cases), output_dir=str(out), task=task, progress=False, latent_scale=0.7,
                   **weights, **TINY_AE, **{"network_def#size": "tiny", f"reld_settings#{task}#iters": 2})
    assert len(m) == 2 and all(r["nfe"] == 2 and r["task"] == task and np.isfinite(r["ours_psnr"]) for r in m)
    case = case_dirs(out)[0]
    assert {"restored.png", "comparison.png", "metrics.json"} <= {p.name for p in case.iterdir()}
    assert read_png(case / "restored.png").shape == (1, 1, 32, 32)  # full size for sr as well
    assert not (case / "kernel.npy").exists()


@pytest.mark.parametrize("config", ["train_autoencoder", "train"])
def test_reld_bundle_trains_one_iteration(config, weights, tmp_path):
    from monai_diffrecon.bundles import run_bundle

    extra = {"autoencoder_path": weights["autoencoder_path"], "autoencoder_sha256": weights["autoencoder_sha256"],
             "network_def#size": "tiny"} if config == "train" else {}
    run_bundle("natural_reld", config, output_dir=str(tmp_path), cohort_dir=str(tmp_path), max_iterations=1, n_patches=4, size=32,
               batch_size=2, progress=False, **TINY_AE, **extra)
    assert (tmp_path / "model.pt").is_file() and (tmp_path / "checkpoint.pt").is_file()


def test_latent_sampler_encodes_the_posterior_mean_at_unit_scale():
    from monai_diffrecon.training import LatentSampler, TensorSampler, latent_scale

    torch.manual_seed(0)
    ae = _autoencoder().eval()
    images = torch.rand(12, 1, 16, 16) * 2 - 1
    s = latent_scale(ae, images, batch_size=5)
    with torch.no_grad():
        z = ae.encode(images)[0] * s
    assert abs(float(z.std()) - 1) < 1e-4
    smp = LatentSampler(TensorSampler(images), ae, s)
    a, b = smp(torch.Generator().manual_seed(3), 4), smp(torch.Generator().manual_seed(3), 4)
    assert a["image"].shape == (4, 4, 4, 4) and torch.equal(a["image"], b["image"])  # deterministic: μ, not a sample
    idx = torch.randint(12, (4,), generator=torch.Generator().manual_seed(3))
    assert torch.allclose(a["image"], ae.encode(images[idx])[0] * s, atol=1e-6)
    with pytest.raises(Exception, match="scale"):
        LatentSampler(TensorSampler(images), ae, 0.0)


def test_workflow_task_validation(cases, tmp_path):
    with pytest.raises(InvalidValueError, match="task"):
        natural_datalist(cases, task="inpaint")
    with pytest.raises(InvalidValueError, match="blind"):
        NaturalRestoration([], tmp_path, None, blind=True, task="sr")
    (cases / "image_0" / "noisy.png").unlink()
    assert [c["case"].endswith("image_1") for c in natural_datalist(cases, task="denoise")] == [True]


# ---- bundles/natural_unfolding_deblur (Diff-Unfolding, deblurring): same PNG workflow, the operator inside the network


@pytest.fixture(scope="module")
def unfolding_weights(tmp_path_factory):
    from monai_diffrecon.diffusion import make_scheduler
    from monai_diffrecon.networks import unfolded_denoiser
    from monai_diffrecon.networks.weights import sha256_file

    torch.manual_seed(0)
    p = tmp_path_factory.mktemp("u") / "unf.pt"
    torch.save(unfolded_denoiser(make_scheduler().alphas_cumprod, 1, 2, 3, size="tiny", sigma_y=0.04).state_dict(), p)
    return {"model_path": str(p), "model_sha256": sha256_file(p)}


def test_unfolding_deblur_bundle_inference_two_steps(cases, unfolding_weights, tmp_path):
    from monai_diffrecon.bundles import run_bundle

    out = tmp_path / "out"
    m = run_bundle("natural_unfolding_deblur", input_dir=str(cases), output_dir=str(out), num_steps=2, progress=False, **unfolding_weights)
    assert len(m) == 2 and all(r["nfe"] == 2 and np.isfinite(r["ours_psnr"]) for r in m)
    case = case_dirs(out)[1]
    assert read_png(case / "restored.png").shape == (1, 1, 32, 32) and (case / "comparison.png").is_file()


def test_unfolding_deblur_bundle_trains_one_iteration(tmp_path):
    from monai_diffrecon.bundles import run_bundle

    run_bundle("natural_unfolding_deblur", "train", output_dir=str(tmp_path), max_iterations=1, n_patches=4, size=32, n_kernels=3,
               kernel_size=9, batch_size=2, progress=False)
    assert (tmp_path / "model.pt").is_file() and (tmp_path / "kernels_train_9.pt").is_file()


def test_reld_refuses_image_sizes_the_autoencoder_cannot_reproduce():
    from monai_diffrecon.diffusion import DiffusionPrior, make_scheduler
    from monai_diffrecon.errors import ShapeError
    from monai_diffrecon.networks import diffusion_unet
    from monai_diffrecon.physics import Identity
    from monai_diffrecon.samplers import RELD

    prior = DiffusionPrior(diffusion_unet(2, 4, size="tiny"), make_scheduler(), autoencoder=_autoencoder().eval())
    with pytest.raises(ShapeError, match="multiples"):
        RELD(prior, num_iters=1)(torch.zeros(1, 1, 30, 30), Identity(), generator=torch.Generator(), progress=False)
    assert RELD(prior, num_iters=1)(torch.zeros(1, 1, 32, 32), Identity(), generator=torch.Generator(), progress=False).mean.shape == (1, 1, 32, 32)
