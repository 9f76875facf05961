"""Diffusion priors and VP schedule utilities."""

from monai_diffrecon.diffusion.analytic import GaussianEpsilon
from monai_diffrecon.diffusion.parameterization import LOSS_WEIGHTINGS, PREDICTIONS, Parameterization
from monai_diffrecon.diffusion.prior import DiffusionPrior, encode_mean
from monai_diffrecon.diffusion.schedule import alpha_bar_at, make_scheduler, sigma_of_t, t_of_sigma, timestep_sequence

__all__ = ["DiffusionPrior", "encode_mean", "GaussianEpsilon", "Parameterization", "PREDICTIONS", "LOSS_WEIGHTINGS", "make_scheduler", "alpha_bar_at", "sigma_of_t", "t_of_sigma", "timestep_sequence"]
