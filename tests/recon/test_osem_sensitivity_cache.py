"""``osem`` reuses its sensitivity images per projector: bit-identical results, fresh images when the tables change."""

from __future__ import annotations

import gc
import weakref

import pytest
import torch

from monai_diffrecon.physics import LEHR, SPECTProjector
from monai_diffrecon.physics.spect import _DenseSPECTProjector
from monai_diffrecon.recon import em, osem


def _problem(n: int = 16, views: int = 16, mu_value: float = 0.15):
    mu = torch.zeros(n, n, n)
    mu[3:-3, 3:-3, 2:-2] = mu_value
    P = SPECTProjector(torch.arange(views) * (360.0 / views), 6.0, mu, LEHR, radii_mm=150.0)
    x = torch.rand(1, 1, n, n, n, generator=torch.Generator().manual_seed(0)) * mu.gt(0)
    y = torch.poisson(P(x) * 50, generator=torch.Generator().manual_seed(1))
    return P, y


def _uncached(P, y, iterations, subsets, additive=None):
    """The EM update of the module doc, written out with the sensitivities computed afresh."""
    x = torch.ones(y.shape[0], *P.in_shape[1:], dtype=y.dtype)
    parts = []
    for m in range(subsets):
        idx = torch.arange(m, P.num_views, subsets)
        op = P if subsets == 1 else P.select_views(idx)
        parts.append((op, y[:, :, idx], None if additive is None else additive[:, :, idx], op.adjoint(torch.ones_like(y[:, :, idx]))))
    for _ in range(iterations):
        for op, y_m, s_m, sens in parts:
            est = op(x) + (s_m if s_m is not None else 0)
            ratio = torch.where(est > 0, y_m / torch.where(est > 0, est, torch.ones_like(est)), torch.zeros_like(est))
            x = torch.where(sens > 0, x * op.adjoint(ratio) / torch.where(sens > 0, sens, torch.ones_like(sens)), torch.zeros_like(x))
    return x


def _count_adjoints(monkeypatch):
    calls = []
    orig = SPECTProjector._adjoint

    def counting(self, y):
        calls.append(y.shape[2])
        return orig(self, y)

    monkeypatch.setattr(SPECTProjector, "_adjoint", counting)
    return calls


@pytest.mark.parametrize("subsets", [1, 4])
def test_cached_calls_are_bit_identical(subsets):
    P, y = _problem()
    s = torch.full_like(y, 0.5)
    ref = _uncached(P, y, 2, subsets, s)
    first, second = osem(P, y, 2, subsets, additive=s), osem(P, y, 2, subsets, additive=s)
    assert torch.equal(first, ref) and torch.equal(second, ref)


def test_second_call_skips_the_sensitivity_adjoints(monkeypatch):
    P, y = _problem()
    calls = _count_adjoints(monkeypatch)
    osem(P, y, 1, 4)
    n_first = len(calls)
    calls.clear()
    osem(P, y, 1, 4)
    assert n_first == 8 and len(calls) == 4  # 4 sensitivity + 4 update adjoints, then the updates only
    calls.clear()
    osem(P, y, 1, 2)  # another subset count: its own images
    assert len(calls) == 4
    calls.clear()
    osem(P, torch.cat([y, y]), 1, 4)  # another batch size: its own images
    assert len(calls) == 8


def test_changed_tables_give_fresh_images():
    P, y = _problem()
    osem(P, y, 1, 4)
    P._att.mul_(0.5)  # in place: the version counter moves
    assert torch.equal(osem(P, y, 1, 4), _uncached(P, y, 1, 4))
    Q, _ = _problem(mu_value=0.05)
    P.load_state_dict(Q.state_dict())  # rebuilds the tables: new tensors
    assert torch.equal(osem(P, y, 1, 4), _uncached(Q, y, 1, 4))
    P.double()
    yd = y.double()
    assert torch.equal(osem(P, yd, 1, 4), _uncached(P, yd, 1, 4))


def test_cache_holds_neither_projector_nor_tables():
    P, y = _problem()
    osem(P, y, 1, 4)
    assert P in em._SENSITIVITY
    refs = [weakref.ref(P), weakref.ref(P._fw_val), weakref.ref(P._att)]
    P._build(torch.float32)  # new tables: the old ones must not be kept alive by the cache either
    assert refs[1]() is None and refs[2]() is None
    del P
    gc.collect()
    assert refs[0]() is None


def test_dense_reference_projector_agrees():
    P, y = _problem()
    D = _DenseSPECTProjector(P.angles_deg, 6.0, P.attenuation_map, LEHR, radii_mm=150.0)
    osem(D, y, 1, 4)
    assert torch.equal(osem(D, y, 2, 4), _uncached(D, y, 2, 4))
