"""Stateless torch kernels used by the operator modules (shapes documented per function)."""

from monai_diffrecon.physics.functional.devices import binomial, device_of, poisson, rand, randint, randn, randn_like, randperm
from monai_diffrecon.physics.functional.fft import fftc, ifftc
from monai_diffrecon.physics.functional.psf import FWHM_TO_SIGMA, fwhm_at_distance, gaussian_toeplitz
from monai_diffrecon.physics.functional.sense import channels_to_complex, complex_randn, complex_to_channels, sense_combine, sense_expand
from monai_diffrecon.physics.functional.rotate import (
    bilinear_matrix,
    csr_transpose,
    detector_frame,
    padded_size,
    sample_positions,
    spmm,
)

__all__ = [
    "fftc",
    "ifftc",
    "FWHM_TO_SIGMA",
    "fwhm_at_distance",
    "gaussian_toeplitz",
    "bilinear_matrix",
    "csr_transpose",
    "detector_frame",
    "padded_size",
    "sample_positions",
    "spmm",
    "sense_expand",
    "sense_combine",
    "complex_to_channels",
    "channels_to_complex",
    "complex_randn",
    "device_of",
    "randn",
    "rand",
    "randint",
    "randperm",
    "randn_like",
    "poisson",
    "binomial",
]
