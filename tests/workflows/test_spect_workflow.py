"""SPECT workflow pieces: the 2.5D sampler, the study loader's checks, the evaluator's outputs (random tiny network)."""

from __future__ import annotations

import json
import shutil

import pydicom
import pytest
import torch
from monai.data import Dataset
from monai.transforms import Compose

from monai_diffrecon.diffusion import DiffusionPrior, make_scheduler
from monai_diffrecon.errors import DicomError, InvalidValueError
from monai_diffrecon.networks import diffusion_unet
from monai_diffrecon.samplers import SPECT25D
from monai_diffrecon.transforms.dictionary import LoadSPECTStudyd
from monai_diffrecon.workflows import SPECTReconstruction, spect_datalist
from tests.conftest import case_dirs

from ..io.dicomtools import dciodvfy_errors


@pytest.fixture(scope="module")
def tiny_sampler():
    torch.manual_seed(0)
    prior = DiffusionPrior(diffusion_unet(2, 1, cond_channels=4, size="tiny"), make_scheduler())
    return SPECT25D(prior, num_steps=3, init_iterations=2, init_subsets=4)


def _load(study_dir, **kw):
    from monai_diffrecon.errors import unwrap

    try:
        return Compose([LoadSPECTStudyd(**kw)])(spect_datalist(study_dir)[0])
    except RuntimeError as e:  # MONAI's Compose wraps transform errors
        raise unwrap(e) from None


def test_spect25d_runs_and_its_mlem_steps_fit_the_data(study, tiny_sampler):
    item = _load(study.nm_file.parent.parent)
    y = item["projections"].as_tensor()[None]
    P = item["projector"]
    out = tiny_sampler(y, P, generator=torch.Generator().manual_seed(0), num_samples=2, progress=False)
    assert out.x.shape == (2, 1, 1, 32, 32, 32) and out.nfe == 6 and bool((out.mean >= 0).all())
    with torch.no_grad():
        no_dc = SPECT25D(tiny_sampler.prior, 3, mlem_iterations=0, tv_weight=0.0, init_iterations=2, init_subsets=4)(
            y, P, generator=torch.Generator().manual_seed(0), progress=False)
    chi2 = lambda x: float(((P(x) - y) ** 2 / P(x).clamp_min(1)).mean())  # noqa: E731
    assert chi2(out.mean) < chi2(no_dc.mean)  # the per-step MLEM consistency pulls the random prior to the data
    a = tiny_sampler(y, P, generator=torch.Generator().manual_seed(3), progress=False)
    b = tiny_sampler(y, P, generator=torch.Generator().manual_seed(3), progress=False)
    assert torch.equal(a.x, b.x)


def test_spect25d_warm_start_begins_at_the_initial_reconstruction(study, tiny_sampler):
    item = _load(study.nm_file.parent.parent)
    y = item["projections"].as_tensor()[None]
    P = item["projector"]
    x_init, _, _ = tiny_sampler.prepare(y, P)
    smp = SPECT25D(tiny_sampler.prior, 2, mlem_iterations=0, tv_weight=0.0, init_iterations=2, init_subsets=4, t_start=2,
                   honour_threshold=None)  # the warm start alone: no data steps, no post-sampling count honouring
    with torch.no_grad():
        out = smp(y, P, generator=torch.Generator().manual_seed(0), progress=False)
    assert out.nfe == 2
    heart = x_init > 0.1 * x_init.max()  # at t₀ = 2 the noise is ~1 % of the range: the result stays at the OSEM
    rel = float((out.mean[0].double() - x_init.double())[heart].norm() / x_init.double()[heart].norm())
    assert rel < 0.05, rel


