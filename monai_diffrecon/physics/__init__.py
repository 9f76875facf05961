"""Physics operators: adjoint-tested ``torch.nn.Module`` forward models sharing one small algebra.

Every operator is a :class:`LinearOperator`: ``A(x)``, ``A.adjoint(y)``, ``A.normal(x)``, ``A.H``, ``A @ B``,
``A.prox_l2(z, y, gamma)``, ``A.pinv(y)``, ``A.norm()``.
"""

import warnings as _warnings

from monai_diffrecon.physics.base import (
    Adjoint,
    Compose,
    Identity,
    LinearOperator,
    Scaled,
    Sum,
    conjugate_gradient,
    finite_checks,
)
from monai_diffrecon.physics.blur import Blur, KernelBlur, gaussian_kernel
from monai_diffrecon.physics.coils import birdcage_maps, estimate_coil_maps, rss
from monai_diffrecon.physics.complex import ChannelsToComplex, ComplexToReal, RealToComplex, SlicesToVolume
from monai_diffrecon.physics.ct import ParallelBeamCT
from monai_diffrecon.physics.masks import equispaced_mask, poisson_disc_mask, random_lines_mask
from monai_diffrecon.physics.mri import MultiCoilMRI
from monai_diffrecon.physics.noise import GaussianNoise, PoissonNoise
from monai_diffrecon.physics.sampling import Decimate, Downsample, Mask
from monai_diffrecon.physics.scatter import (
    dew_scatter,
    photopeak_scatter,
    scatter_window_counts,
    simulate_scatter_acquisition,
    tew_scatter,
)
from monai_diffrecon.physics.spect import LEHR, CollimatorPSF, SPECTProjector

# torch flags sparse CSR as "beta" on first use; the kernels here only use CSR @ dense, which is stable.
_warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")

__all__ = [
    "LinearOperator",
    "Adjoint",
    "Compose",
    "Identity",
    "Scaled",
    "Sum",
    "conjugate_gradient",
    "finite_checks",
    "MultiCoilMRI",
    "RealToComplex",
    "ComplexToReal",
    "ChannelsToComplex",
    "SlicesToVolume",
    "SPECTProjector",
    "CollimatorPSF",
    "LEHR",
    "photopeak_scatter",
    "scatter_window_counts",
    "tew_scatter",
    "dew_scatter",
    "simulate_scatter_acquisition",
    "ParallelBeamCT",
    "Blur",
    "KernelBlur",
    "gaussian_kernel",
    "Mask",
    "Decimate",
    "Downsample",
    "GaussianNoise",
    "PoissonNoise",
    "birdcage_maps",
    "estimate_coil_maps",
    "rss",
    "random_lines_mask",
    "equispaced_mask",
    "poisson_disc_mask",
]
