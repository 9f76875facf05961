"""Each simulator: deterministic from its seed, physically sensible, and with a preview PNG."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from monai_diffrecon.data import cardiac_phantom
from monai_diffrecon.data.mri_sim import mr_phantom, real_mr_slices, simulate_multicoil, write_mri_dataset
from monai_diffrecon.data.natural import SKIMAGE_TEST, SKIMAGE_TRAIN, load_skimage, motion_blur_kernel, random_patches
from monai_diffrecon.data.preview import preview_mri, preview_natural, preview_satellite, preview_spect_study
from monai_diffrecon.data.satellite_sim import LAND_COVER, satellite_scene
from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.modalities.satellite import sen12ms_normalize
from monai_diffrecon.data.spect_study import few_view_indices, simulate_spect_study, thin_counts
from monai_diffrecon.io.kspace import read_fastmri


def g(s=0):
    return torch.Generator().manual_seed(s)


def test_cardiac_phantom_random_anatomy_and_defects():
    a = cardiac_phantom((48, 48, 48), 8.0, True, g(1))
    b = cardiac_phantom((48, 48, 48), 8.0, True, g(1))
    c = cardiac_phantom((48, 48, 48), 8.0, True, g(2))
    assert torch.equal(a["activity"], b["activity"]) and not torch.equal(a["activity"], c["activity"])
    assert a["myocardium"].any()
    myo = a["activity"][a["myocardium"]]
    assert float(myo.min()) < 0.75 < float(myo.max())  # a defect wedge with reduced uptake
    ref = cardiac_phantom((48, 48, 48), 8.0)
    assert float(ref["activity"][ref["myocardium"]].min()) == 1.0
    assert {round(v, 4) for v in torch.unique(ref["mu"]).tolist()} <= {0.0, 0.04, 0.154, 0.28}


def test_spect_study_is_deterministic_and_counts_are_poisson(tmp_path):
    a = simulate_spect_study(tmp_path / "a", seed=3, size=24, voxel_mm=16.0, views=16, total_counts=2e5)
    b = simulate_spect_study(tmp_path / "b", seed=3, size=24, voxel_mm=16.0, views=16, total_counts=2e5)
    assert torch.equal(a.counts, b.counts)
    assert a.nm_file.read_bytes()[132:] != b"" and float(a.counts.sum()) == pytest.approx(2e5, rel=0.01)
    assert torch.equal(a.counts, a.counts.round())
    preview_spect_study(a, tmp_path / "spect.png")
    assert (tmp_path / "spect.png").stat().st_size > 10_000


def test_binomial_thinning_is_poisson_at_the_lower_dose():
    lam = torch.full((200_000,), 40.0)
    full = torch.poisson(lam, generator=g(0))
    low = thin_counts(full, 0.1, g(1))
    assert float(low.mean()) == pytest.approx(4.0, rel=0.02)
    assert float(low.var()) == pytest.approx(4.0, rel=0.03)  # Poisson: variance = mean
    with pytest.raises(ValueError):
        thin_counts(full, 0.0, g())


def test_few_view_indices_match_the_projector_rule():
    assert few_view_indices(120, 9).tolist() == [0, 13, 26, 40, 53, 66, 80, 93, 106]
    assert few_view_indices(64, 1).tolist() == [0]
    with pytest.raises(ValueError):
        few_view_indices(4, 5)


def test_mri_simulation(tmp_path):
    x = mr_phantom(64, g(0))
    assert x.is_complex() and x.shape == (64, 64) and float(x.abs().max()) <= 1.5
    assert torch.equal(x, mr_phantom(64, g(0)))
    real = real_mr_slices(64)
    assert len(real) >= 1 and all(t.shape == (64, 64) for _, t in real)
    for R in (4, 6, 8):
        s = simulate_multicoil(x[None], 8, R, 12, "random", 0.01, g(R))
        assert s.kspace.shape == (1, 8, 64, 64)
        acquired = s.mask.expand(1, 1, 64, 64).bool()[0, 0]
        assert float(s.kspace[0, :, ~acquired].abs().max()) == 0.0
        noise = (s.kspace - s.kspace_full * s.mask)[0][:, acquired]
        assert float(noise.real.std()) == pytest.approx(0.01, rel=0.1)
    files = write_mri_dataset(tmp_path, [("phantom", x)], "train", acceleration=6, center_lines=6)
    d = read_fastmri(files[0])
    assert d.reconstruction is None and 1 / float(d.mask.mean()) == pytest.approx(6, rel=0.35)
    t = write_mri_dataset(tmp_path, real[:1], "test")
    assert read_fastmri(t[0]).reconstruction is not None
    preview_mri(s, tmp_path / "mri.png")
    assert (tmp_path / "mri.png").stat().st_size > 10_000


def test_natural_images_and_motion_kernels(tmp_path):
    assert not set(SKIMAGE_TRAIN) & set(SKIMAGE_TEST)
    img = load_skimage("astronaut")
    assert img.shape == (1, 512, 512) and 0 <= float(img.min()) and float(img.max()) <= 1
    assert load_skimage("astronaut", gray=False).shape == (3, 512, 512)
    p = random_patches([img], 64, 5, g(0))
    assert p.shape == (5, 1, 64, 64) and torch.equal(p, random_patches([img], 64, 5, g(0)))
    k = motion_blur_kernel(64, 0.5, g(3))
    assert k.shape == (64, 64) and float(k.sum()) == pytest.approx(1.0) and float(k.min()) >= 0
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    assert abs(float((k * yy).sum()) - 32) <= 1 and abs(float((k * xx).sum()) - 32) <= 1  # centred
    assert torch.equal(k, motion_blur_kernel(64, 0.5, g(3)))
    longer = motion_blur_kernel(64, 1.0, g(3))
    assert (longer > 0).sum() > (motion_blur_kernel(64, 0.1, g(3)) > 0).sum()
    preview_natural(p, [k, longer], tmp_path / "nat.png")
    assert (tmp_path / "nat.png").stat().st_size > 10_000


def test_satellite_scene_is_physically_consistent(tmp_path):
    s = satellite_scene(96, g(4), cloud_cover=0.3)
    assert s["clear"].shape == (4, 96, 96) and s["sar"].shape == (2, 96, 96)
    lc = s["land_cover"]
    water, veg = lc == LAND_COVER.index("water"), lc == LAND_COVER.index("vegetation")
    if water.any() and veg.any():
        assert float(s["clear"][3][water].mean()) < float(s["clear"][3][veg].mean())  # NIR: water dark, vegetation bright
        assert float(s["sar"][0][water].mean()) < float(s["sar"][0][veg].mean())  # SAR: water specular (dark)
    assert float((s["cloud"] > 0.1).float().mean()) == pytest.approx(0.3, abs=0.1)
    clear_px = (s["cloud"][0] == 0) & (s["shadow"][0] == 0)
    assert torch.allclose(s["cloudy"][:, clear_px], s["clear"][:, clear_px])
    opt, sar = sen12ms_normalize(s["cloudy"], s["sar"])
    assert 0 <= float(opt.min()) and float(opt.max()) <= 1 and 0 <= float(sar.min()) and float(sar.max()) <= 1
    assert torch.equal(s["sar"], satellite_scene(96, g(4), cloud_cover=0.3)["sar"])
    preview_satellite(s, tmp_path / "sat.png")
    assert (tmp_path / "sat.png").stat().st_size > 10_000


def test_real_mr_slices_are_anatomy_not_the_nibabel_ramp():
    """nibabel's test 0.dcm/1.dcm carry a synthetic ramp (anonymised pixel data); they must not pass as real MR."""
    import importlib.util
    from importlib.resources import files

    import pydicom

    ramp = pydicom.dcmread(str(files("nibabel") / "tests" / "data" / "0.dcm")).pixel_array.astype(np.int64)
    rows, cols = np.indices(ramp.shape)
    assert np.array_equal(ramp, (256 * rows + cols) % 4096)  # why it is excluded
    real = real_mr_slices(128)
    names = [n for n, _ in real]
    assert not any(n.startswith("nibabel") for n in names)
    expected = ["pydicom_MR_small"] + (["dipy_t1_coronal"] + [f"dipy_S0_b0_z{k}" for k in range(10)]
                                       if importlib.util.find_spec("dipy") else [])
    assert names == expected
    for name, t in real:
        m = t.abs()
        assert t.shape == (128, 128) and float(m.max()) == pytest.approx(1.0), name
        # the ramp's signature: every row is the same profile plus an offset (row-centred rows identical)
        centred = m - m.mean(dim=1, keepdim=True)
        assert float(centred.std(dim=0).mean()) > 0.02, name
    r = torch.from_numpy(ramp / ramp.max())
    assert float((r - r.mean(dim=1, keepdim=True)).std(dim=0).mean()) < 1e-6  # the check would catch the ramp