def test_evaluator_writes_dicom_nifti_png_and_metrics(study, tiny_sampler, tmp_path):
    ds = Dataset(spect_datalist(study.nm_file.parent.parent), Compose([LoadSPECTStudyd()]))
    truth = study.activity.double() * study.counts_per_unit
    wf = SPECTReconstruction(ds, tmp_path / "out", tiny_sampler, num_samples=2, views=8, truth=truth, progress=False)
    metrics = wf.run()[0]
    (out,) = case_dirs(tmp_path / "out")
    names = {p.name for p in out.iterdir()}
    assert {"dicom", "recon.nii.gz", "std.nii.gz", "osem.nii.gz", "recon.png", "metrics.json"} <= names
    series = sorted((out / "dicom").iterdir())
    assert [s.name.split("_")[1] for s in series] == ["RECON", "STD", "POLARMAP"]
    for s in series:
        assert dciodvfy_errors(s / "IM_00001.dcm") == []
    hdr = pydicom.dcmread(series[0] / "IM_00001.dcm")
    assert hdr.StudyInstanceUID == pydicom.dcmread(study.nm_file).StudyInstanceUID
    assert metrics["views"] == 8 and "ours_psnr_heart" in metrics and json.loads((out / "metrics.json").read_text())["nfe"] == 6
    assert (out / "recon.png").stat().st_size > 20_000
    # the clinical read-out: bull's-eyes of ours, OSEM and the reference on the reference's automatic geometry
    sc = pydicom.dcmread(series[2] / "IM_00001.dcm")
    assert sc.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7" and sc.StudyInstanceUID == hdr.StudyInstanceUID
    assert sc.pixel_array.shape[2] == 3 and (out / "polar_map.png").stat().st_size > 10_000
    pm = json.loads((out / "polar_map.json").read_text())
    assert set(pm["segments_of"]) == {"reference", "ours", "OSEM"} and pm["geometry"]["from"] == "reference"
    ref = pm["segments_of"]["reference"]
    assert [sg["number"] for sg in ref["segments"]] == list(range(1, 18))
    assert max(sg["percent"] for sg in ref["segments"]) == 100.0
    assert ref["summed_score"] == sum(sg["score"] for sg in ref["segments"]) == metrics["summed_score"]["reference"]
    assert abs(sum(x * x for x in pm["geometry"]["axis_base_to_apex"]) - 1) < 1e-3


def test_evaluator_passes_the_scatter_estimate_to_samplers_that_take_it_and_reads_out_without_a_reference(study, tiny_sampler, tmp_path):
    """``additive`` (views selected, scaled by the dose fraction) and ``ct`` reach a sampler whose forward takes them;
    a sampler without them still runs; without a reference the geometry is automatic (or the read-out is skipped
    with its reason in metrics.json, never a crash)."""
    item = Compose([LoadSPECTStudyd()])(spect_datalist(study.nm_file.parent.parent)[0])
    V = item["projections"].shape[1]
    item["scatter"] = torch.ones(1, V, *item["projections"].shape[2:]) * torch.arange(V, dtype=torch.float32)[None, :, None, None]
    item["ct_hu"] = torch.zeros(1, *item["projector"].in_shape[-3:])
    seen = {}

    class Spy(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, y, operator, generator=None, num_samples=1, progress=True, additive=None, ct=None):
            seen.update(additive=additive, ct=ct, y=y)
            return self.inner(y, operator, generator=generator, num_samples=num_samples, progress=progress)

    wf = SPECTReconstruction([item], tmp_path / "out", Spy(tiny_sampler), views=8, dose_fraction=0.5, progress=False)
    metrics = wf.run()[0]
    _, idx = item["projector"].few_view(8)
    assert seen["additive"].shape == seen["y"].shape == (1, 1, 8, *item["projections"].shape[2:])
    assert torch.allclose(seen["additive"][0, 0, :, 0, 0], 0.5 * idx.float())
    assert seen["ct"].shape == (1, *item["projector"].in_shape[-3:])
    (out,) = case_dirs(tmp_path / "out")
    if "polar_map_skipped" in metrics:
        assert metrics["polar_map_skipped"] and not (out / "polar_map.json").exists()
    else:
        assert json.loads((out / "polar_map.json").read_text())["geometry"]["from"] in ("ours", "OSEM")
    method = item["projections"].meta.get("scatter_method")
    assert metrics.get("scatter_method") == method

    class Old(torch.nn.Module):  # a sampler without the per-study inputs still runs
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, y, operator, generator=None, num_samples=1, progress=True):
            return self.inner(y, operator, generator=generator, num_samples=num_samples, progress=progress)

    old = SPECTReconstruction([item], tmp_path / "old", Old(tiny_sampler), views=8, progress=False)
    assert old._study_inputs(torch.ones(1), torch.zeros(1)) == {}
    m_old = old.run()[0]
    assert m_old["nfe"] == 3
    if method not in (None, "none"):
        assert m_old["scatter_method"].endswith("takes no additive term)")


