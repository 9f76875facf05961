"""Natural-image workflow (PNG in → PNG out) with exact Gaussian priors: non-blind and blind restoration, outputs,
metrics, and bad input as typed errors with nothing written."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from monai_diffrecon.diffusion import DiffusionPrior, GaussianEpsilon, make_scheduler
from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.physics import gaussian_kernel
from monai_diffrecon.samplers import PnPDM
from monai_diffrecon.samplers.blind_pnpdm import BlindPnPDM
from monai_diffrecon.workflows.natural import NaturalRestoration, natural_datalist, read_png
from tests.conftest import case_dirs


def _prior():
    sch = make_scheduler()
    return DiffusionPrior(GaussianEpsilon(sch.alphas_cumprod, 0.0, 0.4), sch)


def test_non_blind_writes_png_and_metrics(cases, tmp_path):
    smp = PnPDM(_prior(), sigma_y=0.02, num_iters=6, burn_in=2, rho0=0.5, rho_min=0.1, prior_steps=5)
    out = tmp_path / "out"
    m = NaturalRestoration(natural_datalist(cases), out, smp, num_samples=2, method="PnP-DM", progress=False).run()
    assert len(m) == 2 and all("ours_psnr" in r and "blurred_psnr" in r and "baseline_psnr" in r for r in m)
    case = case_dirs(out)[0]
    assert {"restored.png", "std.png", "comparison.png", "metrics.json"} <= {p.name for p in case.iterdir()}
    assert read_png(case / "restored.png").shape == (1, 1, 32, 32)
    assert json.loads((out / "summary.json").read_text())["n_cases"] == 2


def test_detail_crop_finds_the_textured_region():
    from monai_diffrecon.workflows.natural import detail_crop

    img = torch.zeros(64, 64)
    img[40:56, 8:24] = torch.rand(16, 16, generator=torch.Generator().manual_seed(0))
    (r0, r1), (c0, c1) = detail_crop(img)
    assert r1 - r0 == c1 - c0 == 16 and 36 <= r0 <= 44 and 4 <= c0 <= 12
    assert detail_crop(torch.zeros(16, 16)) == ((0, 16), (0, 16))


def test_classical_baselines():
    from monai_diffrecon.physics import Blur
    from monai_diffrecon.recon import estimate_noise_std, tv_denoise, wiener

    g = torch.Generator().manual_seed(0)
    x = torch.zeros(64, 64, dtype=torch.float64)
    x[16:48, 16:48] = 1.0
    noisy = x + 0.1 * torch.randn(x.shape, generator=g, dtype=torch.float64)
    assert estimate_noise_std(noisy) == pytest.approx(0.1, rel=0.15)
    assert float((tv_denoise(noisy) - x).pow(2).mean()) < 0.3 * float((noisy - x).pow(2).mean())
    k = gaussian_kernel(2.0, 9, dtype=torch.float64)
    y = Blur(k)(x[None, None])[0, 0] + 0.005 * torch.randn(x.shape, generator=g, dtype=torch.float64)
    assert float((wiener(y, k, 1e-3) - x).pow(2).mean()) < 0.5 * float((y - x).pow(2).mean())


class _Recorder:
    """Wraps a sampler and records the operator's kernel each call starts from."""

    def __init__(self, sampler):
        self.sampler, self.starts = sampler, []

    def __call__(self, y, operator, **kw):
        self.starts.append(operator.kernel[0, 0].clone())
        return self.sampler(y, operator, **kw)


def test_blind_starts_from_init_kernel_or_a_gaussian_never_from_the_reference(cases, tmp_path):
    sch = make_scheduler()
    kprior = DiffusionPrior(GaussianEpsilon(sch.alphas_cumprod, 0.0, 0.5), sch)
    smp = _Recorder(BlindPnPDM(_prior(), kprior, kernel_size=(9, 9), kernel_scale=0.1, num_iters=4, burn_in=1, prior_steps=4))
    start = gaussian_kernel(2.0, 9)
    np.save(cases / "image_0" / "init_kernel.npy", start.numpy())  # case 0: explicit start; case 1: the default Gaussian
    (cases / "image_1" / "kernel.npy").unlink()
    out = tmp_path / "out"
    m = NaturalRestoration(natural_datalist(cases), out, smp, blind=True, kernel_size=9, init_kernel_sigma=1.0, progress=False).run()
    assert torch.allclose(smp.starts[0], start / start.sum()) and torch.allclose(smp.starts[1], gaussian_kernel(1.0, 9))
    assert not torch.allclose(smp.starts[0], gaussian_kernel(1.2, 9))  # the reference kernel.npy is not the start
    assert "kernel_rmse" in m[0] and "kernel_rmse" not in m[1]  # the reference only scores the estimate
    cases_out = case_dirs(out)
    assert [c.name for c in cases_out] == ["image_0", "image_1"]  # case 0 had the explicit start: the order is the input's
    for c in cases_out:
        k = np.load(c / "kernel.npy")
        assert k.shape == (9, 9) and abs(k.sum() - 1) < 1e-5 and (c / "kernel.png").is_file()


