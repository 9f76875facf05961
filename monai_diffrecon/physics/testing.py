"""Operator contract checks and the registry of operators they run on.

The test-suite (``tests/physics/test_contract.py``) and the figure report (``benchmarks/physics_report.py``)
both use :data:`OPERATORS`, so every operator passes the same checks and the figures quoted come from the same
code the tests assert on. A factory takes a dtype (``float64``/``float32``) and returns a :class:`Case`.

Checks (sigpy ``check_linop_*`` and deepinv ``adjointness_test`` in spirit):
* :func:`adjoint_error` — ``|⟨A x, y⟩ − ⟨x, Aᴴ y⟩| / |⟨A x, y⟩|`` over random draws;
* :func:`linearity_error`, :func:`normal_error`, :func:`prox_gradient_error`;
* :func:`explicit_matrix` — the dense matrix of a small operator, for exact norms.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from monai_diffrecon.physics.base import Identity, LinearOperator
from monai_diffrecon.physics.blur import Blur, KernelBlur, gaussian_kernel
from monai_diffrecon.physics.coils import birdcage_maps
from monai_diffrecon.physics.complex import ChannelsToComplex, ComplexToReal, RealToComplex, SlicesToVolume
from monai_diffrecon.physics.ct import ParallelBeamCT
from monai_diffrecon.physics.masks import poisson_disc_mask, random_lines_mask
from monai_diffrecon.physics.mri import MultiCoilMRI
from monai_diffrecon.physics.sampling import Decimate, Downsample, Mask
from monai_diffrecon.physics.spect import CollimatorPSF, SPECTProjector

__all__ = [
    "Case",
    "OPERATORS",
    "random_like_domain",
    "adjoint_error",
    "linearity_error",
    "normal_error",
    "prox_gradient_error",
    "explicit_matrix",
    "quick_bench",
]


@dataclass
class Case:
    """An operator instance with the shapes of its domain and range.

    Attributes:
        op: the operator.
        x_shape / y_shape: input / output shapes to test with (batch included).
        x_complex / y_complex: whether the domain / range is complex.
        analytic_norm: ``‖A‖₂`` when known in closed form.
        batch_fixed: the operator carries per-sample parameters, so the batch size is fixed.
    """

    op: LinearOperator
    x_shape: tuple[int, ...]
    y_shape: tuple[int, ...]
    x_complex: bool = False
    y_complex: bool = False
    analytic_norm: float | None = None
    batch_fixed: bool = False
    tags: set[str] = field(default_factory=set)


def _cplx(dtype: torch.dtype) -> torch.dtype:
    return dtype.to_complex()


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _identity(dtype):
    return Case(Identity((None, 1, 6, 5)), (2, 1, 6, 5), (2, 1, 6, 5), analytic_norm=1.0)


def _mask(dtype):
    m = (torch.rand(1, 1, 8, 8, generator=_gen(1)) > 0.4).to(dtype) * 0.5
    return Case(Mask(m), (3, 2, 8, 8), (3, 2, 8, 8), analytic_norm=0.5)


def _mask_batch_weights(dtype):
    m = torch.rand(2, 1, 6, 7, generator=_gen(2), dtype=torch.float64) * 2.0
    return Case(Mask(m.to(dtype)), (2, 3, 6, 7), (2, 3, 6, 7), analytic_norm=float(m.to(dtype).max()), batch_fixed=True)


def _blur2d(dtype):
    op = Blur(gaussian_kernel(1.3, dtype=dtype))
    return Case(op, (2, 3, 12, 10), (2, 3, 12, 10), analytic_norm=1.0)


def _blur_batch_kernels(dtype):
    k = torch.rand(2, 1, 5, 5, generator=_gen(3), dtype=torch.float64)
    k = k / k.sum(dim=(-2, -1), keepdim=True)
    return Case(Blur(k.to(dtype)), (2, 1, 9, 8), (2, 1, 9, 8), analytic_norm=1.0, batch_fixed=True)


def _kernel_blur(dtype):
    img = torch.rand(2, 3, 12, 10, generator=_gen(4), dtype=torch.float64).to(dtype)
    return Case(KernelBlur(img, (5, 4)), (2, 1, 5, 4), (2, 3, 12, 10), batch_fixed=True)


def _blur3d(dtype):
    return Case(Blur(gaussian_kernel((1.0, 0.7, 1.2), size=(5, 3, 5), dtype=dtype)), (2, 1, 8, 7, 6), (2, 1, 8, 7, 6), analytic_norm=1.0)


def _blur_complex(dtype):
    k = torch.rand(4, 3, generator=_gen(4), dtype=torch.float64).to(dtype)
    return Case(Blur(k), (2, 1, 8, 8), (2, 1, 8, 8), x_complex=True, y_complex=True, analytic_norm=float(k.sum()))


def _decimate(dtype):
    return Case(Decimate(2), (2, 1, 8, 6), (2, 1, 4, 3), analytic_norm=1.0)


def _downsample_gauss(dtype):
    return Case(Downsample(2).to(dtype), (2, 1, 12, 8), (2, 1, 6, 4))


def _downsample_box3d(dtype):
    return Case(Downsample(2, "box", spatial_dims=3).to(dtype), (1, 1, 6, 4, 4), (1, 1, 3, 2, 2))


def _mri_single_coil(dtype):
    phase = torch.rand(1, 1, 12, 10, generator=_gen(5), dtype=torch.float64) * 6
    maps = torch.polar(torch.ones_like(phase), phase).to(_cplx(dtype))
    mask = random_lines_mask(10, 3, 2, generator=_gen(6))
    return Case(MultiCoilMRI(maps, mask.to(dtype)), (2, 1, 12, 10), (2, 1, 12, 10), True, True, analytic_norm=1.0)


def _mri_multicoil_2d(dtype):
    maps = birdcage_maps(8, (16, 14), dtype=_cplx(dtype))
    mask = random_lines_mask(14, 4, 4, generator=_gen(7))
    return Case(MultiCoilMRI(maps, mask.to(dtype)), (2, 1, 16, 14), (2, 8, 16, 14), True, True)


def _mri_multicoil_full(dtype):
    maps = birdcage_maps(4, (10, 12), dtype=_cplx(dtype))
    return Case(MultiCoilMRI(maps, torch.ones(1, 1, 1, 1, dtype=dtype)), (2, 1, 10, 12), (2, 4, 10, 12), True, True, analytic_norm=1.0)


def _mri_multicoil_3d(dtype):
    maps = birdcage_maps(4, (6, 10, 8), rings=2, dtype=_cplx(dtype))
    mask = poisson_disc_mask((10, 8), 2, (4, 4), generator=_gen(8))[:, :, None]  # (1,1,1,H,W): ky-kz sampling
    return Case(MultiCoilMRI(maps, mask.to(dtype)), (1, 1, 6, 10, 8), (1, 4, 6, 10, 8), True, True)


def _mri_batched_maps(dtype):
    m = torch.randn(2, 3, 8, 8, generator=_gen(9), dtype=torch.complex128).to(_cplx(dtype))
    mask = torch.rand(2, 1, 8, 8, generator=_gen(10), dtype=torch.float64).to(dtype)
    return Case(MultiCoilMRI(m, mask), (2, 1, 8, 8), (2, 3, 8, 8), True, True, batch_fixed=True)


def _spect_plain(dtype):
    op = SPECTProjector(torch.arange(0, 360, 45.0), 4.0, object_shape=(9, 9, 3), dtype=dtype)
    return Case(op, (2, 1, 9, 9, 3), (2, 1, 8, 9, 3))


def _spect_att_psf(dtype):
    mu = torch.rand(10, 8, 4, generator=_gen(11), dtype=torch.float64) * 0.2
    radii = 30.0 + 10 * torch.rand(7, generator=_gen(12), dtype=torch.float64)  # non-circular orbit
    op = SPECTProjector(torch.linspace(0, 300, 7), (4.0, 4.0, 5.0), mu, CollimatorPSF(3.0, 0.08), radii_mm=radii, view_chunk=3, dtype=dtype)
    return Case(op, (2, 1, 10, 8, 4), (2, 1, 7, 10, 4))


def _spect_att(dtype):
    mu = torch.full((8, 8, 2), 0.15, dtype=torch.float64)
    op = SPECTProjector(torch.arange(0, 180, 30.0), 5.0, mu, dtype=dtype)
    return Case(op, (2, 1, 8, 8, 2), (2, 1, 6, 8, 2))


def _spect_few_view(dtype):
    full = SPECTProjector(torch.arange(0, 360, 10.0), 4.0, torch.full((8, 8, 3), 0.1), (2.0, 0.05), radii_mm=40.0, dtype=dtype)
    op, _ = full.few_view(3)
    return Case(op, (1, 1, 8, 8, 3), (1, 1, 3, 8, 3))


def _ct2d(dtype):
    return Case(ParallelBeamCT(torch.arange(0, 180, 15.0), 13, (12, 10), dtype=dtype), (2, 1, 12, 10), (2, 1, 12, 13))


def _ct3d(dtype):
    op = ParallelBeamCT(torch.arange(0, 180, 20.0), 9, (8, 8), pixel_size=0.5, detector_spacing=0.7, num_slices=3, dtype=dtype)
    return Case(op, (2, 1, 8, 8, 3), (2, 1, 9, 9, 3))


def _compose(dtype):
    m = (torch.rand(1, 1, 8, 8, generator=_gen(13)) > 0.5).to(dtype)
    return Case(Mask(m) @ Blur(gaussian_kernel(1.0, dtype=dtype)), (2, 1, 8, 8), (2, 1, 8, 8))


def _sum_scaled(dtype):
    return Case(Blur(gaussian_kernel(0.8, dtype=dtype)) + 0.5 * Identity(), (2, 1, 7, 7), (2, 1, 7, 7), analytic_norm=1.5)


def _scaled_complex(dtype):
    maps = birdcage_maps(3, (8, 8), dtype=_cplx(dtype))
    return Case((0.5 - 2.0j) * MultiCoilMRI(maps, torch.ones(1, 1, 8, 8, dtype=dtype)), (2, 1, 8, 8), (2, 3, 8, 8), True, True,
                analytic_norm=abs(0.5 - 2.0j))


def _adjoint_spect(dtype):
    op = SPECTProjector(torch.arange(0, 360, 60.0), 4.0, torch.full((7, 7, 2), 0.1), dtype=dtype).H
    return Case(op, (2, 1, 6, 7, 2), (2, 1, 7, 7, 2))


def _real_mri(dtype):
    maps = birdcage_maps(4, (8, 6), dtype=_cplx(dtype))
    mask = random_lines_mask(6, 2, 2, generator=_gen(14)).to(dtype)
    op = ComplexToReal() @ MultiCoilMRI(maps, mask) @ RealToComplex()
    return Case(op, (2, 1, 8, 6), (2, 4, 8, 6, 2))


def _channels_mri(dtype):
    maps = birdcage_maps(3, (6, 8), dtype=_cplx(dtype))
    mask = random_lines_mask(8, 2, 2, generator=_gen(15)).to(dtype)
    return Case(ComplexToReal() @ MultiCoilMRI(maps, mask) @ ChannelsToComplex(), (2, 2, 6, 8), (2, 3, 6, 8, 2))  # real inner products at both ends


def _slices_spect(dtype):
    P = SPECTProjector(torch.arange(0, 360, 60.0), 4.0, torch.full((6, 6, 4), 0.1), (2.0, 0.05), radii_mm=30.0, dtype=dtype)
    return Case(P @ SlicesToVolume(4), (4, 1, 6, 6), (1, 1, 6, 6, 4), batch_fixed=True)


#: name → factory(dtype) → Case. Every LinearOperator exported by ``monai_diffrecon.physics`` appears here.
OPERATORS: dict[str, Callable[[torch.dtype], Case]] = {
    "identity": _identity,
    "mask": _mask,
    "mask_batch_weights": _mask_batch_weights,
    "blur_2d": _blur2d,
    "blur_batch_kernels": _blur_batch_kernels,
    "blur_3d": _blur3d,
    "kernel_blur": _kernel_blur,
    "blur_complex_image": _blur_complex,
    "decimate": _decimate,
    "downsample_gaussian": _downsample_gauss,
    "downsample_box_3d": _downsample_box3d,
    "mri_single_coil": _mri_single_coil,
    "mri_multicoil_2d": _mri_multicoil_2d,
    "mri_multicoil_full": _mri_multicoil_full,
    "mri_multicoil_3d": _mri_multicoil_3d,
    "mri_batched_maps": _mri_batched_maps,
    "spect_plain": _spect_plain,
    "spect_attenuation": _spect_att,
    "spect_attenuation_psf": _spect_att_psf,
    "spect_few_view": _spect_few_view,
    "ct_2d": _ct2d,
    "ct_slicewise_3d": _ct3d,
    "compose_mask_blur": _compose,
    "sum_blur_plus_scaled_identity": _sum_scaled,
    "scaled_complex_mri": _scaled_complex,
    "adjoint_of_spect": _adjoint_spect,
    "real_valued_mri": _real_mri,
    "channels_to_complex_mri": _channels_mri,
    "spect_on_slice_batch": _slices_spect,
}


def random_like_domain(shape, complex_: bool, dtype: torch.dtype, generator: torch.Generator) -> torch.Tensor:
    """Standard normal (complex normal if ``complex_``) tensor of ``shape`` in ``dtype``'s precision."""
    real = dtype.to_real() if dtype.is_complex else dtype
    t = torch.randn(shape, generator=generator, dtype=real)
    if complex_:
        t = torch.complex(t, torch.randn(shape, generator=generator, dtype=real))
    return t