def test_loader_rejects_missing_ct_mismatched_patient_and_no_overlap(study, tmp_path):
    only_nm = tmp_path / "only_nm"
    only_nm.mkdir()
    shutil.copy(study.nm_file, only_nm / "nm.dcm")
    with pytest.raises(DicomError, match="no CT"):
        _load(only_nm)
    item = _load(only_nm, allow_no_attenuation=True)
    assert item["projector"].attenuation_map is None

    other = tmp_path / "other_patient"
    shutil.copytree(study.ct_folder, other / "ct")
    shutil.copy(study.nm_file, other / "nm.dcm")
    for f in (other / "ct").glob("*.dcm"):
        ds = pydicom.dcmread(f)
        ds.PatientID = "SOMEONE_ELSE"
        ds.save_as(f)
    with pytest.raises(DicomError, match="PatientID"):
        _load(other)

    shifted = tmp_path / "shifted"
    shutil.copytree(study.ct_folder, shifted / "ct")
    shutil.copy(study.nm_file, shifted / "nm.dcm")
    for f in (shifted / "ct").glob("*.dcm"):
        ds = pydicom.dcmread(f)
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y, z + 5000.0]
        ds.save_as(f)
    with pytest.raises(DicomError, match="does not overlap"):
        _load(shifted)


def test_study_discovery_and_view_selection_errors(study, tiny_sampler, tmp_path):
    two = tmp_path / "two_nm"
    two.mkdir()
    shutil.copy(study.nm_file, two / "a.dcm")
    shutil.copy(study.nm_file, two / "b.dcm")
    with pytest.raises(DicomError, match="exactly one NM TOMO"):
        spect_datalist(two)
    ds = Dataset(spect_datalist(study.nm_file.parent.parent), Compose([LoadSPECTStudyd()]))
    with pytest.raises(InvalidValueError, match="views"):
        SPECTReconstruction(ds, tmp_path / "o", tiny_sampler, views=99, progress=False).run()
    assert not (tmp_path / "o").exists()
    with pytest.raises(InvalidValueError, match="dose_fraction"):
        SPECTReconstruction(ds, tmp_path / "o", tiny_sampler, dose_fraction=1.5)


def test_a_folder_of_study_folders_gives_one_item_per_study(study, tmp_path):
    """What `diffrecon simulate spect --n 2` writes: each sub-folder is a study; a broken one is an error, not skipped."""
    src = study.nm_file.parent.parent
    for name in ("study_a", "study_b"):
        shutil.copytree(src, tmp_path / "cohort" / name)
    (tmp_path / "cohort" / "notes").mkdir()  # a folder without NM projections is not a study: ignored
    items = spect_datalist(tmp_path / "cohort")
    assert [item["case"] for item in items] == [str(tmp_path / "cohort" / n) for n in ("study_a", "study_b")]
    shutil.copy(study.nm_file, tmp_path / "cohort" / "study_b" / "second_nm.dcm")  # study_b now holds two NM files
    with pytest.raises(DicomError, match="found 2"):
        spect_datalist(tmp_path / "cohort")
