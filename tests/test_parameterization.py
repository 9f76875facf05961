"""Prediction types of :class:`DiffusionPrior` (ε, x₀, v, EDM): exact ε̂ / x̂₀ / score / denoiser on the analytic Gaussian
network, the closed-form posterior tests for every parameterisation, and the training recipe (targets, weights,
log-normal σ, bit-exact resume)."""

from __future__ import annotations

import pytest
import torch

from monai_diffrecon.diffusion import PREDICTIONS, DiffusionPrior, GaussianEpsilon, Parameterization, make_scheduler
from monai_diffrecon.errors import InvalidValueError, TrainingError
from monai_diffrecon.networks import diffusion_unet
from monai_diffrecon.samplers.testing import MU, S, closed_form_cases, evaluate_case
from monai_diffrecon.training import DenoisingScoreTrainer, DSMConfig, TensorSampler

SCH = make_scheduler()


def _prior(prediction="epsilon", sigma_data=0.5):
    net = GaussianEpsilon(SCH.alphas_cumprod, MU, S, prediction=prediction, sigma_data=sigma_data)
    return DiffusionPrior(net, SCH, prediction=prediction, sigma_data=sigma_data).double()


@pytest.mark.parametrize("prediction", PREDICTIONS)
@pytest.mark.parametrize("sigma_data", [0.5, 1.0])
def test_every_prediction_gives_the_exact_eps_x0_score_and_denoiser(prediction, sigma_data):
    ref, p = _prior(), _prior(prediction, sigma_data)
    x = torch.randn(4, 1, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for t in (0.0, 10.0, 200.0, 500.0, 800.0, 999.0):
        for f in ("eps", "x0", "score"):
            a, b = getattr(p, f)(x, t), getattr(ref, f)(x, t)
            assert float((a - b).abs().max() / b.abs().max()) < 1e-10, (f, t)
    for s in (0.005, 0.05, 0.5, 5.0, 50.0):
        exact = MU + (x - MU) * S**2 / (S**2 + s**2)  # the MMSE denoiser of N(μ, s²) at noise σ
        # 1e-6: the network sees t* rounded to float32, like a trained network
        assert float((p.denoise(x, s) - exact).abs().max() / exact.abs().max()) < 1e-6, s


@pytest.mark.parametrize("prediction", [p for p in PREDICTIONS if p != "epsilon"])
@pytest.mark.parametrize("sampler", ["DPS", "DDNM+", "DiffPIR", "PnP-DM", "ScorePnP-admm", "RELD"])
def test_closed_form_posteriors_hold_for_every_parameterisation(prediction, sampler):
    """The closed-form Gaussian posterior cases (defaults, σ_y = 0.1, inpainting) with a prior of each prediction type
    (the ε cases run in tests/samplers/test_gaussian_closed_form.py)."""
    name = f"{sampler} inpaint σ_y=0.1"
    r = evaluate_case(closed_form_cases()[name], _prior(prediction))
    assert r["ok"], r


def test_edm_with_unit_sigma_data_feeds_x_t_unchanged_and_weights_are_consistent():
    a = torch.tensor([0.999, 0.5, 0.01], dtype=torch.float64)
    x = torch.randn(3, dtype=torch.float64)
    assert torch.allclose(Parameterization("edm", 1.0).network_input(x, a), x)
    for pred in PREDICTIONS:
        p = Parameterization(pred, 0.5)
        x0, eps = torch.randn(3, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps
        tgt = p.target(x0, eps, a)
        assert torch.allclose(p.to_x0(tgt, x_t, a), x0) and torch.allclose(p.to_eps(tgt, x_t, a), eps)
        # an output error δ is an x̂₀ error k δ
        assert torch.allclose((p.to_x0(tgt + 1e-3, x_t, a) - x0).abs(), 1e-3 * p.x0_gain(a))
        # EDM's λ(σ) is a unit weight on the EDM network's output; min-SNR for ε is min(SNR, γ)/SNR
    assert torch.allclose(Parameterization("edm", 0.5).loss_weight(a, "edm"), torch.ones_like(a))
    snr = a / (1 - a)
    assert torch.allclose(Parameterization("epsilon").loss_weight(a, "min_snr", 5.0), snr.clamp(max=5.0) / snr)
    with pytest.raises(InvalidValueError):
        Parameterization("score")


IMGS = torch.rand(32, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1


def _trainer(d, iters, **recipe):
    torch.manual_seed(0)
    cfg = DSMConfig(max_iterations=iters, batch_size=4, checkpoint_every=3, **recipe)
    return DenoisingScoreTrainer(diffusion_unet(2, 1, size="tiny"), SCH, TensorSampler(IMGS), d, cfg, progress=False)


def test_edm_recipe_trains_resumes_bit_exactly_and_builds_its_prior(tmp_path):
    recipe = dict(prediction="edm", loss_weighting="edm", t_sampling="lognormal")
    a = _trainer(tmp_path / "a", 6, **recipe)
    a.run()
    b = _trainer(tmp_path / "b", 6, **recipe)
    b.run(max_iterations=4)
    b2 = _trainer(tmp_path / "b", 6, **recipe)
    b2.run()
    assert a.losses == b2.losses and all(torch.equal(p, q) for p, q in zip(a.ema.parameters(), b2.ema.parameters()))
    prior = DiffusionPrior(a.ema, SCH, **a.prior_kwargs())
    with torch.no_grad():
        x0 = prior.x0(torch.randn(2, 1, 16, 16), 999.0)
    # EDM: at the top of the schedule x̂₀ ≈ c_skip·x_VE + c_out·F stays of the data's scale, not ×160 an ε error
    assert x0.abs().max() < 5


def test_a_trainer_with_its_own_loss_refuses_a_recipe(tmp_path):
    from monai_diffrecon.networks import DnCNN
    from monai_diffrecon.training import GaussianDenoiserTrainer

    with pytest.raises(TrainingError, match="own loss"):
        GaussianDenoiserTrainer(DnCNN(1, depth=3, features=4), None, TensorSampler(IMGS), tmp_path,
                                DSMConfig(prediction="sample"), progress=False)


def test_bf16_autocast_step_matches_fp32(tmp_path):
    """precision="bf16": the first loss within 1 % of fp32's on the same draws, weights stay fp32, training proceeds."""
    a, b = _trainer(tmp_path / "a", 2), _trainer(tmp_path / "b", 2, precision="bf16")
    a.run()
    b.run()
    assert abs(b.losses[0] - a.losses[0]) <= 0.01 * a.losses[0]
    assert all(p.dtype == torch.float32 for p in b.network.parameters())
    with pytest.raises(TrainingError, match="precision"):
        _trainer(tmp_path / "c", 1, precision="fp16")


def test_bf16_prior_matches_fp32_and_leaves_float64_alone():
    torch.manual_seed(0)
    net = diffusion_unet(2, 1, size="tiny")
    for p in net.parameters():  # MONAI zero-initialises the output convolution: give it weights
        p.data.normal_(0, 0.05)
    p32 = DiffusionPrior(net, SCH)
    p16 = DiffusionPrior(net, SCH, precision="bf16")
    x = torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a, b = p32.x0(x, 300.0), p16.x0(x, 300.0)
    assert b.dtype == torch.float32 and float((a - b).norm() / a.norm()) < 0.02
    g = _prior()  # float64 analytic network: bf16 autocast applies to float32 inputs only
    g16 = DiffusionPrior(g.network, SCH, precision="bf16").double()
    xd = x.double()
    assert torch.equal(g.x0(xd, 300.0), g16.x0(xd, 300.0))
    with pytest.raises(InvalidValueError):
        DiffusionPrior(net, SCH, precision="half")


def test_batch_chunk_gives_the_same_output_as_one_call():
    """``batch_chunk`` bounds the network's batch (memory for every slice of a large volume) without changing ε̂."""
    from monai_diffrecon.networks import diffusion_unet

    torch.manual_seed(0)
    net = diffusion_unet(2, 1, cond_channels=2, size="tiny").eval()
    sch = make_scheduler()
    x, cond = torch.randn(7, 1, 16, 16), torch.randn(7, 2, 16, 16)
    t = torch.tensor([10.0, 100, 200, 300, 500, 700, 900])
    with torch.no_grad():
        ref = DiffusionPrior(net, sch, prediction="edm").eps(x, t, cond)
        chunked = DiffusionPrior(net, sch, prediction="edm", batch_chunk=3).eps(x, t, cond)
        scalar_t = DiffusionPrior(net, sch, batch_chunk=2).eps(x, 400, cond)
        scalar_ref = DiffusionPrior(net, sch).eps(x, 400, cond)
    assert torch.allclose(chunked, ref, atol=1e-6) and torch.allclose(scalar_t, scalar_ref, atol=1e-6)
    with pytest.raises(InvalidValueError):
        DiffusionPrior(net, sch, batch_chunk=0)
