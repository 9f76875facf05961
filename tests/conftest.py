from __future__ import annotations

import pytest

from monai_diffrecon.data.spect_study import simulate_spect_study


@pytest.fixture(scope="session")
def study(tmp_path_factory):
    """A small simulated SPECT/CT study written as DICOM (32³, 12 mm voxels, 32 views, two heads)."""
    return simulate_spect_study(tmp_path_factory.mktemp("study"), seed=4, size=32, voxel_mm=12.0, views=32, total_counts=5e5)
