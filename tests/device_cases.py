"""Tiny runs of every sampler, registered operator and classical reconstruction, shared by ``tests/test_device.py``.

Each entry of :data:`CASES` is ``setup() -> run`` where ``setup`` builds the inputs, operators and priors (on the
CPU, seeded) and ``run() -> {name: tensor}`` does the work. The test runs ``run`` inside a mode that records every
tensor factory call made without an explicit device, and compares the outputs bit for bit with
``tests/device_reference.pt`` — recorded on the CPU before the device audit of issue 20 (regenerate only on purpose:
``OMP_NUM_THREADS=1 .venv/bin/python -m tests.device_cases --write``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import torch

REFERENCE = Path(__file__).with_name("device_reference.pt")

CASES: dict[str, Callable[[], Callable[[], dict]]] = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _wake(net: torch.nn.Module, seed: int) -> torch.nn.Module:
    """MONAI zero-initialises output and attention projections; give them small seeded weights so the network's
    output depends on its input (a zero output would make the comparison vacuous)."""
    g = _g(seed)
    with torch.no_grad():
        for p in net.parameters():
            if not p.any():
                p.copy_(0.02 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return net.eval()


def _out(o) -> dict:
    d = {"x": o.x, "mean": o.mean, "std": o.std, "nfe": torch.tensor(o.nfe)}
    d.update({f"extras.{k}": v for k, v in o.extras.items()})
    return d


def _gauss_prior(mean=0.3, std=0.8):
    from monai_diffrecon.diffusion import DiffusionPrior, GaussianEpsilon, make_scheduler

    sch = make_scheduler()
    return DiffusionPrior(GaussianEpsilon(sch.alphas_cumprod, mean, std), sch).double()


def _blur_problem(seed=0, n=8, batch=2):
    from monai_diffrecon.physics import Blur, gaussian_kernel

    g = _g(seed)
    op = Blur(gaussian_kernel(0.8, size=3, dtype=torch.float64))
    x = 0.3 + 0.8 * torch.randn(batch, 1, n, n, generator=g, dtype=torch.float64)
    y = op(x) + 0.05 * torch.randn(x.shape, generator=g, dtype=torch.float64)
    return op, y


def _mask_problem(seed=0, n=8, batch=2):
    from monai_diffrecon.physics import Mask

    g = _g(seed)
    op = Mask((torch.rand(1, 1, n, n, generator=g) > 0.5).double())
    x = 0.3 + 0.8 * torch.randn(batch, 1, n, n, generator=g, dtype=torch.float64)
    return op, op(x) + 0.01 * torch.randn(x.shape, generator=g, dtype=torch.float64)


def _sample(sampler, y, op, seed=1, n=2):
    return lambda: _out(sampler(y, op, generator=_g(seed), num_samples=n, progress=False))


# ----------------------------------------------------------------------------------------------------- samplers
@case
def unconditional():
    from monai_diffrecon.samplers import Unconditional

    return _sample(Unconditional(_gauss_prior(), (2, 1, 4, 4), num_steps=6), None, None)


@case
def conditional():
    from torch import nn

    from monai_diffrecon.diffusion import DiffusionPrior, GaussianEpsilon, make_scheduler
    from monai_diffrecon.samplers import Conditional

    class CondEps(nn.Module):  # ε of x (first channel) shifted by the condition: an analytic conditional network
        def __init__(self, ac):
            super().__init__()
            self.eps = GaussianEpsilon(ac, 0.2, 0.5)

        def forward(self, inp, timesteps):
            return self.eps(inp[:, :1] - 0.1 * inp[:, 1:], timesteps)

    sch = make_scheduler()
    prior = DiffusionPrior(CondEps(sch.alphas_cumprod), sch).double()
    _, y = _blur_problem(2)
    return _sample(Conditional(prior, 1, num_steps=5, eta=0.5, clip=(-2.0, 2.0)), y, None)


@case
def dps():
    from monai_diffrecon.samplers import DPS

    op, y = _blur_problem(3)
    return _sample(DPS(_gauss_prior(), num_steps=6, zeta=0.5, clip=(-3.0, 3.0)), y, op)


@case
def ddnm():
    from monai_diffrecon.samplers import DDNM

    op, y = _mask_problem(4)
    return _sample(DDNM(_gauss_prior(), num_steps=6), y, op)


@case
def ddnm_plus():
    from monai_diffrecon.samplers import DDNM

    op, y = _blur_problem(5)
    return _sample(DDNM(_gauss_prior(), num_steps=5, sigma_y=0.05), y, op)


@case
def diffpir():
    from monai_diffrecon.samplers import DiffPIR

    op, y = _blur_problem(6)
    return _sample(DiffPIR(_gauss_prior(), num_steps=6, lam=1.0, zeta=0.5, sigma_y=0.05, spacing="quad"), y, op)


@case
def pnpdm():
    from monai_diffrecon.samplers import PnPDM

    op, y = _blur_problem(7)
    return _sample(PnPDM(_gauss_prior(), sigma_y=0.05, num_iters=4, burn_in=2, rho0=1.0, rho_min=0.1, prior_steps=20,
                         prior_spacing="uniform"), y, op)


@case
def score_pnp():
    from monai_diffrecon.samplers import ScorePnP

    op, y = _blur_problem(8)
    prior = _gauss_prior()
    smp = {a: ScorePnP(prior, a, num_iters=4, sigma_y=0.05, sigma_start=0.5, sigma_end=0.01, lam=0.27) for a in ("admm", "hqs", "red", "pgm")}
    return lambda: {f"{a}.{k}": v for a, s in smp.items() for k, v in _out(s(y, op, generator=_g(1), progress=False)).items()}


@case
def msm():
    from monai_diffrecon.physics import MultiCoilMRI, birdcage_maps, random_lines_mask
    from monai_diffrecon.physics.functional.sense import sense_expand
    from monai_diffrecon.samplers import MSMSampler

    prior = _gauss_prior(0.0, 0.5).float()
    g = _g(9)
    maps = birdcage_maps(3, (8, 8))
    mask = random_lines_mask(8, 2, 2, generator=g)
    x = 0.5 * torch.complex(torch.randn(1, 1, 8, 8, generator=g), torch.randn(1, 1, 8, 8, generator=g))
    op = MultiCoilMRI(maps, mask)
    y = sense_expand(x, maps, mask)
    noise = MSMSampler(prior, num_steps=3, loops=2, acceleration=2, center_lines=2, clip=2.0)
    warm = MSMSampler(prior, num_steps=3, loops=2, acceleration=2, center_lines=2, t_start=400, init_iters=3)

    def run():
        with torch.no_grad():
            a, b = _out(noise(y, op, generator=_g(1), progress=False)), _out(warm(y, op, generator=_g(2), progress=False))
        return {**{f"noise.{k}": v for k, v in a.items()}, **{f"warm.{k}": v for k, v in b.items()}}

    return run


@case
def blind_pnpdm():
    from monai_diffrecon.diffusion import DiffusionPrior, GaussianEpsilon, make_scheduler
    from monai_diffrecon.physics import Blur, gaussian_kernel
    from monai_diffrecon.samplers import BlindPnPDM

    sch = make_scheduler()
    g = _g(10)
    k_true = gaussian_kernel(1.0, 5, dtype=torch.float64)
    truth = 0.5 + 0.3 * torch.randn(1, 1, 12, 12, generator=g, dtype=torch.float64)
    y = Blur(k_true)(truth) + 0.01 * torch.randn(truth.shape, generator=g, dtype=torch.float64)
    delta = torch.zeros(5, 5, dtype=torch.float64)
    delta[2, 2] = 1.0
    smp = BlindPnPDM(_gauss_prior(0.5, 0.3), DiffusionPrior(GaussianEpsilon(sch.alphas_cumprod, 2 * k_true / k_true.max() - 1, 0.05), sch),
                     kernel_size=(5, 5), kernel_scale="max", num_iters=3, burn_in=1, prior_steps=8, cg_iters=5, kernel_threshold=0.05)
    return _sample(smp, y, Blur(delta), n=1)


@case
def reld():
    from monai_diffrecon.physics import Downsample
    from monai_diffrecon.samplers import RELD

    op, y = _blur_problem(11)
    g = _g(12)
    ds = Downsample(2).double()
    yd = ds(torch.rand(1, 1, 8, 8, generator=g, dtype=torch.float64))
    prior = _gauss_prior(0.4, 0.3)
    a, b = RELD(prior, num_iters=4, beta=2.0, step=0.2, lam=0.5), RELD(prior, num_iters=3, output="image", lam=0.5)
    return lambda: {**{f"blur.{k}": v for k, v in _out(a(y, op, generator=_g(1), progress=False)).items()},
                    **{f"sr.{k}": v for k, v in _out(b(yd, ds, generator=_g(1), progress=False)).items()}}


def _mri_data(seed, n=16, coils=2):
    from monai_diffrecon.physics import MultiCoilMRI, birdcage_maps, equispaced_mask
    from monai_diffrecon.physics.functional.sense import sense_expand

    g = _g(seed)
    maps = birdcage_maps(coils, (n, n))
    mask = equispaced_mask(n, 2, 4)
    x = 0.5 * torch.complex(torch.randn(1, 1, n, n, generator=g), torch.randn(1, 1, n, n, generator=g))
    return MultiCoilMRI(maps, mask), sense_expand(x, maps, mask)


@case
def selfdb():
    from monai_diffrecon.networks import diffusion_unet
    from monai_diffrecon.modalities.mri import SelfDBPrior
    from monai_diffrecon.samplers import SelfDBSampler

    torch.manual_seed(0)
    net = _wake(diffusion_unet(2, 2, size="tiny"), 13)
    op, y = _mri_data(14)
    smp = SelfDBSampler(SelfDBPrior(net), num_steps=2, sigma_max=0.05)

    def run():
        with torch.no_grad():
            return _out(smp(y, op, generator=_g(1), num_samples=2, progress=False))

    return run


@case
def dbcr():
    from monai_diffrecon.networks import dbcr_network
    from monai_diffrecon.modalities.satellite import DBCRPrior
    from monai_diffrecon.samplers import DBCR

    torch.manual_seed(0)
    net = _wake(dbcr_network(size="tiny"), 15)
    g = _g(16)
    y = torch.rand(1, 6, 16, 16, generator=g)
    smp = DBCR(DBCRPrior(net), num_steps=2)

    def run():
        with torch.no_grad():
            return _out(smp(y, None, generator=_g(1), num_samples=2, progress=False))

    return run


def _spect_problem(seed=17, psf=True):
    from monai_diffrecon.physics import SPECTProjector

    g = _g(seed)
    mu = 0.1 + 0.05 * torch.rand(16, 16, 4, generator=g, dtype=torch.float64)
    P = SPECTProjector(torch.arange(0, 360, 45.0), 8.0, mu, (2.0, 0.05) if psf else None, radii_mm=80.0 if psf else None)
    x = torch.rand(1, 1, 16, 16, 4, generator=g)
    y = torch.poisson(50 * P(x), generator=g)
    return P, y


@case
def spect25d():
    from monai_diffrecon.diffusion import DiffusionPrior, make_scheduler
    from monai_diffrecon.networks import diffusion_unet
    from monai_diffrecon.samplers import SPECT25D

    torch.manual_seed(0)
    prior = DiffusionPrior(_wake(diffusion_unet(2, 1, cond_channels=4, size="tiny"), 18), make_scheduler())
    P, y = _spect_problem()
    noise = SPECT25D(prior, num_steps=2, init_iterations=2, init_subsets=4)
    warm = SPECT25D(prior, num_steps=2, init_iterations=1, init_subsets=2, t_start=50, prox_lam=0.5, tv_3d=True, zeta=0.3)

    def run():
        with torch.no_grad():
            a, b = _out(noise(y, P, generator=_g(1), num_samples=2, progress=False)), _out(warm(y, P, generator=_g(2), progress=False))
        return {**{f"noise.{k}": v for k, v in a.items()}, **{f"warm.{k}": v for k, v in b.items()}}

    return run


@case
def diff_unfolding():
    from monai_diffrecon.diffusion import make_scheduler
    from monai_diffrecon.networks import unfolded_denoiser
    from monai_diffrecon.samplers import DiffUnfolding

    torch.manual_seed(0)
    blur_net = _wake(unfolded_denoiser(make_scheduler().alphas_cumprod, channels=1, num_unroll=2, size="tiny", sigma_y=0.05), 19)
    mri_net = _wake(unfolded_denoiser(make_scheduler().alphas_cumprod, channels=2, num_unroll=2, size="tiny", sigma_y=0.05), 20)
    op, y = _blur_problem(21, n=16, batch=1)
    op, y = op.float(), y.float()
    mop, my = _mri_data(22)
    a, b = DiffUnfolding(blur_net, num_steps=2, eta=0.5), DiffUnfolding(mri_net, num_steps=2)

    def run():
        with torch.no_grad():
            return {**{f"blur.{k}": v for k, v in _out(a(y, op, generator=_g(1), progress=False)).items()},
                    **{f"mri.{k}": v for k, v in _out(b(my, mop, generator=_g(1), progress=False)).items()}}

    return run


# ------------------------------------------------------------------------------------------------ operators
@case
def operators():
    """Every registered operator (float64): forward, adjoint, prox (closed form or CG), pinv and norm."""
    from monai_diffrecon.physics.testing import OPERATORS, random_like_domain

    cases = {name: f(torch.float64) for name, f in OPERATORS.items()}
    g = _g(23)
    data = {n: (random_like_domain(c.x_shape, c.x_complex, torch.float64, g), random_like_domain(c.y_shape, c.y_complex, torch.float64, g))
            for n, c in cases.items()}

    def run():
        out = {}
        for n, c in cases.items():
            x, y = data[n]
            out[f"{n}.fwd"], out[f"{n}.adj"] = c.op(x), c.op.adjoint(y)
            out[f"{n}.prox"] = c.op.prox_l2(x, y, 0.37, max_iter=8)
            out[f"{n}.pinv"] = c.op.pinv(y, max_iter=8)
            out[f"{n}.norm"] = torch.tensor(c.op.norm(c.x_shape, max_iter=6))
        return out

    return run


@case
def noise_and_masks():
    from monai_diffrecon.physics import (
        GaussianNoise,
        PoissonNoise,
        equispaced_mask,
        poisson_disc_mask,
        random_lines_mask,
    )

    y = torch.rand(2, 3, 6, 5, generator=_g(24), dtype=torch.float64)
    yc = torch.complex(y, -y)

    def run():
        g = _g(25)
        return {"gauss": GaussianNoise(0.1)(y, generator=g), "gauss_complex": GaussianNoise(0.2)(yc, generator=g),
                "poisson": PoissonNoise(20.0)(y, generator=g), "lines": random_lines_mask(24, 4, 4, generator=g),
                "equi": equispaced_mask(24, 4, 4, offset=1), "equi_match": equispaced_mask(64, 4, 8, match_acceleration=True),
                "pd": poisson_disc_mask((16, 12), 3, (4, 4), generator=g)}

    return run


# ---------------------------------------------------------------------------------------- classical recons
@case
def recon():
    from monai_diffrecon.physics import ParallelBeamCT
    from monai_diffrecon.recon import cg_sense, fbp, mlem, osem

    P, y = _spect_problem(26)
    ct = ParallelBeamCT(torch.arange(0, 180, 12.0), 12, (10, 10))
    sino = ct(torch.rand(2, 1, 10, 10, generator=_g(27)))
    mop, my = _mri_data(28, coils=3)
    return lambda: {"osem": osem(P, y, 2, 4), "osem_x0_additive": osem(P, y, 1, 2, x0=torch.full((1, 1, 16, 16, 4), 2.0, device=y.device), additive=0.1 + 0 * y),
                    "mlem": mlem(P, y, 2), "fbp": fbp(ct, sino), "fbp_hann": fbp(ct, sino, "hann"), "cg_sense": cg_sense(mop, my, 0.01, 5)}


@case
def tv():
    from monai_diffrecon.regularizers.tv import tv_norm, tv_prox, tv_prox_exact

    v = torch.rand(2, 1, 6, 5, 4, generator=_g(29), dtype=torch.float64)
    return lambda: {"aniso": tv_prox(v, 0.05), "iso_circ": tv_prox(v, 0.05, isotropic=True, boundary="circular"),
                    "z": tv_prox(v, torch.full((2, 1, 1, 1, 1), 0.02, dtype=torch.float64, device=v.device), dims=(-1,)),
                    "exact": tv_prox_exact(v, 0.05, max_iter=5), "norm": tv_norm(v, isotropic=True)}


@case
def metrics_and_transforms():
    from monai_diffrecon.metrics.shift import denoiser_from_prior, kl_from_denoisers
    from monai_diffrecon.physics import Blur, gaussian_kernel
    from monai_diffrecon.transforms.array import SimulateMeasurement, Stack25D, UndersampleKSpace

    p, q = _gauss_prior(0.3, 0.8), _gauss_prior(0.2, 0.7)
    g = _g(30)
    samples = 0.3 + 0.8 * torch.randn(3, 1, 4, 4, generator=g, dtype=torch.float64)
    masks = (torch.rand(3, 1, 4, 4, generator=g) > 0.3).double()
    masks[0] = 1.0
    vol = torch.rand(1, 6, 5, 4, generator=g)
    k = torch.complex(torch.randn(2, 8, 8, generator=g), torch.randn(2, 8, 8, generator=g))
    sm = SimulateMeasurement(Blur(gaussian_kernel(1.0, 3)))

    def run():
        sigmas = torch.tensor([0.05, 0.2, 0.8], dtype=torch.float64)
        img = kl_from_denoisers(denoiser_from_prior(p), denoiser_from_prior(q), samples, sigmas, generator=_g(31))
        meas = kl_from_denoisers(denoiser_from_prior(p), denoiser_from_prior(q), samples, sigmas, masks, generator=_g(32))
        us = UndersampleKSpace(4, 2, noise_sigma=0.1)
        us.set_random_state(33)
        return {"kl_image": img.integrand, "kl_meas": meas.integrand, "stack25d": Stack25D(1)(vol), "undersample": us(k),
                "undersample_mask": us.mask, "simulate": sm(vol[:, :, :, 0])}

    return run


# ----------------------------------------------------------------------------- simulators and training draws
@case
def simulators():
    from monai_diffrecon.data.cardiac_views import cardiac_views
    from monai_diffrecon.data.mri_sim import mr_phantom, simulate_multicoil, smooth_field
    from monai_diffrecon.data.natural import motion_blur_kernel, random_patches
    from monai_diffrecon.data.satellite_sim import satellite_scene
    from monai_diffrecon.data.spect_phantom import cardiac_phantom
    from monai_diffrecon.data.spect_study import few_view_indices, thin_counts

    def run():
        out = {"field": smooth_field((8, 8), 3, 0.5, _g(40)), "phantom": mr_phantom(16, _g(41))}
        for kind in ("random", "poisson", "equispaced"):
            smp = simulate_multicoil(mr_phantom(16, _g(42))[None], 2, 2.0, 4, kind, 0.01, _g(43))
            out.update({f"mc_{kind}.kspace": smp.kspace, f"mc_{kind}.mask": smp.mask})
        out.update({f"sat.{k}": v for k, v in satellite_scene(16, _g(44)).items() if torch.is_tensor(v)})
        ph = cardiac_phantom((24, 24, 16), 16.0, True, _g(45), family="v1")  # the recorded (issue 8) family
        out.update({f"heart.{k}": v for k, v in ph.items() if torch.is_tensor(v)})
        out.update({f"views.{k}": v for k, v in cardiac_views(ph["activity"]).items()})
        out["patches"] = random_patches([torch.rand(1, 20, 18, generator=_g(46))], 8, 3, _g(47))
        out["motion"] = motion_blur_kernel(9, 0.5, _g(48), steps=60)
        out["thin"] = thin_counts(torch.poisson(20 * torch.rand(1, 1, 4, 5, 3, generator=_g(49)), generator=_g(50)), 0.3, _g(51))
        out["few"] = few_view_indices(30, 7)
        return out

    return run


@case
def training_losses():
    import tempfile

    from monai_diffrecon.diffusion import make_scheduler
    from monai_diffrecon.networks import DnCNN, dbcr_network, diffusion_unet, unfolded_denoiser
    from monai_diffrecon.physics import birdcage_maps, gaussian_kernel, random_lines_mask
    from monai_diffrecon.physics.functional.sense import sense_expand
    from monai_diffrecon.training import DSMConfig
    from monai_diffrecon.training.align import AlignConfig, align_prior, masked_eps_loss
    from monai_diffrecon.training.dbcr import BridgeTrainer, SceneSampler
    from monai_diffrecon.training.denoiser import GaussianDenoiserTrainer
    from monai_diffrecon.training.dsm import DenoisingScoreTrainer, TensorSampler
    from monai_diffrecon.training.msm import KSpaceSampler, MSMTrainer
    from monai_diffrecon.training.selfdb import SelfDBTrainer
    from monai_diffrecon.training.unfolding import BlurOperatorSampler, MRIOperatorSampler, UnfoldingTrainer

    out_dir = Path(tempfile.gettempdir()) / "device_cases_not_written"
    cfg = DSMConfig(seed=3)
    sch = make_scheduler()
    g = _g(60)
    torch.manual_seed(0)
    imgs, cond = torch.rand(5, 1, 8, 8, generator=g), torch.rand(5, 2, 8, 8, generator=g)
    maps = birdcage_maps(2, (8, 8))
    x = torch.complex(torch.randn(4, 1, 8, 8, generator=g), torch.randn(4, 1, 8, 8, generator=g))
    masks = torch.stack([random_lines_mask(8, 2, 2, generator=g)[0] for _ in range(4)])
    ks = KSpaceSampler(sense_expand(x, maps, masks), masks, maps)
    clear = torch.rand(3, 4, 16, 16, generator=g)
    scenes = SceneSampler(clear, clear.flip(-1), torch.randn(3, 2, 16, 16, generator=g), crop=8)
    blur = BlurOperatorSampler(imgs, torch.stack([gaussian_kernel(s, 3) for s in (0.6, 1.0)]), sigma=(0.01, 0.02))
    mri = MRIOperatorSampler(x, maps, (2, 3), ("random", "equispaced"), (2, 2))
    trainers = {
        "dsm": DenoisingScoreTrainer(_wake(diffusion_unet(2, 1, cond_channels=2, size="tiny"), 61), sch, TensorSampler(imgs, cond, True), out_dir, cfg,
                                     progress=False),
        "msm": MSMTrainer(_wake(diffusion_unet(2, 2, size="tiny"), 62), sch, ks, out_dir, cfg, progress=False, eta=0.05, sure_batch=1),
        "msm0": MSMTrainer(_wake(diffusion_unet(2, 2, size="tiny"), 62), sch, ks, out_dir, cfg, progress=False),
        "selfdb": SelfDBTrainer(_wake(diffusion_unet(2, 2, size="tiny"), 63), sch, ks, out_dir, cfg, progress=False, center_lines=2),
        "bridge": BridgeTrainer(_wake(dbcr_network(size="tiny"), 64), sch, scenes, out_dir, cfg, progress=False),
        "denoiser": GaussianDenoiserTrainer(DnCNN(1, 3, 8), None, TensorSampler(imgs), out_dir, cfg, progress=False),
        "unfold_blur": UnfoldingTrainer(_wake(unfolded_denoiser(sch.alphas_cumprod, 1, num_unroll=1, size="tiny"), 65), sch, blur, out_dir, cfg,
                                        progress=False),
        "unfold_mri": UnfoldingTrainer(_wake(unfolded_denoiser(sch.alphas_cumprod, 2, num_unroll=1, size="tiny"), 66), sch, mri, out_dir, cfg,
                                       progress=False),
    }
    align_net = _wake(diffusion_unet(2, 1, size="tiny"), 67)
    meas, mmask = torch.rand(4, 1, 8, 8, generator=g), (torch.rand(4, 1, 8, 8, generator=g) > 0.3).float()

    def run():
        out = {}
        for name, tr in trainers.items():
            gen = _g(70)
            batch = tr.batches(gen, 2)
            out.update({f"{name}.batch.{k}": v for k, v in batch.items() if torch.is_tensor(v)})
            out[f"{name}.loss"] = tr.loss(batch, gen).detach()
        out["masked_eps"] = masked_eps_loss(align_net, meas, mmask, sch.alphas_cumprod, _g(71)).detach()
        res = align_prior(align_net, sch, meas, mmask, AlignConfig(max_epochs=1, batch_size=2))
        out["align_curve"] = torch.tensor(res["val_curve"])
        return out

    return run


@case
def cohorts():
    from monai_diffrecon.data.mri_sim import mr_phantom
    from monai_diffrecon.training.mri_cohort import mri_acquisition
    from monai_diffrecon.training.selfdb import subsample_lines
    from monai_diffrecon.training.spect_cohort import simulate_volume
    from monai_diffrecon.training.unfolding import _pick

    def run():
        out = {}
        for mode in ("lowdose", "fewview", None):
            v = simulate_volume(5, size=16, voxel_mm=24.0, views=12, mode=mode, init_iterations=1, init_subsets=2)
            out.update({f"spect_{mode}.{k}": v[k] for k in ("cond", "target", "counts", "x_init")})
        acq = mri_acquisition(mr_phantom(32, _g(80)), 3, 2.0, 16, 2, 0.01, 16)
        out.update({f"mri.{k}": v for k, v in acq.items() if torch.is_tensor(v)})
        out["subsample"] = subsample_lines(torch.ones(3, 1, 1, 12), 0.5, 2, _g(81))
        out["pick"] = torch.tensor(_pick([3, 5, 7, 9], _g(82)))
        return out

    return run


#: cases whose data stay on the CPU by design (simulators writing files, trainers drawing batches on the CPU)
CPU_ONLY = ("simulators", "training_losses", "cohorts")


def move_to(run: Callable, device) -> Callable:
    """Move everything a case's ``run`` closure holds — tensors, modules (operators, priors, samplers), and the
    containers and plain objects around them — to ``device``, in place; returns ``run``. Generators stay on the CPU,
    so the draws are those of the CPU reference (``benchmarks/gpu_check.py`` compares a GPU run with it)."""
    seen: set[int] = set()

    def mv(obj):
        if isinstance(obj, torch.Tensor):
            return obj.to(device)
        if id(obj) in seen or isinstance(obj, (str, bytes, int, float, complex, bool, type(None), torch.Generator)):
            return obj
        seen.add(id(obj))
        if isinstance(obj, torch.nn.Module):
            return obj.to(device)
        if isinstance(obj, dict):
            for k in list(obj):
                obj[k] = mv(obj[k])
            return obj
        if isinstance(obj, list):
            obj[:] = [mv(v) for v in obj]
            return obj
        if isinstance(obj, tuple):
            return type(obj)(*[mv(v) for v in obj]) if hasattr(obj, "_fields") else tuple(mv(v) for v in obj)
        if callable(obj) and getattr(obj, "__closure__", None):
            for cell in obj.__closure__:
                cell.cell_contents = mv(cell.cell_contents)
            return obj
        if hasattr(obj, "__dict__") and type(obj).__module__.startswith(("monai_diffrecon", "tests")):
            for k, v in vars(obj).items():
                setattr(obj, k, mv(v))
        return obj

    return mv(run)


def record() -> dict:
    torch.set_num_threads(1)
    return {name: setup()() for name, setup in CASES.items()}


if __name__ == "__main__":
    if "--write" not in sys.argv:
        sys.exit("usage: python -m tests.device_cases --write   (overwrites tests/device_reference.pt)")
    ref = record()
    ref["_platform"] = {"torch": str(torch.__version__), "cpu": torch.backends.cpu.get_cpu_capability()}
    torch.save(ref, REFERENCE)
    print(f"wrote {REFERENCE} ({REFERENCE.stat().st_size / 1e3:.0f} kB, {len(CASES)} cases)")
