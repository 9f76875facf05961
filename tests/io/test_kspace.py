"""k-space I/O: fastMRI HDF5 and ISMRMRD round trips and bad-input errors."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from monai_diffrecon.errors import KSpaceError
from monai_diffrecon.io.kspace import read_fastmri, read_ismrmrd, write_fastmri, write_ismrmrd


@pytest.fixture
def kspace():
    g = torch.Generator().manual_seed(0)
    k = torch.complex(torch.randn(2, 4, 16, 12, generator=g), torch.randn(2, 4, 16, 12, generator=g))
    m = torch.zeros(12)
    m[::3] = 1
    m[5:7] = 1
    return k * m, m


def test_fastmri_round_trip(tmp_path, kspace):
    k, m = kspace
    p = write_fastmri(tmp_path / "a.h5", k, mask=m, reconstruction_rss=torch.rand(2, 8, 8), attrs={"acquisition": "AXT2"}, header="<xml/>")
    d = read_fastmri(p)
    assert torch.equal(d.kspace, k) and torch.equal(d.mask.flatten(), m)
    assert d.reconstruction.shape == (2, 8, 8) and d.attrs["acquisition"] == "AXT2" and d.header == "<xml/>"
    assert torch.equal(d.effective_mask(), d.mask)


def test_fastmri_single_coil_and_inferred_mask(tmp_path, kspace):
    k, m = kspace
    with h5py.File(tmp_path / "s.h5", "w") as f:
        f.create_dataset("kspace", data=k[:, 0].numpy())
    d = read_fastmri(tmp_path / "s.h5")
    assert d.kspace.shape == (2, 1, 16, 12) and d.mask is None
    assert torch.equal(d.effective_mask().flatten(), m)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda f: f.create_dataset("other", data=np.zeros(3)), "no 'kspace'"),
        (lambda f: f.create_dataset("kspace", data=np.zeros((2, 3, 4, 5), np.float32)), "must be complex"),
        (lambda f: f.create_dataset("kspace", data=np.zeros((4, 5), np.complex64)), "must be"),
        (lambda f: f.create_dataset("kspace", data=np.full((1, 2, 4, 5), np.nan, np.complex64)), "NaN"),
        (lambda f: (f.create_dataset("kspace", data=np.zeros((1, 2, 4, 5), np.complex64)), f.create_dataset("mask", data=np.ones(4))), "mask"),
        (lambda f: (f.create_dataset("kspace", data=np.zeros((1, 2, 4, 5), np.complex64)), f.create_dataset("mask", data=np.full(5, 0.5))), "0/1"),
    ],
)
def test_fastmri_bad_files(tmp_path, make, match):
    with h5py.File(tmp_path / "bad.h5", "w") as f:
        make(f)
    with pytest.raises(KSpaceError, match=match):
        read_fastmri(tmp_path / "bad.h5")


def test_not_hdf5_and_missing(tmp_path):
    (tmp_path / "x.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(KSpaceError, match="HDF5"):
        read_fastmri(tmp_path / "x.h5")
    with pytest.raises(KSpaceError):
        read_fastmri(tmp_path / "missing.h5")
    with pytest.raises(KSpaceError):
        read_ismrmrd(tmp_path / "missing.mrd")
    with pytest.raises(KSpaceError, match="NaN"):
        write_fastmri(tmp_path / "n.h5", torch.full((1, 1, 2, 2), complex("nan")))
    assert not (tmp_path / "n.h5").exists()


def test_ismrmrd_round_trip(tmp_path, kspace):
    k, m = kspace
    p = write_ismrmrd(tmp_path / "a.mrd", k, m)
    d = read_ismrmrd(p)
    assert torch.equal(d.kspace, k) and torch.equal(d.mask.flatten(), m)
    assert "ismrmrdHeader" in d.header