def test_real_validation_slices_are_neither_test_slices_nor_training_sources():
    """The real validation split (settings for the real-slice benchmark are chosen there): dipy's test_piesno slices,
    named apart from the test slices and not correlated with any of them or with a training wheel slice."""
    pytest.importorskip("dipy")
    from monai_diffrecon.data.mr_wheels import wheel_mr_slices

    val = real_mr_slices(128, seed=1, split="val")
    assert [n for n, _ in val] == ["dipy_piesno_z2", "dipy_piesno_z5", "dipy_piesno_z8", "dipy_piesno_z11"]
    others = [t.abs() for _, t in real_mr_slices(128)] + [
        torch.nn.functional.interpolate(torch.from_numpy(a)[None, None], size=(128, 128), mode="bilinear", align_corners=False)[0, 0]
        for _, a in wheel_mr_slices()]
    for name, t in val:
        assert t.shape == (128, 128) and float(t.abs().max()) == pytest.approx(1.0), name
        for o in others:
            assert np.corrcoef(t.abs().ravel().numpy(), o.ravel().double().numpy())[0, 1] < 0.95, name
    with pytest.raises(InvalidValueError, match="split"):
        real_mr_slices(64, split="train")


def test_satellite_clouds_v2_need_more_than_the_optical_bands():
    """Cloud model v2 (issue 25, item 4): opaque cores, one spectrum per cloud, haze, terrain-tied SAR."""
    scenes = [satellite_scene(96, g(s), cloud_cover=0.4, cloud_model="v2") for s in range(6)]
    for s in scenes:
        tau, haze = s["cloud"][0], s["haze"][0]
        assert float((tau >= 1).float().mean()) > 0.05  # opaque cores: no ground signal there
        assert float((tau > 0.1).float().mean()) == pytest.approx(0.4, abs=0.1)
        free = (tau == 0) & (s["shadow"][0] == 0) & (haze == 0)
        if free.any():
            assert torch.allclose(s["cloudy"][:, free], s["clear"][:, free])
    # per-cloud spectra: the opaque pixels of one scene do not all share one spectrum (v1: one fixed spectrum)
    spreads = []
    for s in scenes:
        core = (s["cloud"][0] >= 1) & (s["haze"][0] == 0)
        if core.sum() > 10:
            ratio = s["cloudy"][3][core] / s["cloudy"][0][core]  # NIR / blue of the opaque pixels
            spreads.append(float(ratio.max() - ratio.min()))
    assert spreads and max(spreads) > 0.02
    assert any(float(s["haze"].max()) > 0 for s in scenes)
    # the ground truth (land cover, clear reflectance) is v1's: only the clouds, haze and SAR terrain change
    v1 = satellite_scene(96, g(3), cloud_cover=0.4)
    v2 = satellite_scene(96, g(3), cloud_cover=0.4, cloud_model="v2")
    assert torch.equal(v1["land_cover"], v2["land_cover"]) and torch.equal(v1["clear"], v2["clear"])
    with pytest.raises(InvalidValueError):
        satellite_scene(32, g(0), cloud_model="v3")
