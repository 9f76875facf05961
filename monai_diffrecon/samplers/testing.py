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

__all__ = ["GaussianProblem", "gaussian_prior", "gaussian_problem", "run_chains", "posterior_errors",
           "closed_form_cases", "evaluate_case", "previous_default_samplers", "msm_problem", "msm_errors", "LIMITS"]

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


def posterior_errors(samples: torch.Tensor, problem: GaussianProblem, out=None) -> dict:
    """Errors of ``n`` samples ``(n, H·W)`` against the exact posterior: max |sample mean − posterior mean| / s and,
    for ``n > 1``, the relative error of the sample std per pixel (max of |·| and mean, signed). With the sampler's
    output ``out`` carrying a within-chain std (PnP-DM), also that std's errors (``chain_std_*``)."""
    err = {"mean_err_over_prior_std": float((samples.mean(0) - problem.mean).abs().max()) / S}
    exact = problem.var.sqrt()
    if samples.shape[0] > 1:
        rel = samples.std(0) / exact - 1
        err |= {"std_rel_err_max": float(rel.abs().max()), "std_rel_err_mean": float(rel.mean())}
    if out is not None and bool((out.std > 0).any()):
        within = out.std.reshape(samples.shape[0], -1).pow(2).mean(0).sqrt() / exact - 1
        err |= {"chain_std_rel_err_max": float(within.abs().max()), "chain_std_rel_err_mean": float(within.mean())}
    return err


SIGMA_YS = (0.01, 0.1)
KINDS = ("inpaint", "blur")


def _default_samplers() -> dict:
    """name → (factory(prior, σ_y), chains): every sampler with its defaults; only σ_y and the step or iteration
    count are given (RELD at σ_y = 0.01 converges slowly where the data say nothing: its prior pull is (σ_y/s)²)."""
    from monai_diffrecon.samplers import DDNM, DPS, RELD, DiffPIR, PnPDM, ScorePnP

    makers = {"DPS": (lambda p, s: DPS(p, 200, sigma_y=s), 4000),
              "DDNM+": (lambda p, s: DDNM(p, 100, sigma_y=s), 4000),
              "DiffPIR": (lambda p, s: DiffPIR(p, 100, sigma_y=s), 4000),
              "PnP-DM": (lambda p, s: PnPDM(p, sigma_y=s), 4000),
              "RELD": (lambda p, s: RELD(p, 3000, sigma_y=s), 1)}
    for alg in ("admm", "hqs", "red", "pgm"):
        makers[f"ScorePnP-{alg}"] = (lambda p, s, alg=alg: ScorePnP(p, alg, num_iters=300, sigma_y=s), 1)
    return makers


def previous_default_samplers() -> dict:
    """The same samplers with the defaults they had before σ_y-derived defaults (commit e1e49ef), passed explicitly,
    for the before/after table of ``benchmarks/sampler_closed_form.py``."""
    from monai_diffrecon.samplers import DDNM, DPS, RELD, DiffPIR, PnPDM, ScorePnP

    makers = {"DPS": (lambda p, s: DPS(p, 200, zeta=1.0), 4000),
              "DDNM+": (lambda p, s: DDNM(p, 100, sigma_y=s), 4000),
              "DiffPIR": (lambda p, s: DiffPIR(p, 100, lam=7.0, sigma_y=s), 4000),
              "PnP-DM": (lambda p, s: PnPDM(p, sigma_y=s, num_iters=100, burn_in=40, rho0=10.0, rho_min=0.3,
                                            prior_steps=50, prior_spacing="uniform"), 4000),
              "RELD": (lambda p, s: RELD(p, 3000, lam=0.5, sigma_y=s), 1)}
    for alg in ("admm", "hqs", "red", "pgm"):
        makers[f"ScorePnP-{alg}"] = (lambda p, s, alg=alg: ScorePnP(p, alg, num_iters=300, sigma_start=0.5,
                                                                    sigma_end=0.01, lam=0.27, sigma_y=s), 1)
    return makers


# Limits: the measured errors (benchmarks/results/sampler_closed_form.md) with a margin; where a method is an
# approximation (DPS on deblurring, DDNM⁺, the few-step diffusion samplers' spread) the limit records its known error,
# so that a change making it worse fails. (kind, σ_y) → {"mean": max |mean err|/s, "std": max rel. std error}.
LIMITS = {
    "DPS": {("inpaint", 0.01): {"mean": 0.05, "std": 0.1}, ("blur", 0.01): {"mean": 1.0, "std": 3.3},
            ("inpaint", 0.1): {"mean": 0.05, "std": 0.5}, ("blur", 0.1): {"mean": 0.22, "std": 0.12}},
    "DDNM+": {("inpaint", 0.01): {"mean": 0.08, "std": 0.55}, ("blur", 0.01): {"mean": 0.05, "std": 0.22},
              ("inpaint", 0.1): {"mean": 0.08, "std": 0.28}, ("blur", 0.1): {"mean": 0.21, "std": 0.17}},
    "DiffPIR": {("inpaint", 0.01): {"mean": 0.05, "std": 0.55}, ("blur", 0.01): {"mean": 0.05, "std": 0.2},
                ("inpaint", 0.1): {"mean": 0.05, "std": 0.25}, ("blur", 0.1): {"mean": 0.12, "std": 0.17}},
    "PnP-DM": {("inpaint", 0.01): {"mean": 0.05, "std": 0.2}, ("blur", 0.01): {"mean": 0.05, "std": 0.18},
               ("inpaint", 0.1): {"mean": 0.05, "std": 0.13}, ("blur", 0.1): {"mean": 0.05, "std": 0.12}},
    "RELD": {("inpaint", 0.01): {"mean": 0.4}, ("blur", 0.01): {"mean": 0.2},
             ("inpaint", 0.1): {"mean": 0.05}, ("blur", 0.1): {"mean": 0.05}},
    **{f"ScorePnP-{alg}": {(k, sy): {"mean": 0.05} for k in KINDS for sy in SIGMA_YS}
       for alg in ("admm", "hqs", "red", "pgm")},
}


