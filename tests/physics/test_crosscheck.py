"""Cross-checks against the field's libraries (foundation issue, item 6): PyTomography and sigpy."""

from __future__ import annotations

import pytest

from monai_diffrecon.physics import validation as v

pytest.importorskip("pytomography")
pytest.importorskip("sigpy")


def test_spect_projector_matches_pytomography():
    r = v.crosscheck_pytomography(n=64, views=64)
    assert r["forward_rel_diff"] <= 0.02
    # PyTomography back-projects by rotating back (not the exact adjoint): close, not equal
    assert r["backward_rel_diff"] <= 0.05


def test_osem_matches_pytomography():
    r = v.crosscheck_pytomography_osem(n=64, views=64, iterations=2, subsets=8)
    assert r["rel_diff_body"] <= 0.05
    assert r["mean_ratio_body"] == pytest.approx(1.0, abs=0.01)


def test_multicoil_mri_matches_sigpy_sense():
    r = v.crosscheck_sigpy_sense()
    assert r["forward_rel_diff"] <= 1e-5
    assert r["adjoint_rel_diff"] <= 1e-5


def test_espirit_matches_sigpy():
    import sigpy.mri as mr
    import torch

    from monai_diffrecon.physics import MultiCoilMRI, birdcage_maps, estimate_coil_maps

    n = 64
    ii, jj = torch.meshgrid(torch.arange(n) - n / 2, torch.arange(n) - n / 2, indexing="ij")
    obj = ((ii / 27) ** 2 + (jj / 22) ** 2) < 1
    img = (obj * (1 + 0.3 * torch.cos(ii / 8.0))).to(torch.complex128)
    maps = birdcage_maps(8, (n, n), dtype=torch.complex128)
    k = MultiCoilMRI(maps, torch.ones(1, 1, 1, 1, dtype=torch.float64))(img[None, None])[0]
    ours = estimate_coil_maps(k)[0]
    theirs = torch.from_numpy(mr.app.EspiritCalib(k.numpy(), show_pbar=False).run())
    sim = (ours.conj() * theirs).sum(0).abs()[obj]
    assert float(sim.mean()) >= 0.999
