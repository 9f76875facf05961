"""Issue 20, item 11: a SPECT study costs one OSEM (the sampler's warm start, returned as ``SamplerOutput.init`` and
written as ``osem.nii.gz``), however many posterior samples; a study folder holding ``truth.npy`` (what
``diffrecon simulate spect`` writes) gets image metrics, like the other bundles."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import torch
from monai.data import Dataset
from monai.transforms import Compose

import monai_diffrecon.samplers.spect25d as spect25d
from monai_diffrecon.diffusion import DiffusionPrior, make_scheduler
from monai_diffrecon.networks import diffusion_unet
from monai_diffrecon.samplers import SPECT25D
from monai_diffrecon.transforms.dictionary import LoadSPECTStudyd
from monai_diffrecon.workflows import SPECTReconstruction, spect_datalist


def test_one_osem_per_study_and_truth_npy_gives_metrics(study, tmp_path, monkeypatch):
    torch.manual_seed(0)
    sampler = SPECT25D(DiffusionPrior(diffusion_unet(2, 1, cond_channels=4, size="tiny"), make_scheduler()), num_steps=2,
                       init_iterations=2, init_subsets=4)
    calls = []
    real = spect25d.osem
    monkeypatch.setattr(spect25d, "osem", lambda *a, **k: calls.append(1) or real(*a, **k))
    study_dir = study.nm_file.parent.parent
    truth = (study.activity.double() * study.counts_per_unit).numpy()
    np.save(study_dir / "truth.npy", truth)
    try:
        items = spect_datalist(study_dir)
        assert items[0]["truth"] == str(study_dir / "truth.npy")
        wf = SPECTReconstruction(Dataset(items, Compose([LoadSPECTStudyd()])), tmp_path / "out", sampler, num_samples=3, progress=False)
        metrics = wf.run()[0]
    finally:
        (study_dir / "truth.npy").unlink()
    assert len(calls) == 1  # three samples, one OSEM
    assert "ours_psnr_heart" in metrics and "osem_psnr_heart" in metrics
    case = tmp_path / "out" / json.loads((tmp_path / "out" / "summary.json").read_text())["cases"][0]["output"]
    osem_written = np.asarray(nib.load(case / "osem.nii.gz").dataobj)
    assert osem_written.shape == truth.shape and float(osem_written.max()) > 0