def closed_form_cases(previous: bool = False) -> dict[str, dict]:
    """The posterior checks asserted in ``tests/samplers`` and reported by ``benchmarks/sampler_closed_form.py``:
    every sampler with its DEFAULT settings — only the prior, the operator, σ_y and the number of steps or
    iterations are given — on inpainting and deblurring at σ_y = 0.01 and 0.1 (name → problem, factory, chains,
    limits; see :data:`LIMITS`). ``previous=True``: the pre-σ_y defaults instead (no limits)."""
    makers = previous_default_samplers() if previous else _default_samplers()
    cases = {}
    for name, (make, n) in makers.items():
        for kind in KINDS:
            for sigma_y in SIGMA_YS:
                cases[f"{name} {kind} σ_y={sigma_y}"] = {
                    "sampler": name, "kind": kind, "sigma_y": sigma_y, "n": n,
                    "limits": {} if previous else LIMITS[name][(kind, sigma_y)],
                    "make": lambda p, s=sigma_y, make=make: make(p, s)}
    return cases


def evaluate_case(case: dict, prior=None) -> dict:
    """Run one closed-form case; returns the errors and whether each limit holds."""
    prior = prior or gaussian_prior()
    problem = gaussian_problem(case["kind"], case["sigma_y"])
    samples, out = run_chains(case["make"](prior), problem, case["n"])
    err = posterior_errors(samples, problem, out)
    lim = case["limits"]
    ok = err["mean_err_over_prior_std"] <= lim.get("mean", float("inf"))
    if "std" in lim:
        ok = ok and err["std_rel_err_max"] <= lim["std"]
    return {**err, "ok": ok, "nfe_per_chain": out.nfe}


MSM_N, MSM_STD, MSM_LINES = 16, 0.5, slice(6, 10)


def msm_problem(sigma_y: float, chains: int = 256, seed: int = 0):
    """MSM's closed form: a white complex image with per-component N(0, s²) (s = ``MSM_STD``) on ``N × N``, one coil of
    ones and the orthonormal FFT, so its k-space is white too and the partial-measurement ε is pointwise (an
    exact :class:`GaussianEpsilon`). Lines 6–9 are measured with complex noise of std σ_y per component. The
    posterior of a measured coefficient is ``N(w y, w σ_y²)`` per component with ``w = s²/(s² + σ_y²)``; the
    others keep the prior. Returns ``(prior, operator, y (chains, 1, N, N), w, posterior std)``."""
    from monai_diffrecon.physics import MultiCoilMRI
    from monai_diffrecon.physics.functional.sense import sense_expand

    sch, n = make_scheduler(), MSM_N
    prior = DiffusionPrior(GaussianEpsilon(sch.alphas_cumprod, 0.0, MSM_STD), sch)
    maps = torch.ones(1, 1, n, n, dtype=torch.complex64)
    acq = torch.zeros(1, 1, 1, n)
    acq[..., MSM_LINES] = 1.0
    g = torch.Generator().manual_seed(seed)
    truth = MSM_STD * torch.complex(torch.randn(1, 1, n, n, generator=g), torch.randn(1, 1, n, n, generator=g))
    y = sense_expand(truth, maps, acq)
    y = y + sigma_y * acq * torch.complex(torch.randn(y.shape, generator=g), torch.randn(y.shape, generator=g))
    op = MultiCoilMRI(maps.expand(chains, 1, n, n), acq.expand(chains, 1, 1, n))
    w = MSM_STD**2 / (MSM_STD**2 + sigma_y**2)
    return prior, op, y.expand(chains, 1, n, n).contiguous(), w, (w * sigma_y**2) ** 0.5


def msm_errors(make, sigma_y: float, chains: int = 256) -> dict:
    """Run the MSM sampler ``make(prior)`` on :func:`msm_problem`; errors of the measured lines (max |mean − w y| / s,
    relative std error) and
    of the free lines (|mean| / s, variance / s² − 1)."""
    from monai_diffrecon.physics.functional.sense import sense_expand

    prior, op, y, w, post_std = msm_problem(sigma_y, chains)
    with torch.no_grad():
        x = make(prior)(y, op, generator=torch.Generator().manual_seed(1), progress=False).mean
    k = sense_expand(x, op.coil_maps)
    km, ym = k[..., MSM_LINES], y[..., MSM_LINES]
    free = torch.ones(MSM_N, dtype=torch.bool)
    free[MSM_LINES] = False
    kf = k[..., free]
    comps = torch.cat([kf.real, kf.imag])
    err = {"meas_mean_err_over_prior_std": float((km.mean(0) - w * ym[0]).abs().max()) / MSM_STD,
           "free_mean_over_prior_std": abs(float(comps.mean())) / MSM_STD,
           "free_var_rel_err": float(comps.var()) / MSM_STD**2 - 1}
    if sigma_y > 0:
        std = ((km.real.var(0) + km.imag.var(0)) / 2).mean().sqrt()
        err["meas_std_rel_err"] = float(std) / post_std - 1
    else:
        err["meas_max_abs_dev"] = float((km - ym).abs().max())
    return err
