"""The foam CT phantom of the TV study: deterministic per seed, partial-volume edges, values in [0, 2]."""

from __future__ import annotations

import pytest
import torch

from monai_diffrecon.data.ct_phantom import foam_phantom
from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.evaluation import seeds


def test_deterministic_and_seed_dependent():
    a, b = foam_phantom(64, seeds("ct", "test", 1)[0]), foam_phantom(64, seeds("ct", "test", 1)[0])
    c = foam_phantom(64, seeds("ct", "val", 1)[0])
    assert a.shape == (1, 1, 64, 64) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_values_voids_and_partial_volume():
    x = foam_phantom(96, 420_001)
    assert float(x.min()) == 0.0 and float(x.max()) <= 2.0
    assert float((x == 1).float().mean()) > 0.2  # body material
    assert float(((x > 0) & (x < 1)).float().mean()) > 0.005  # partial-volume edge pixels
    assert float(x[..., 0, 0]) == 0.0  # outside the body disc


def test_rejects_tiny_size():
    with pytest.raises(InvalidValueError):
        foam_phantom(8, 0)
