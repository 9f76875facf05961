"""Counts outrank the prior where they disagree (issue 23, item 7): the z-map of the Poisson residuals flags an erased
lesion and an added one, stays quiet where the image explains the counts, and the restricted MLEM brings the lesion back
without touching the rest of the image."""

from __future__ import annotations

import pytest
import torch

from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.physics import SPECTProjector
from monai_diffrecon.recon.discrepancy import count_discrepancy, honour_counts


@pytest.fixture(scope="module")
def problem():
    n = 32
    ax = (torch.arange(n, dtype=torch.float64) - (n - 1) / 2) * 10.0
    x, y, z = torch.meshgrid(ax, ax, ax, indexing="ij")
    body = (x / 140) ** 2 + (y / 110) ** 2 < 1
    mu = torch.where(body, 0.154, 0.0).float()
    truth = torch.where(body, 1.0, 0.0)
    lesion = (x - 50) ** 2 + (y + 20) ** 2 + z**2 < 18.0**2
    truth = (truth + 4.0 * lesion).float()[None, None]
    P = SPECTProjector(torch.arange(0, 360, 6.0), 10.0, mu, (2.0, 0.05), radii_mm=220.0)
    g = torch.Generator().manual_seed(0)
    expected = P(truth)
    scale = 2e6 / float(expected.sum())
    s = 0.2 * expected.mean() * scale * torch.ones_like(expected)
    counts = torch.poisson(expected * scale + s, generator=g)
    return P, counts, truth * scale, lesion[None, None], body[None, None], s


def test_the_z_map_is_quiet_where_the_image_explains_the_counts(problem):
    P, counts, truth, lesion, body, s = problem
    z = count_discrepancy(P, counts, truth, s)
    assert float(z[body].std()) < 2.0 and float((z[body].abs() > 4).float().mean()) < 0.005
    _, mask, _ = honour_counts(P, counts, truth, s)
    assert float(mask.float().mean()) < 0.01


def test_an_erased_lesion_is_flagged_and_restored(problem):
    P, counts, truth, lesion, body, s = problem
    erased = torch.where(lesion, truth[lesion].min() * 0 + float(truth[body & ~lesion].mean()), truth)
    z = count_discrepancy(P, counts, erased, s)
    assert float(z[lesion].max()) > 6 and float(z[body & ~lesion].abs().median()) < 1.0
    xc, mask, _ = honour_counts(P, counts, erased, s)
    assert bool(mask[lesion].any())
    before = float(erased[lesion].mean() / truth[lesion].mean())
    after = float(xc[lesion].mean() / truth[lesion].mean())
    assert before < 0.3 and after > 0.8
    far = body & ~torch.nn.functional.max_pool3d(mask.float(), 5, 1, 2).bool()
    assert torch.allclose(xc[far], erased[far])  # untouched outside the flagged regions


def test_an_added_lesion_is_flagged_with_negative_z(problem):
    P, counts, truth, lesion, body, s = problem
    moved = torch.roll(lesion, shifts=8, dims=3)
    fake = truth + 4.0 * float(truth[body & ~lesion].mean()) * moved.float()
    z = count_discrepancy(P, counts, fake, s)
    assert float(z[moved].min()) < -6
    xc, mask, _ = honour_counts(P, counts, fake, s)
    assert float(xc[moved & ~lesion].mean()) < 0.6 * float(fake[moved & ~lesion].mean())


def test_bad_arguments_are_refused(problem):
    P, counts, truth, *_ = problem
    with pytest.raises(InvalidValueError):
        honour_counts(P, counts, truth, threshold=0)
    with pytest.raises(InvalidValueError):
        count_discrepancy(P, counts, truth, probes=0)