def _inner(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.vdot(a.flatten(), b.flatten()) if (a.is_complex() or b.is_complex()) else (a * b).sum()


def adjoint_error(
    case: Case, dtype: torch.dtype = torch.float64, draws: int = 20, seed: int = 0, normalise: str = "norms"
) -> float:
    """Max over ``draws`` (x, y standard normal) of the adjoint mismatch ``|⟨A x, y⟩ − ⟨x, Aᴴ y⟩|`` divided by

    * ``normalise="norms"``: ``‖A x‖·‖y‖`` (scale-free; the bound of Cauchy–Schwarz), or
    * ``normalise="inner"``: ``|⟨A x, y⟩|`` (stricter: inflated when the random inner product happens to be small).
    """
    g = _gen(seed)
    worst = 0.0
    for _ in range(draws):
        x = random_like_domain(case.x_shape, case.x_complex, dtype, g)
        y = random_like_domain(case.y_shape, case.y_complex, dtype, g)
        ax = case.op(x)
        a = _inner(ax, y)
        b = _inner(x, case.op.adjoint(y))
        den = abs(a) if normalise == "inner" else ax.norm() * y.norm()
        worst = max(worst, float(abs(a - b) / den))
    return worst


def linearity_error(case: Case, dtype: torch.dtype = torch.float64, seed: int = 1) -> float:
    g = _gen(seed)
    x1 = random_like_domain(case.x_shape, case.x_complex, dtype, g)
    x2 = random_like_domain(case.x_shape, case.x_complex, dtype, g)
    a, b = (0.7 - 0.3j, 1.9 + 0.2j) if case.x_complex else (0.7, -1.9)
    lhs = case.op(a * x1 + b * x2)
    rhs = a * case.op(x1) + b * case.op(x2)
    return float((lhs - rhs).abs().max() / rhs.abs().max())


def normal_error(case: Case, dtype: torch.dtype = torch.float64, seed: int = 2) -> float:
    x = random_like_domain(case.x_shape, case.x_complex, dtype, _gen(seed))
    ref = case.op.adjoint(case.op(x))
    return float((case.op.normal(x) - ref).abs().max() / ref.abs().max())


def prox_gradient_error(case: Case, gamma: float = 0.37, dtype: torch.dtype = torch.float64, seed: int = 3) -> float:
    """Relative gradient norm of ``½‖Ax − y‖² + ‖x − z‖²/(2γ)`` at ``x = prox_l2(z, y, γ)``."""
    g = _gen(seed)
    z = random_like_domain(case.x_shape, case.x_complex, dtype, g)
    y = random_like_domain(case.y_shape, case.y_complex, dtype, g)
    x = case.op.prox_l2(z, y, gamma, tol=1e-12, max_iter=1000)
    grad = case.op.adjoint(case.op(x) - y) + (x - z) / gamma
    scale = case.op.adjoint(y).norm() + z.norm() / gamma
    return float(grad.norm() / scale)


def explicit_matrix(case: Case, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Dense matrix of the operator restricted to batch 1 (columns = images of basis vectors)."""
    x_shape = (1,) + tuple(case.x_shape[1:]) if not case.batch_fixed else tuple(case.x_shape)
    n = math.prod(x_shape)
    cd = dtype.to_complex() if case.x_complex else dtype
    cols = []
    eye = torch.eye(n, dtype=cd)
    for i in range(0, n, 256):
        xb = eye[i : i + 256].reshape(-1, *x_shape[1:]) if not case.batch_fixed else None
        if case.batch_fixed:
            for j in range(i, min(n, i + 256)):
                cols.append(case.op(eye[j].reshape(x_shape)).reshape(-1))
        else:
            cols.extend(case.op(xb).reshape(xb.shape[0], -1).unbind(0))
    return torch.stack(cols, dim=1)


def quick_bench(repeats: int = 5) -> str:
    """``diffrecon bench``: for every registered operator, the float64 adjoint mismatch, the prox gradient and the
    mean forward + adjoint time on this machine (a Markdown table). Peer-library speed ratios need the benchmark
    environment (``make bench`` → benchmarks/results/operators.md)."""
    import time

    lines = ["| operator | adjoint err (f64) | prox grad err | forward + adjoint (ms) |", "|---|---|---|---|"]
    worst = 0.0
    for name, factory in OPERATORS.items():
        case = factory(torch.float64)
        adj = adjoint_error(case)
        prox = prox_gradient_error(case)
        worst = max(worst, adj)
        c32 = factory(torch.float32)
        x = random_like_domain(c32.x_shape, c32.x_complex, torch.float32, _gen(5))
        with torch.no_grad():
            c32.op.adjoint(c32.op(x))
            t = time.perf_counter()
            for _ in range(repeats):
                c32.op.adjoint(c32.op(x))
        ms = (time.perf_counter() - t) / repeats * 1e3
        lines.append(f"| {name} | {adj:.1e} | {prox:.1e} | {ms:.2f} |")
    verdict = "PASS" if worst <= 1e-12 else "FAIL"
    lines += ["", f"{len(OPERATORS)} operators, worst float64 adjoint mismatch {worst:.1e} ({verdict}; bound 1e-12). "
              f"torch {torch.__version__}, {torch.get_num_threads()} threads. Speed ratios vs deepinv/PyTomography: `make bench`."]
    return "\n".join(lines)