def test_kernel_rmse_is_shift_invariant():
    from monai_diffrecon.workflows.natural import kernel_rmse

    k = gaussian_kernel((2.0, 1.0), 15, dtype=torch.float64)
    assert kernel_rmse(torch.roll(k, (3, -2), (0, 1)), k) < 1e-15 < kernel_rmse(gaussian_kernel(1.0, 15, dtype=torch.float64), k)


@pytest.mark.parametrize("corruption, match", [("no_kernel", "needs the blur kernel"), ("bad_kernel", "non-negative finite"),
                                               ("bad_png", "not a readable PNG"), ("empty", "no case folder")])
def test_bad_input_is_a_typed_error_and_nothing_is_written(corruption, match, cases, tmp_path):
    d = cases / "image_0"
    if corruption == "no_kernel":
        (d / "kernel.npy").unlink()
    elif corruption == "bad_kernel":
        np.save(d / "kernel.npy", -np.ones((3, 3)))
    elif corruption == "bad_png":
        (d / "blurred.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    elif corruption == "empty":
        cases = tmp_path / "nothing"
        cases.mkdir()
    smp = PnPDM(_prior(), sigma_y=0.02, num_iters=2, burn_in=0, prior_steps=3)
    with pytest.raises(InvalidValueError, match=match):
        NaturalRestoration(natural_datalist(cases), tmp_path / "o", smp, progress=False).run()
    assert not (tmp_path / "o").exists()  # the whole output is staged: nothing at all is written


@pytest.fixture(scope="module")
def tiny_prior_weights(tmp_path_factory):
    from monai_diffrecon.networks import diffusion_unet
    from monai_diffrecon.networks.weights import sha256_file

    torch.manual_seed(0)
    p = tmp_path_factory.mktemp("w") / "tiny.pt"
    torch.save(diffusion_unet(2, 1, size="tiny").state_dict(), p)
    return str(p), sha256_file(p)


def test_blind_deblur_bundle_config_workflow(cases, tiny_prior_weights, tmp_path):
    """``bundles/natural_blind_deblur`` through MONAI's ConfigWorkflow: 2 Gibbs iterations, 2-step prior steps."""
    from monai_diffrecon.bundles import run_bundle

    path, sha = tiny_prior_weights
    for f in cases.glob("*/kernel.npy"):  # the 9x9 reference kernels do not match the 8x8 support here
        f.unlink()
    out = tmp_path / "out"
    m = run_bundle("natural_blind_deblur", input_dir=str(cases), output_dir=str(out), model_path=path, model_sha256=sha,
                   kernel_model_path=path, kernel_model_sha256=sha, kernel_size=8, num_iters=2, burn_in=1, num_steps=2, progress=False,
                   **{"network_def#size": "tiny", "kernel_network_def#size": "tiny"})
    assert len(m) == 2 and all(np.isfinite(r["ours_psnr"]) for r in m)
    case = case_dirs(out)[0]
    k = np.load(case / "kernel.npy")
    assert k.shape == (8, 8) and abs(k.sum() - 1) < 1e-5 and (case / "restored.png").is_file()


@pytest.mark.parametrize("config", ["train", "train_kernel"])
def test_blind_deblur_bundle_trains_one_iteration(config, tmp_path):
    from monai_diffrecon.bundles import run_bundle

    run_bundle("natural_blind_deblur", config, output_dir=str(tmp_path), max_iterations=1, n_patches=4, n_kernels=4, size=32,
               batch_size=2, progress=False, **{"network_def#size": "tiny"})
    assert (tmp_path / "model.pt").is_file() and (tmp_path / "checkpoint.pt").is_file()


def test_score_pnp_demo_config_runs_non_blind_with_the_image_prior(cases, tiny_prior_weights, tmp_path):
    """``configs/score_pnp.json`` over ``inference.json``: ScorePnP (DPIR) with the bundle's image prior and the known
    kernel (``kernel.npy``), through MONAI's ConfigWorkflow."""
    from monai_diffrecon.bundles import run_bundle

    path, sha = tiny_prior_weights
    out = tmp_path / "out"
    m = run_bundle("natural_blind_deblur", "score_pnp", input_dir=str(cases), output_dir=str(out), model_path=path, model_sha256=sha,
                   kernel_model_path=path, kernel_model_sha256=sha, score_pnp_iters=3, progress=False,
                   **{"network_def#size": "tiny", "kernel_network_def#size": "tiny"})
    assert len(m) == 2 and all(r["nfe"] == 3 and np.isfinite(r["ours_psnr"]) for r in m)
    case = case_dirs(out)[0]
    assert (case / "restored.png").is_file() and not (case / "kernel.npy").exists()  # non-blind: no kernel estimate written
    with pytest.raises(InvalidValueError, match="needs the blur kernel"):
        (cases / "image_0" / "kernel.npy").unlink()
        run_bundle("natural_blind_deblur", "score_pnp", input_dir=str(cases), output_dir=str(tmp_path / "o2"), model_path=path,
                   model_sha256=sha, kernel_model_path=path, kernel_model_sha256=sha, score_pnp_iters=2, progress=False,
                   **{"network_def#size": "tiny", "kernel_network_def#size": "tiny"})
