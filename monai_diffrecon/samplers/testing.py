"""Closed-form Gaussian benchmark problems for samplers (used by ``tests/samplers`` and
``benchmarks/sampler_closed_form.py``, so the reported figures are the asserted ones).

Data x₀ ~ N(μ, s²I) on an ``H × W`` image; ``y = A x + n``, n ~ N(0, σ_y²I). The posterior is Gaussian with
covariance ``Σ = (AᵀA/σ_y² + I/s²)⁻¹`` and mean ``Σ(Aᵀy/σ_y² + μ/s²)``. Independent chains run as one batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from monai_diffrecon.diffusion import DiffusionPrior, GaussianEpsilon, make_scheduler
from monai_diffrecon.physics import Blur, Mask, gaussian_kernel
from monai_diffrecon.errors import InvalidValueError

__all__ = ["GaussianProblem", "gaussian_prior", "gaussian_problem", "run_chains", "posterior_errors"]

MU, S, H, W = 0.3, 0.8, 4, 4


def gaussian_prior(mean: float = MU, std: float = S) -> DiffusionPrior:
    sch = make_scheduler()
    return DiffusionPrior(GaussianEpsilon(sch.alphas_cumprod, mean, std), sch).double()


@dataclass
class GaussianProblem:
    operator: object
    y: torch.Tensor
    mean: torch.Tensor  # (H·W,) posterior mean
    var: torch.Tensor  # (H·W,) posterior marginal variances
    sigma_y: float


def gaussian_problem(kind: str, sigma_y: float, seed: int = 0) -> GaussianProblem:
    """``kind``: ``"inpaint"`` (random 50 % mask) or ``"blur"`` (3×3 Gaussian, σ = 0.7 px, circular)."""
    g = torch.Generator().manual_seed(seed)
    if kind == "inpaint":
        op = Mask((torch.rand(1, 1, H, W, generator=g) > 0.5).double())
    elif kind == "blur":
        op = Blur(gaussian_kernel(0.7, size=3, dtype=torch.float64))
    else:
        raise InvalidValueError(f"kind: inpaint or blur, got {kind!r}")
    x = MU + S * torch.randn(1, 1, H, W, dtype=torch.float64, generator=g)
    y = op(x) + sigma_y * torch.randn(op(x).shape, dtype=torch.float64, generator=g)
    d = H * W
    A = op(torch.eye(d, dtype=torch.float64).reshape(d, 1, H, W)).reshape(d, -1).T
    cov = torch.linalg.inv(A.T @ A / sigma_y**2 + torch.eye(d, dtype=torch.float64) / S**2)
    mean = cov @ (A.T @ y.reshape(-1) / sigma_y**2 + MU / S**2)
    return GaussianProblem(op, y, mean, torch.diagonal(cov), sigma_y)


def run_chains(sampler, problem: GaussianProblem, n: int, seed: int = 1):
    """``n`` independent chains (one batch); returns ``(samples (n, H·W), SamplerOutput)``."""
    Y = problem.y.expand(n, *problem.y.shape[1:]).contiguous()
    out = sampler(Y, problem.operator, generator=torch.Generator().manual_seed(seed), progress=False)
    return out.x[0].reshape(n, -1), out


def posterior_errors(samples: torch.Tensor, problem: GaussianProblem) -> dict:
    """Max |sample mean − posterior mean| / s, and max / mean relative variance error over pixels."""
    rel = samples.var(0) / problem.var - 1
    return {
        "mean_err_over_prior_std": float((samples.mean(0) - problem.mean).abs().max()) / S,
        "var_rel_err_max": float(rel.abs().max()),
        "var_rel_err_mean": float(rel.mean()),
    }


def closed_form_cases() -> dict[str, dict]:
    """The posterior checks asserted in ``tests/samplers`` (name → problem, sampler factory, chains, limits).

    Settings: λ = 1 is the Bayes-consistent DiffPIR weight for an exact prior (the paper's λ = 7 suits natural
    images); PnP-DM uses one reverse step per training step in its prior step and ρ_min = σ_y/4.
    """
    from monai_diffrecon.samplers import DDNM, DiffPIR, PnPDM

    cases = {}
    for kind in ("inpaint", "blur"):
        cases[f"DDNM {kind} (noiseless)"] = dict(kind=kind, sigma_y=1e-3, n=8000, limits={"mean": 0.05},
                                                  make=lambda p: DDNM(p, 100, eta=1.0))
        cases[f"DiffPIR {kind}"] = dict(kind=kind, sigma_y=0.05, n=8000, limits={"mean": 0.05},
                                        make=lambda p: DiffPIR(p, 100, lam=1.0, zeta=1.0, sigma_y=0.05))
        cases[f"PnP-DM {kind}"] = dict(kind=kind, sigma_y=0.2, n=6000, limits={"mean": 0.05, "var": 0.10},
                                       make=lambda p: PnPDM(p, sigma_y=0.2, num_iters=100, burn_in=70, rho0=10.0, rho_decay=0.9,
                                                            rho_min=0.05, prior_steps=1000))
    return cases


def evaluate_case(case: dict, prior=None) -> dict:
    """Run one closed-form case; returns the errors and whether each limit holds."""
    prior = prior or gaussian_prior()
    problem = gaussian_problem(case["kind"], case["sigma_y"])
    samples, out = run_chains(case["make"](prior), problem, case["n"])
    err = posterior_errors(samples, problem)
    ok = err["mean_err_over_prior_std"] <= case["limits"]["mean"]
    if "var" in case["limits"]:
        ok = ok and err["var_rel_err_max"] <= case["limits"]["var"]
    return {**err, "ok": ok, "nfe_per_chain": out.nfe}
