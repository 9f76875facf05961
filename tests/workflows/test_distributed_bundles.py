"""``torchrun --nproc_per_node=2 -m monai.bundle run`` with each trainable bundle's ``multi_gpu_train.json`` on the CPU
(gloo, tiny overrides): training runs on both ranks and the DDP replicas stay identical (each rank prints the sha256
of its parameters after the last step)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from monai_diffrecon.bundles import BUNDLES_DIR, list_bundles

# tiny settings per bundle (ids of its train.json); bundles without an entry are skipped with a reason
TINY = {
    "spect_cardiac_diffusion": {"network_def#size": "tiny", "n_volumes": 1, "n_val_volumes": 1, "batch_size": 2, "cohort#size": 16,
                                "cohort#voxel_mm": 24.0, "cohort#views": 8, "val_cohort#size": 16, "val_cohort#voxel_mm": 24.0,
                                "val_cohort#views": 8, "validation#n_batches": 1},
    "mri_multicoil_msm": {"network_def#size": "tiny", "n_slices": 2, "size": 32, "batch_size": 2},
    "mri_multicoil_selfdb": {"network_def#size": "tiny", "n_slices": 2, "size": 32, "batch_size": 2},
    "mri_multicoil_unfolding": {"network_def#size": "tiny", "n_slices": 2, "size": 32, "batch_size": 2, "batches#center_lines": "[8, 6]"},
    "natural_blind_deblur": {"network_def#size": "tiny", "n_patches": 8, "size": 32, "batch_size": 2},
    "natural_reld": {"network_def#size": "tiny", "n_patches": 8, "size": 32, "batch_size": 2},
    "natural_unfolding_deblur": {"n_patches": 8, "size": 32, "n_kernels": 4, "kernel_size": 9, "batch_size": 2},
    "satellite_cloud_removal": {"network_def#size": "tiny", "n_scenes": 2, "size": 32, "batch_size": 2},
}
TRAINABLE = [b for b in list_bundles() if (BUNDLES_DIR / b / "configs" / "multi_gpu_train.json").is_file()]


@pytest.mark.parametrize("name", TRAINABLE)
def test_multi_gpu_train_config_under_torchrun_keeps_replicas_identical(name, tmp_path):
    torchrun = Path(sys.executable).parent / "torchrun"
    if not torchrun.exists():
        pytest.skip("torchrun not installed next to the interpreter")
    if name not in TINY:
        pytest.fail(f"{name}: add its tiny training overrides to TINY")
    root = BUNDLES_DIR / name
    cmd = [str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "monai.bundle", "run",
           "--config_file", f"['{root}/configs/train.json','{root}/configs/multi_gpu_train.json']",
           "--meta_file", str(root / "configs" / "metadata.json"), "--bundle_root", str(root),
           "--output_dir", str(tmp_path / "out"), "--cohort_dir", str(tmp_path / "out"), "--max_iterations", "2", "--progress", "False"]
    for k, v in TINY[name].items():
        cmd += [f"--{k}", str(v)]
    env = dict(os.environ, OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    digests = dict(re.findall(r"\[rank (\d)/2\] iteration 2 parameters sha256 ([0-9a-f]{64})", r.stdout + r.stderr))
    assert set(digests) == {"0", "1"} and len(set(digests.values())) == 1, r.stdout[-2000:]
    assert (tmp_path / "out" / "model.pt").is_file()
