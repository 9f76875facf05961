"""Training-progress diagnostics for the MRI priors on the validation slices (quoted in the issue notes while the
weights train; the evaluation proper is benchmarks/mri.py).

Usage:
    .venv/bin/python benchmarks/mri_diagnostics.py --cohort-dir /tmp/mri_cohort --msm W.pt [--selfdb W.pt]

* MSM: measured-domain relative x̂₀ error ``‖S F S x̂₀ − s‖² / ‖s‖²`` of one partial denoising at t = 50, 200, 500, 800
  (one training-distribution mask per t, the validation slices' fully sampled k-space as s) — how far each noise level
  is from usable (≥ 1 is worse than predicting zero); and validation PSNR of the MSM sampler from a SENSE warm start at
  t₀ = 300 / 150 (15 / 8 steps × 3 loops).
* SelfDB: validation PSNR for 1, 4, 8 bridge steps with acquired / full k-space support.
* Oracle (``--oracle W.pt``, the clean-image prior of DPS/DDNM): relative x̂₀ error ``‖x̂₀ − x‖/‖x‖`` at t = 50, 200,
  500, 800 on the validation slices' ESPIRiT-combined images (the prior's own phase convention) and on 4 of its
  training images.
Zero-filled and SENSE-CG (20 iterations) are printed for reference.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from monai_diffrecon.diffusion import DiffusionPrior, make_scheduler
from monai_diffrecon.networks import diffusion_unet
from monai_diffrecon.physics import MultiCoilMRI
from monai_diffrecon.physics.functional.sense import channels_to_complex, complex_randn, complex_to_channels, sense_combine, sense_expand
from monai_diffrecon.recon.cg import cg_sense
from monai_diffrecon.modalities.mri import SelfDBPrior
from monai_diffrecon.samplers import MSMSampler, SelfDBSampler
from monai_diffrecon.samplers.msm import draw_training_mask
from monai_diffrecon.training.mri_cohort import cached_mri_cohort
from monai_diffrecon.workflows.mri import magnitude_metrics


def _net(path: str):
    net = diffusion_unet(2, 2, size="small")
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return net.eval().requires_grad_(False)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cohort-dir", required=True)
    ap.add_argument("--msm", default=None)
    ap.add_argument("--selfdb", default=None)
    ap.add_argument("--oracle", default=None)
    ap.add_argument("--n-val", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    d = cached_mri_cohort(Path(a.cohort_dir) / f"mri_val_{a.n_val}.pt", a.n_val, "val")
    n = d["kspace"].shape[0]
    ops = [MultiCoilMRI(d["maps"][i:i + 1], d["mask"][i:i + 1]) for i in range(n)]

    def val_psnr(fn):
        return round(float(np.mean([magnitude_metrics(fn(i)[:, 0], d["truth"][i:i + 1])["psnr"] for i in range(n)])), 2)

    print("zero-filled", val_psnr(lambda i: sense_combine(d["kspace"][i:i + 1], d["maps"][i:i + 1])))
    print("SENSE-CG 20", val_psnr(lambda i: cg_sense(ops[i], d["kspace"][i:i + 1], 0.0, 20)))
    if a.msm:
        p = DiffusionPrior(_net(a.msm), make_scheduler())
        full, maps, errs = d["kspace_full"], d["maps"], []
        for t in (50, 200, 500, 800):
            g = torch.Generator().manual_seed(t)
            al = p.alpha_bar(t, full.real)
            S = draw_training_mask(full.shape[-1], 4, 20, g)
            s = S * full
            s_t = S * (al.sqrt() * s + (1 - al).sqrt() * complex_randn(s.shape, g))
            u = sense_combine(s_t, maps, S)
            with torch.no_grad():
                x0 = (u - (1 - al).sqrt() * channels_to_complex(p.eps(complex_to_channels(u), t))) / al.sqrt()
            errs.append(f"t={t}: {float((sense_expand(x0, maps, S) - s).abs().pow(2).sum() / s.abs().pow(2).sum()):.3g}")
        print("MSM measured-domain relative x0 error:", ", ".join(errs))
        for t0, steps in ((300, 15), (150, 8)):
            with torch.no_grad():
                r = val_psnr(lambda i: MSMSampler(p, steps, 3, t_start=t0)(d["kspace"][i:i + 1], ops[i], generator=torch.Generator().manual_seed(0),
                                                                         progress=False).mean)
            print(f"MSM warm start t0={t0} ({steps} steps x 3 loops): {r} dB")
    if a.selfdb:
        net = _net(a.selfdb)
        for k in (1, 4, 8):
            for sup in ("acquired", "full"):
                with torch.no_grad():
                    r = val_psnr(lambda i: SelfDBSampler(SelfDBPrior(net), k, support=sup)(d["kspace"][i:i + 1], ops[i], generator=torch.Generator().manual_seed(0),
                                                                             progress=False).mean)
                print(f"SelfDB {k} step(s), {sup} support: {r} dB")

    if a.oracle:
        prior = DiffusionPrior(_net(a.oracle), make_scheduler())
        ac = prior.scheduler.alphas_cumprod
        sets = {"validation": complex_to_channels(sense_combine(d["kspace_full"], d["maps"])).float(),
                "training": complex_to_channels(cached_mri_cohort(Path(a.cohort_dir) / "mri_clean.pt", 600, "clean")["images"][:4]).float()}
        for name, x in sets.items():
            g = torch.Generator().manual_seed(0)
            errs = []
            for t in (50, 200, 500, 800):
                at = ac[t]
                xt = at.sqrt() * x + (1 - at).sqrt() * torch.randn(x.shape, generator=g)
                with torch.no_grad():
                    x0 = prior.x0(xt, torch.full((x.shape[0],), t))
                errs.append(f"t={t}: {float((x0 - x).norm() / x.norm()):.3g}")
            print(f"oracle relative x0 error ({name} images):", ", ".join(errs))


if __name__ == "__main__":
    main()
