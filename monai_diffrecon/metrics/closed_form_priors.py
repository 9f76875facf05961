"""Priors whose denoisers and KL divergences are known in closed form, to validate the shift metric
(:mod:`monai_diffrecon.metrics.shift`, arXiv 2505.11482) where the answer is known.

:class:`GaussianMixturePrior` — ``p(x) = Σ_k w_k N(x; μ_k, Σ_k)`` on flattened images — has the exact MMSE denoiser
``D_σ(x_σ) = E[x | x + σ n = x_σ] = Σ_k r_k(x_σ) (μ_k + Σ_k (Σ_k + σ² I)⁻¹ (x_σ − μ_k))`` with responsibilities
``r_k ∝ w_k N(x_σ; μ_k, Σ_k + σ² I)`` (each Σ_k is diagonalised once, so every σ costs two matrix products). One
component is a Gaussian; a covariance fitted by probabilistic PCA (Tipping & Bishop 1999: the top ``rank`` eigenpairs
plus the mean of the remaining eigenvalues as isotropic noise) is a PCA-Gaussian.

KL(p‖q): :func:`gaussian_kl` is exact for two Gaussians; :func:`mixture_kl` is the Monte-Carlo mean of
``log p(x) − log q(x)`` over exact samples of p (the densities are exact; only the expectation is sampled, with its
standard error).

Fitting to image patches: :func:`fit_gaussian` (full or PCA covariance) and :func:`fit_gaussian_mixture` (EM with
full covariances, k-means++ start); a ridge ``eps·I`` keeps every covariance positive definite.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from monai_diffrecon.errors import InvalidValueError, ShapeError
from monai_diffrecon.physics.functional.devices import randint, randn, rand

__all__ = ["GaussianMixturePrior", "fit_gaussian", "fit_gaussian_mixture", "gaussian_kl", "mixture_kl"]


class GaussianMixturePrior:
    """``Σ_k w_k N(μ_k, Σ_k)`` over images of ``shape`` (flattened to ``d`` coordinates), float64.

    Args:
        weights: ``(K,)`` non-negative, normalised here.
        means: ``(K, d)``.
        covs: ``(K, d, d)`` symmetric positive definite.
        shape: the image shape ``(C, H, W)`` (or any shape with ``d`` elements).
    """

    def __init__(self, weights: torch.Tensor, means: torch.Tensor, covs: torch.Tensor, shape: Sequence[int]) -> None:
        dev = means.device if isinstance(means, torch.Tensor) else torch.device("cpu")
        w = torch.as_tensor(weights, dtype=torch.float64, device=dev).flatten()
        mu = torch.as_tensor(means, dtype=torch.float64, device=dev)
        cov = torch.as_tensor(covs, dtype=torch.float64, device=dev)
        K = w.numel()
        self.shape = tuple(int(s) for s in shape)
        d = math.prod(self.shape)
        if mu.shape != (K, d) or cov.shape != (K, d, d):
            raise ShapeError(f"GaussianMixturePrior: means (K, d) = ({K}, {d}) and covs (K, d, d) expected, got {tuple(mu.shape)} and {tuple(cov.shape)}")
        if bool((w < 0).any()) or float(w.sum()) <= 0:
            raise InvalidValueError("GaussianMixturePrior: weights must be non-negative with a positive sum")
        evals, evecs = torch.linalg.eigh(0.5 * (cov + cov.transpose(-1, -2)))
        if bool((evals <= 0).any()):
            raise InvalidValueError(f"GaussianMixturePrior: covariances must be positive definite (smallest eigenvalue {float(evals.min()):.3g})")
        self.weights, self.means, self.covs = w / w.sum(), mu, cov
        self.evals, self.evecs = evals, evecs
        self.d = d

    @property
    def num_components(self) -> int:
        return self.weights.numel()

    def _flat(self, x: torch.Tensor) -> torch.Tensor:
        if math.prod(x.shape[1:]) != self.d:
            raise ShapeError(f"expected (N, {', '.join(map(str, self.shape))}) images, got {tuple(x.shape)}")
        return x.reshape(x.shape[0], self.d).to(device=self.means.device, dtype=torch.float64)

    def _components(self, x: torch.Tensor, var: float):
        """Per component: the log density of ``x`` under ``N(μ_k, Σ_k + var I)`` ``(N, K)`` and the coefficients of
        ``x − μ_k`` in Σ_k's eigenbasis ``(K, N, d)``."""
        u = torch.einsum("nd,kde->kne", x, self.evecs) - torch.einsum("kd,kde->ke", self.means, self.evecs)[:, None]
        lam = self.evals[:, None, :] + var
        logn = -0.5 * (u.pow(2) / lam).sum(-1) - 0.5 * torch.log(2 * math.pi * lam).sum(-1)
        return logn.T, u

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``log p(x)`` per image, ``(N,)``."""
        logn, _ = self._components(self._flat(x), 0.0)
        return torch.logsumexp(logn + torch.log(self.weights), dim=1)

    def denoise(self, x_sigma: torch.Tensor, sigma: float) -> torch.Tensor:
        """The exact MMSE denoiser ``E[x | x + σ n = x_σ]`` (module doc), same shape and dtype as ``x_sigma``."""
        x = self._flat(x_sigma)
        var = float(sigma) ** 2
        logn, u = self._components(x, var)
        r = torch.softmax(logn + torch.log(self.weights), dim=1)  # (N, K)
        shrunk = u * (self.evals / (self.evals + var))[:, None, :]
        post = self.means[:, None] + torch.einsum("kne,kde->knd", shrunk, self.evecs)  # (K, N, d)
        out = torch.einsum("nk,knd->nd", r, post)
        return out.reshape(x_sigma.shape).to(device=x_sigma.device, dtype=x_sigma.dtype)

    def denoise_observed(self, y_sigma: torch.Tensor, sigma: float, mask: torch.Tensor) -> torch.Tensor:
        """The exact measurement-domain MMSE denoiser ``E[x | P(x + σ n) = ȳ_σ]`` for a 0/1 pixel mask ``P`` per
        sample (same shape as ``y_sigma``): the posterior mean from the observed coordinates alone — what a denoiser
        trained on such measurements learns — instead of :meth:`denoise` applied to the zero-filled input. Per
        component ``μ + Σ Pᵀ(P Σ Pᵀ + σ² I)⁻¹(ȳ_σ − P μ)``, weighted by the marginal likelihoods of the observed values."""
        y = self._flat(y_sigma)
        m = self._flat(mask)
        N, d = y.shape
        var = float(sigma) ** 2
        eye = torch.eye(d, dtype=torch.float64, device=y.device)
        # observed block P Σ Pᵀ + σ² I, identity on the unobserved coordinates (one (d, d) solve per sample and component)
        A = m[:, None, :, None] * self.covs[None] * m[:, None, None, :] + (var * m + (1 - m))[:, None, :, None] * eye
        r = m[:, None] * (y[:, None] - self.means[None])  # (N, K, d)
        chol = torch.linalg.cholesky(A)
        z = torch.cholesky_solve(r[..., None], chol)[..., 0]
        logdet = 2 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
        logn = -0.5 * (r * z).sum(-1) - 0.5 * logdet - 0.5 * m.sum(1, keepdim=True) * math.log(2 * math.pi)
        w = torch.softmax(logn + torch.log(self.weights), dim=1)  # (N, K)
        post = self.means[None] + torch.einsum("kde,nke->nkd", self.covs, m[:, None] * z)
        return torch.einsum("nk,nkd->nd", w, post).reshape(y_sigma.shape).to(device=y_sigma.device, dtype=y_sigma.dtype)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` exact samples ``(n, *shape)``."""
        k = torch.multinomial(self.weights.to(generator.device), int(n), replacement=True, generator=generator).to(self.means.device)
        z = randn((int(n), self.d), generator, dtype=torch.float64, device=self.means.device)
        x = self.means[k] + torch.einsum("nd,ned->ne", z * self.evals[k].sqrt(), self.evecs[k])
        return x.reshape(int(n), *self.shape)


