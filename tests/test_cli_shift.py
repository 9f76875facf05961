"""``diffrecon shift``: the measurement-domain KL between two bundles' priors, from a folder of corrupted samples."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from monai_diffrecon.cli import EXIT_BAD_INPUT, EXIT_OK, main
from monai_diffrecon.networks import diffusion_unet
from monai_diffrecon.networks.weights import sha256_file


def _bundle(root, seed: int, with_prior: bool = True):
    """A minimal bundle: metadata, an inference.json with network_def → verified weights → DiffusionPrior."""
    (root / "configs").mkdir(parents=True)
    (root / "models").mkdir()
    torch.manual_seed(seed)
    net = diffusion_unet(2, 1, size="tiny")
    with torch.no_grad():  # MONAI zero-initialises the output convolution: perturb every weight so the priors differ
        for prm in net.parameters():
            prm.add_(0.05 * torch.randn_like(prm))
    torch.save(net.state_dict(), root / "models" / "model.pt")
    cfg = {"bundle_root": str(root), "model_path": "$@bundle_root + '/models/model.pt'",
           "network_def": {"_target_": "monai_diffrecon.networks.diffusion_unet", "spatial_dims": 2, "in_channels": 1, "size": "tiny"},
           "network": {"_target_": "monai_diffrecon.networks.load_verified", "network": "@network_def", "path": "@model_path",
                       "sha256": "@_meta_#model_sha256"},  # as the shipped bundles: the sha comes from the metadata
           "scheduler": {"_target_": "monai_diffrecon.diffusion.make_scheduler", "kind": "ddim"}}
    if with_prior:
        cfg["prior"] = {"_target_": "monai_diffrecon.diffusion.DiffusionPrior", "network": "@network", "scheduler": "@scheduler"}
    (root / "configs" / "inference.json").write_text(json.dumps(cfg))
    (root / "configs" / "metadata.json").write_text(json.dumps({"version": "0.0.1", "model_sha256": sha256_file(root / "models" / "model.pt")}))
    return str(root)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("shift")
    p, q, nop = _bundle(d / "p", 0), _bundle(d / "q", 1), _bundle(d / "noprior", 0, with_prior=False)
    meas = d / "meas"
    meas.mkdir()
    g = np.random.default_rng(0)
    half = (g.uniform(size=(1, 16, 16)) < 0.5).astype(np.float32)
    for i in range(4):  # a random mask and its complement, twice: every pixel is observed in some sample
        x = g.uniform(-1, 1, (1, 16, 16)).astype(np.float32)
        m = half if i % 2 == 0 else 1 - half
        np.savez(meas / f"{i:02d}.npz", y=m * x, mask=m)
    return d, p, q, nop, meas


def test_shift_is_zero_for_the_same_prior_and_positive_between_two(setup, capsys):
    d, p, q, _, meas = setup
    args = ["--sigmas", "6", "--trust-config", "--json"]
    assert main(["shift", str(meas), p, p, *args]) == EXIT_OK
    same = json.loads(capsys.readouterr().out)
    assert same["kl"] == 0.0 and same["domain"] == "measurement" and same["n"] == 4
    assert main(["shift", str(meas), p, q, *args]) == EXIT_OK
    diff = json.loads(capsys.readouterr().out)
    assert diff["kl"] > 0 and len(diff["integrand"]) == 6


def test_shift_bad_input_is_a_typed_error_naming_the_file(setup, tmp_path, capsys):
    d, p, q, nop, meas = setup
    flags = ["--sigmas", "3", "--trust-config"]
    assert main(["shift", str(tmp_path), p, q, *flags]) == EXIT_BAD_INPUT
    assert "no *.npz" in capsys.readouterr().err
    np.savez(tmp_path / "bad.npz", y=np.zeros((1, 16, 16)), mask=np.zeros((1, 8, 8)))
    assert main(["shift", str(tmp_path), p, q, *flags]) == EXIT_BAD_INPUT
    assert "bad.npz" in capsys.readouterr().err
    assert main(["shift", str(meas), p, nop, *flags]) == EXIT_BAD_INPUT
    assert "no 'prior'" in capsys.readouterr().err
    assert main(["shift", str(meas), p, q, "--sigmas", "3"]) == EXIT_BAD_INPUT  # configs execute code: trust is explicit
    assert "trust_config" in capsys.readouterr().err
    for name, y, mask, message in (
            ("leak", np.ones((1, 16, 16), np.float32), np.zeros((1, 16, 16), np.float32), "non-zero where mask is 0"),
            ("cplx", np.ones((1, 16, 16), np.complex64), np.ones((1, 16, 16), np.float32), "complex"),
            ("two", np.zeros((2, 16, 16), np.float32), np.ones((2, 16, 16), np.float32), "2-channel")):
        folder = tmp_path / name
        folder.mkdir()
        np.savez(folder / "a.npz", y=y, mask=mask)
        assert main(["shift", str(folder), p, q, *flags]) == EXIT_BAD_INPUT
        assert message in capsys.readouterr().err


def test_bundle_prior_of_shipped_bundles():
    from monai_diffrecon.bundles import bundle_prior
    from monai_diffrecon.diffusion import DiffusionPrior
    from monai_diffrecon.errors import InvalidValueError

    p = bundle_prior("mri_multicoil_msm")  # its inference.json takes the sha256 from the metadata (@_meta_#model_sha256)
    assert isinstance(p, DiffusionPrior) and p.network.in_channels == 2 and not p.network.training
    with pytest.raises(InvalidValueError, match="not a DiffusionPrior"):
        bundle_prior("mri_multicoil_selfdb")  # its 'prior' is a bridge (SelfDBPrior), not an unconditional diffusion prior
    with pytest.raises(InvalidValueError, match="conditional"):
        bundle_prior("spect_cardiac_diffusion")  # ε-network conditioned on 4 extra channels


def test_bundle_inferer_is_the_bundles_sampler_with_overrides():
    from monai_diffrecon.bundles import bundle_inferer
    from monai_diffrecon.errors import WeightsError
    from monai_diffrecon.samplers import SPECT25D

    s = bundle_inferer("spect_cardiac_diffusion", {"num_steps": 3})
    assert isinstance(s, SPECT25D) and s.num_steps == 3 and not s.prior.network.training
    with pytest.raises(WeightsError):  # wrong weights hash: refused as the bundle would refuse them
        bundle_inferer("spect_cardiac_diffusion", {"model_sha256": "0" * 64})
