"""Natural patch and kernel cohorts: ranges, the prior-domain kernel mapping, caching, train/validation disjointness."""

import torch

from monai_diffrecon.training.natural_cohort import cached_kernel_cohort, cached_patch_cohort, unit_kernels


def test_patches_signed_range_and_cache(tmp_path):
    a = cached_patch_cohort(tmp_path / "p.pt", 6, size=32)
    assert a["images"].shape == (6, 1, 32, 32) and float(a["images"].min()) >= -1 and float(a["images"].max()) <= 1
    mtime = (tmp_path / "p.pt").stat().st_mtime_ns
    assert torch.equal(cached_patch_cohort(tmp_path / "p.pt", 6, size=32)["images"], a["images"])
    assert (tmp_path / "p.pt").stat().st_mtime_ns == mtime
    v = cached_patch_cohort(tmp_path / "v.pt", 6, size=32, split="val")
    assert not torch.equal(v["images"], a["images"])


def test_kernels_round_trip_to_normalised_kernels(tmp_path):
    c = cached_kernel_cohort(tmp_path / "k.pt", 5, size=32, gaussian_fraction=0.4, progress=False)
    kt, mx = c["kernels"], c["maxima"]
    assert kt.shape == (5, 1, 32, 32) and float(kt.max()) <= 1 + 1e-6 and float(kt.min()) >= -1 - 1e-6
    k = (kt + 1) * mx[:, None, None, None] / 2
    assert torch.allclose(k.sum(dim=(-2, -1)), torch.ones(5, 1), atol=1e-4) and float(k.min()) >= -1e-7
    u = unit_kernels(c)
    assert u.shape == (5, 32, 32) and float(u.min()) >= 0 and torch.allclose(u, k[:, 0] / k[:, 0].sum((-2, -1), keepdim=True), atol=1e-6)
