"""RELD against its closed form: with an identity autoencoder and an exact Gaussian latent prior N(μ, s²), the RED
term λ(v − D_σ(v)) is the gradient of (λσ²/(s²+σ²))/2 ‖v − μ‖², and the HQS fixed point (finite β) solves
((1 + λ'/β) AᵀA + λ' I) x = Aᵀb + λ' μ + (λ'/β) AᵀA μ with λ' = λσ²/(s²+σ²) (→ the MAP as β → ∞)."""

import torch

from monai_diffrecon.diffusion import DiffusionPrior, GaussianEpsilon, make_scheduler
from monai_diffrecon.physics import Blur, Downsample, gaussian_kernel
from monai_diffrecon.samplers.reld import RELD


def _closed_form(A, b, lam_eff, mu, beta, shape):
    n = int(torch.tensor(shape).prod())
    M = torch.stack([A(e.reshape(shape)).reshape(-1) for e in torch.eye(n, dtype=torch.float64)], 1)
    AtA, eye = M.T @ M, torch.eye(n, dtype=torch.float64)
    lhs = (1 + lam_eff / beta) * AtA + lam_eff * eye
    rhs = M.T @ b.reshape(-1) + lam_eff * mu + (lam_eff / beta) * AtA @ torch.full((n,), mu, dtype=torch.float64)
    return torch.linalg.solve(lhs, rhs).reshape(shape)


def test_reld_converges_to_the_gaussian_red_solution():
    sch = make_scheduler()
    mu, s, sigma, lam = 0.4, 0.3, 0.2, 0.8
    prior = DiffusionPrior(GaussianEpsilon(sch.alphas_cumprod, mu, s), sch)
    g = torch.Generator().manual_seed(0)
    shape = (1, 1, 10, 10)
    for A in (Blur(gaussian_kernel(1.0, 5, dtype=torch.float64)), Downsample(2)):
        x = torch.rand(shape, generator=g, dtype=torch.float64)
        b = A(x) + 0.02 * torch.randn(A(x).shape, generator=g, dtype=torch.float64)
        out = RELD(prior, num_iters=400, beta=2.0, lam=lam, step=0.2, sigma=sigma)(b, A, generator=torch.Generator(), progress=False)
        ref = _closed_form(A, b, lam * sigma**2 / (s**2 + sigma**2), mu, 2.0, shape)
        assert out.nfe == 400
        assert float((out.mean - ref).abs().max()) < 5e-3 * float(ref.abs().max()), type(A).__name__
