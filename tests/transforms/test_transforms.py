"""MONAI transforms: array logic, dictionary wrappers sharing one draw, reproducibility via set_random_state."""

from __future__ import annotations

import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose

from monai_diffrecon.errors import InvalidValueError, ShapeError
from monai_diffrecon.physics import PoissonNoise, SPECTProjector
from monai_diffrecon.transforms import (
    ChannelsToComplex,
    ChannelsToComplexd,
    ComplexToChannels,
    ComplexToChannelsd,
    LoadKSpaced,
    LoadSPECTStudyd,
    SelectViews,
    SelectViewsd,
    SimulateMeasurementd,
    Stack25D,
    Stack25Dd,
    ThinCounts,
    ThinCountsd,
    UndersampleKSpace,
    UndersampleKSpaced,
)


def test_thin_counts_shares_the_fraction_and_is_reproducible():
    data = {"a": torch.full((1, 8, 8, 8), 50.0), "b": torch.full((1, 8, 8, 8), 50.0)}
    t = ThinCountsd(["a", "b"], (0.01, 0.5), fraction_key="dose").set_random_state(3)
    d1 = t(data)
    d2 = ThinCountsd(["a", "b"], (0.01, 0.5), fraction_key="dose").set_random_state(3)(data)
    assert d1["dose"] == d2["dose"] and torch.equal(d1["a"], d2["a"])
    assert 0.01 <= d1["dose"] <= 0.5
    assert float(d1["a"].mean()) == pytest.approx(50 * d1["dose"], rel=0.2)
    with pytest.raises(InvalidValueError):
        ThinCounts(0.5)(torch.full((1, 2), 1.5))
    with pytest.raises(InvalidValueError):
        ThinCounts((0.5, 0.1))


def test_select_views_even_and_random():
    x = torch.arange(12.0).reshape(1, 12, 1, 1).expand(1, 12, 2, 2)
    s = SelectViews(4).set_random_state(0)
    y = s(x)
    assert y.shape == (1, 4, 2, 2)
    d = torch.diff(s.indices)
    assert bool((d == 3).all())
    r = SelectViewsd(["p", "q"], (2, 5), mode="random", indices_key="idx").set_random_state(1)({"p": x, "q": x * 2})
    assert torch.equal(r["q"], r["p"] * 2)  # the same views for both keys
    assert 2 <= len(r["idx"]) <= 5
    with pytest.raises(ShapeError):
        SelectViews(20)(x)


def test_undersample_kspace_mask_is_shared_and_stored():
    k = torch.complex(torch.randn(4, 32, 32), torch.randn(4, 32, 32))
    d = UndersampleKSpaced(["k", "k2"], 4, 8, mask_key="m", output_keys=["y", "y2"]).set_random_state(0)({"k": k, "k2": k})
    assert torch.equal(d["y"], d["y2"]) and d["m"].shape == (1, 1, 32)
    assert torch.equal(d["y"], k * d["m"])
    p = UndersampleKSpace(6, 8, "poisson").set_random_state(0)
    y = p(k)
    assert p.mask.shape == (1, 32, 32) and torch.equal(y, k * p.mask)
    with pytest.raises(ShapeError):
        UndersampleKSpace()(k.real)


def test_stack25d_neighbours_and_padding():
    v = torch.arange(5.0).reshape(1, 1, 1, 5).expand(1, 2, 3, 5)
    s = Stack25D(2)(v)
    assert s.shape == (5, 5, 2, 3)
    assert s[0, :, 0, 0].tolist() == [0, 0, 0, 1, 2] and s[4, :, 0, 0].tolist() == [2, 3, 4, 4, 4]
    d = Stack25Dd(["osem", "mu"], "cond", [1, 0])({"osem": v, "mu": v * 10})
    assert d["cond"].shape == (5, 4, 2, 3) and d["cond"][2, :, 0, 0].tolist() == [1, 2, 3, 20]


def test_complex_channels_round_trip():
    z = torch.complex(torch.randn(3, 4, 5), torch.randn(3, 4, 5))
    c = ComplexToChannels()(z)
    assert c.shape == (6, 4, 5) and torch.equal(c[0], z[0].real) and torch.equal(c[1], z[0].imag)
    assert torch.equal(ChannelsToComplex()(c), z)
    d = ChannelsToComplexd("x")(ComplexToChannelsd("x")({"x": z}))
    assert torch.equal(d["x"], z)


def test_simulate_measurement_in_a_compose_is_reproducible():
    P = SPECTProjector(torch.arange(0, 360, 30.0), 4.0, object_shape=(8, 8, 4))
    pipe = Compose([SimulateMeasurementd("x", P, PoissonNoise(50.0), output_keys="y")]).set_random_state(0)
    x = torch.rand(1, 8, 8, 4)
    y1 = pipe({"x": x})["y"]
    y2 = Compose([SimulateMeasurementd("x", P, PoissonNoise(50.0), output_keys="y")]).set_random_state(0)({"x": x})["y"]
    assert y1.shape == (1, 12, 8, 4) and torch.equal(y1, y2)


def test_load_spect_study_transform(study):
    d = LoadSPECTStudyd()({"projections": str(study.nm_file), "ct": str(study.ct_folder)})
    assert isinstance(d["projections"], MetaTensor) and d["projections"].shape == (1, 32, 32, 32)
    assert isinstance(d["ct"], MetaTensor) and d["ct"].shape == (1, 32, 32, 32)
    assert float(d["ct"].max()) < 0.5
    P = d["projector"]
    assert P.psf is not None and P.attenuation_map is not None
    assert "dicom_source" in d["projections"].meta


def test_load_kspace_transform(tmp_path):
    from monai_diffrecon.io.kspace import write_fastmri

    k = torch.complex(torch.randn(1, 2, 8, 8), torch.randn(1, 2, 8, 8))
    write_fastmri(tmp_path / "k.h5", k, mask=torch.ones(8))
    d = LoadKSpaced("k")({"k": str(tmp_path / "k.h5")})
    assert d["k"].is_complex() and d["k"].shape == (1, 2, 8, 8) and d["k"].meta["mask"].shape == (1, 1, 1, 8)