def gaussian_kl(p: GaussianMixturePrior, q: GaussianMixturePrior) -> float:
    """Exact KL(p‖q) in nats for two single Gaussians."""
    if p.num_components != 1 or q.num_components != 1:
        raise InvalidValueError("gaussian_kl: single Gaussians required (use mixture_kl for mixtures)")
    Uq, lq = q.evecs[0], q.evals[0]
    dm = (q.means[0] - p.means[0]) @ Uq
    tr = float(((Uq.T @ p.covs[0] @ Uq).diagonal() / lq).sum())
    return 0.5 * (tr + float((dm.pow(2) / lq).sum()) - p.d + float(torch.log(lq).sum() - torch.log(p.evals[0]).sum()))


def mixture_kl(p: GaussianMixturePrior, q: GaussianMixturePrior, n: int, generator: torch.Generator, batch: int = 4096) -> tuple[float, float]:
    """KL(p‖q) = E_p[log p − log q] by Monte Carlo over ``n`` exact samples of p: ``(mean, standard error)``."""
    vals = []
    left = int(n)
    while left > 0:
        x = p.sample(min(batch, left), generator)
        vals.append(p.log_prob(x) - q.log_prob(x))
        left -= x.shape[0]
    v = torch.cat(vals)
    return float(v.mean()), float(v.std() / math.sqrt(v.numel()))


