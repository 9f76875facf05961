"""Classical reconstructions used as baselines and initialisers: OSEM/MLEM, FBP, CG-SENSE, APGM (FISTA), a coarse-to-fine blur-kernel estimate, Wiener and TV denoising."""

from monai_diffrecon.recon.apgm import apgm, least_squares_tv_objective
from monai_diffrecon.recon.blind import estimate_kernel
from monai_diffrecon.recon.cg import cg_sense
from monai_diffrecon.recon.classical import estimate_noise_std, tv_denoise, wiener
from monai_diffrecon.recon.em import mlem, osem
from monai_diffrecon.recon.fbp import fbp, ramp_filter

__all__ = ["osem", "mlem", "fbp", "ramp_filter", "cg_sense", "apgm", "least_squares_tv_objective", "estimate_kernel", "wiener", "estimate_noise_std", "tv_denoise"]