def _check_data(x: torch.Tensor) -> torch.Tensor:
    if x.ndim < 2 or x.shape[0] < 2:
        raise ShapeError(f"fit: (N, …) data with N ≥ 2 required, got {tuple(x.shape)}")
    return x.reshape(x.shape[0], -1).to(torch.float64)


def fit_gaussian(x: torch.Tensor, rank: int | None = None, eps: float = 1e-4) -> GaussianMixturePrior:
    """The maximum-likelihood Gaussian of the images ``x`` ``(N, *shape)`` (covariance + ``eps·I``), or with
    ``rank`` the probabilistic-PCA Gaussian: top ``rank`` eigenpairs, the remaining variance as isotropic noise."""
    X = _check_data(x)
    mu = X.mean(0)
    cov = (X - mu).T @ (X - mu) / X.shape[0]
    if rank is not None:
        d = cov.shape[0]
        if not 0 < int(rank) < d:
            raise InvalidValueError(f"rank: must lie in [1, {d - 1}], got {rank}")
        evals, evecs = torch.linalg.eigh(cov)
        evals, evecs = evals.flip(0), evecs.flip(1)
        noise = float(evals[int(rank):].mean().clamp_min(0))
        top = evecs[:, :int(rank)]
        cov = top @ torch.diag(evals[:int(rank)] - noise) @ top.T + noise * torch.eye(d, dtype=torch.float64, device=X.device)
    cov = cov + eps * torch.eye(cov.shape[0], dtype=torch.float64, device=X.device)
    return GaussianMixturePrior(torch.ones(1, dtype=torch.float64, device=X.device), mu[None], cov[None], x.shape[1:])


def fit_gaussian_mixture(x: torch.Tensor, components: int, generator: torch.Generator, iterations: int = 100,
                         eps: float = 1e-4) -> GaussianMixturePrior:
    """EM for a ``components``-Gaussian mixture with full covariances (+ ``eps·I``) on the images ``x``; k-means++
    centres start it."""
    X = _check_data(x)
    N, d = X.shape
    K = int(components)
    if not 1 <= K <= N:
        raise InvalidValueError(f"components: must lie in [1, {N}], got {components}")
    centres = X[randint(0, N, (1,), generator, device=X.device)]
    for _ in range(1, K):  # k-means++
        dist = torch.cdist(X, centres).min(1).values.pow(2)
        cum = torch.cumsum(dist / dist.sum(), 0)
        centres = torch.cat([centres, X[torch.searchsorted(cum, rand((1,), generator, dtype=torch.float64, device=X.device)).clamp(max=N - 1)]])
    resp = torch.nn.functional.one_hot(torch.cdist(X, centres).argmin(1), K).to(torch.float64)
    eye = torch.eye(d, dtype=torch.float64, device=X.device)
    model = None
    for _ in range(int(iterations)):
        nk = resp.sum(0).clamp_min(1e-12)
        mu = resp.T @ X / nk[:, None]
        cov = torch.stack([((X - mu[k]).T * resp[:, k]) @ (X - mu[k]) / nk[k] + eps * eye for k in range(K)])
        model = GaussianMixturePrior(nk / N, mu, cov, x.shape[1:])
        logn, _ = model._components(X, 0.0)
        new = torch.softmax(logn + torch.log(model.weights), dim=1)
        if float((new - resp).abs().max()) < 1e-6:
            break
        resp = new
    return model
