"""SPECT reconstruction workflow behind the ``spect_cardiac_diffusion`` bundle: DICOM in → DICOM/NIfTI/PNG out.

The bundle's MONAI pieces: ``datalist`` (:func:`spect_datalist`: one item per study found under the input folder),
``preprocessing`` (``LoadSPECTStudyd``: projections, μ-map, projector, with the pairing / overlap / missing-CT
checks), ``dataset`` (``monai.data.Dataset``), ``inferer`` (the sampler) and ``evaluator`` —
:class:`SPECTReconstruction`, which for every study:

1. optionally keeps a subset of views (few-view studies) or thins the counts (dose studies on simulated data);
2. samples with the inferer (``num_samples`` chains → mean and posterior std);
3. writes, through one staged folder: the derived NM series (mean) and, with ``num_samples > 1``, a posterior-std
   series; NIfTI of the reconstruction, std and OSEM; ``recon.png`` (truth / OSEM / ours / std in short-axis,
   vertical and horizontal long-axis views, and a row of 17-segment bull's-eyes); ``metrics.json`` (time, NFE, data
   consistency, scatter method, truth metrics when a reference is given);
4. the clinical read-out (:meth:`SPECTReconstruction.readout`): the left ventricle is segmented and reoriented from
   the volume itself (:func:`~monai_diffrecon.metrics.lv_segmentation.segment_lv`: on the reference when one is
   given, else on our reconstruction, else on the OSEM), and every reconstruction is read on the same 17 AHA
   segments: ``polar_map.png`` (bull's-eyes of ours, OSEM and the reference on one colour scale),
   ``polar_map.json`` (per-segment value in % of peak and score, summed score, the geometry and its quality flags)
   and the same picture as a DICOM Secondary Capture in the study (``dicom/SC_POLARMAP_*``). Where no plausible
   ventricle is found the read-out is skipped: ``metrics.json`` says why (``polar_map_skipped``), nothing crashes.

Every study goes to ``output_dir/<study folder name>/`` (one layout for one study or many, with
``output_dir/summary.json``; :mod:`monai_diffrecon.workflows.base`).
Errors are typed (:mod:`monai_diffrecon.errors`) and raised before anything is written.
"""

from __future__ import annotations

import inspect
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from monai_diffrecon.errors import DicomError, InvalidValueError, SeriesAssemblyError, ShapeError
from monai_diffrecon.io.dicom_guard import get_str, get_strs, read_dataset
from monai_diffrecon.io.dicom_write import NM_IMAGE_STORAGE, Derivation, write_nm_recon, write_secondary_capture
from monai_diffrecon.io.nifti import write_nifti
from monai_diffrecon.io.series import list_dicom_files
from monai_diffrecon.io.staging import staged_directory
from monai_diffrecon.workflows.base import CaseWorkflow

__all__ = ["SPECTReconstruction", "find_study", "spect_datalist", "simulated_studies"]


def find_study(input_dir: str | Path) -> tuple[Path, Path | None]:
    """``(nm_file, ct_folder | None)``: exactly one NM TOMO file and at most one CT series under ``input_dir``."""
    files, _ = list_dicom_files(input_dir)
    nm, ct = [], {}
    for f in files:
        ds = read_dataset(f, stop_before_pixels=True)
        sop = get_str(ds, f, "SOPClassUID")
        if sop == NM_IMAGE_STORAGE:
            itype = [v.upper() for v in get_strs(ds, f, "ImageType")]
            if len(itype) > 2 and itype[2] == "TOMO":
                nm.append(f)
        elif get_str(ds, f, "Modality", default="") == "CT":
            ct.setdefault(get_str(ds, f, "SeriesInstanceUID"), []).append(f)
    if len(nm) != 1:
        raise DicomError(input_dir, f"expected exactly one NM TOMO projection file, found {len(nm)}", "ImageType")
    if len(ct) > 1:
        raise SeriesAssemblyError(input_dir, f"{len(ct)} CT series found; keep only the attenuation CT", "SeriesInstanceUID")
    if not ct:
        return nm[0], None
    folders = {p.parent for p in next(iter(ct.values()))}
    if len(folders) != 1:
        raise SeriesAssemblyError(input_dir, "the CT series is spread over several folders", "SeriesInstanceUID")
    return nm[0], folders.pop()


def simulated_studies(out_dir: str | Path, n_studies: int = 20, seed: int | None = None, size: int = 64, voxel_mm: float = 6.0,
                      views: int = 60, total_counts: float = 4e6, progress: bool = True) -> list[dict]:
    """Write ``n_studies`` held-out simulated SPECT/CT studies as DICOM (``out_dir/study_XXX``) with their noise-free
    reference ``truth.npy`` (full-dose expected counts per voxel, in the reconstruction's array layout) and return the
    datalist (``projections``, ``ct``, ``truth``) — the evaluation set of ``evaluate.json``. ``seed``: the first seed
    (default: the test split of :mod:`monai_diffrecon.evaluation.splits`, never used for training)."""
    from tqdm.auto import tqdm

    from monai_diffrecon.data.spect_study import simulate_spect_study

    from monai_diffrecon.evaluation.splits import STRIDE, seed_base

    root = Path(out_dir)
    seed = seed_base("spect", "test") if seed is None else seed
    items = []
    for i in tqdm(range(n_studies), desc="simulating studies", disable=not progress):
        d = root / f"study_{i:03d}"
        truth_file = d / "truth.npy"
        if not truth_file.is_file():
            with staged_directory(d) as tmp:
                st = simulate_spect_study(tmp, seed=seed + STRIDE["spect"] * i, size=size, voxel_mm=voxel_mm, views=views, total_counts=total_counts)
                np.save(tmp / "truth.npy", (st.activity.double() * st.counts_per_unit).numpy())
        nm, ct = find_study(d)
        items.append(_study_item(d, nm, ct))
    return items


def _study_item(folder: Path, nm: Path, ct: Path | None) -> dict:
    """A datalist item; a ``truth.npy`` in the study folder (as ``diffrecon simulate spect`` writes) is its reference."""
    item = {"case": str(folder), "projections": str(nm), "ct": None if ct is None else str(ct)}
    if (folder / "truth.npy").is_file():
        item["truth"] = str(folder / "truth.npy")
    return item


def spect_datalist(input_dir: str | Path) -> list[dict]:
    """One study per sub-folder holding NM TOMO projections (or the folder itself): ``[{"case", "projections", "ct"}]``,
    plus ``"truth"`` where the study folder holds a reference ``truth.npy`` (image metrics are then reported)."""
    root = Path(input_dir)
    if not root.is_dir():
        problem = "a file, not a study folder (NM TOMO projections + CT series)" if root.exists() else "input folder not found"
        raise DicomError(input_dir, problem)
    subdirs = sorted(p for p in root.iterdir() if p.is_dir())
    try:
        nm, ct = find_study(root)
        # the study's own folder: the sub-folder of `root` holding both the NM file and the CT (a folder holding one
        # study folder, like `diffrecon simulate spect` writes, names the case after it and finds its truth.npy)
        common = Path(os.path.commonpath([nm.parent, ct or nm.parent]))
        folder = root if common == root or root not in common.parents else root / common.relative_to(root).parts[0]
        if folder != root and ct is None and folder == nm.parent:
            folder = root  # NM only, in its own series folder: the study is `root`
        return [_study_item(folder, nm, ct)]
    except DicomError as e:
        # not one study: a folder of study folders (like `diffrecon simulate spect --n 2` writes) gives one item per
        # sub-folder holding a study; a sub-folder with an NM file that is not a valid study is an error, not skipped
        if not subdirs or e.tag not in ("ImageType", "SeriesInstanceUID"):
            raise
        items = []
        for d in subdirs:
            try:
                nm, ct = find_study(d)
            except DicomError as sub:
                if sub.tag == "ImageType" and "found 0" in sub.problem:
                    continue  # no NM projections here: not a study folder
                raise
            items.append(_study_item(d, nm, ct))
        if not items:
            raise
        return items


class SPECTReconstruction(CaseWorkflow):
    """The bundle's evaluator (see module doc).

    Args:
        dataset: items from ``LoadSPECTStudyd`` (``projections`` counts MetaTensor, ``ct`` μ-map, ``projector``).
        output_dir: replaced atomically with the outputs.
        sampler: the inferer (e.g. :class:`~monai_diffrecon.samplers.SPECT25D`).
        num_samples: posterior samples (≥ 2 adds the std series). seed: sampling seed (and part of the UID policy).
        views: keep this many evenly spaced views (few-view reconstruction), or ``None`` for all.
        dose_fraction: binomially thin the counts (dose studies on simulated data), or ``None``.
        truth: optional ``(X, Y, Z)`` reference volume in the units of the stored acquisition (expected counts per
            voxel at the stored dose; scaled by ``dose_fraction`` here), for the PNG and metrics. Items may carry
            their own reference instead (``item["truth"]``: a tensor or an ``.npy`` path, e.g. from
            :func:`simulated_studies`).
        model_sha256: recorded in the DerivationDescription.
    """

    def __init__(self, dataset, output_dir, sampler, num_samples: int = 1, seed: int = 0, views: int | None = None,
                 dose_fraction: float | None = None, truth: torch.Tensor | None = None, model_sha256: str | None = None,
                 progress: bool = True, input_dir=None, overwrite: bool = False,
                 device=None) -> None:
        if num_samples < 1:
            raise InvalidValueError(f"num_samples: must be ≥ 1, got {num_samples}")
        if dose_fraction is not None and not 0 < dose_fraction <= 1:
            raise InvalidValueError(f"dose_fraction: must be in (0, 1], got {dose_fraction}")
        super().__init__(dataset, output_dir, progress, input_dir, overwrite, device)
        self.sampler = sampler
        self.num_samples, self.seed, self.views, self.dose_fraction = num_samples, seed, views, dose_fraction
        self.truth, self.model_sha256 = truth, model_sha256

    def _empty(self) -> Exception:
        return DicomError(self.input_dir or "the dataset", "no study to reconstruct")

    def select(self, counts: torch.Tensor, projector, scatter: torch.Tensor | None = None):
        """``(counts, projector, scatter)`` of the acquisition to reconstruct: the kept views (few-view studies) and the
        thinned counts (dose studies); ``scatter`` (the additive scatter estimate in the counts' layout
        ``(1, 1, V, X, Z)``, or ``None``) keeps the same views and is scaled by the dose fraction (the expected
        scatter of the thinned acquisition)."""
        if self.views is not None:
            if not 1 <= self.views <= projector.num_views:
                raise InvalidValueError(f"views: must be in [1, {projector.num_views}], got {self.views}")
            projector, idx = projector.few_view(self.views)
            counts = counts[:, :, idx]
            scatter = scatter[:, :, idx] if scatter is not None else None
        if self.dose_fraction is not None and self.dose_fraction < 1:
            from monai_diffrecon.data.spect_study import thin_counts

            counts = thin_counts(counts, self.dose_fraction, torch.Generator().manual_seed(self.seed + 17))
            scatter = scatter * self.dose_fraction if scatter is not None else None
        return counts, projector, scatter

    def reference(self, item: dict) -> torch.Tensor | None:
        truth = item.get("truth", self.truth)
        if truth is None:
            return None
        if isinstance(truth, (str, Path)):
            try:
                arr = np.load(truth, allow_pickle=False)
            except (OSError, ValueError) as e:
                raise InvalidValueError(f"{truth}: not a readable reference volume ({type(e).__name__})") from None
            grid = tuple(item["projector"].in_shape[-3:]) if "projector" in item else arr.shape
            if arr.shape != grid or not np.issubdtype(arr.dtype, np.number):
                raise ShapeError(f"{truth}: reference {arr.shape} {arr.dtype} does not match the reconstruction grid {grid}")
            truth = torch.from_numpy(arr)
        return torch.as_tensor(truth, dtype=torch.float64, device="cpu") * (self.dose_fraction or 1.0)

    def reconstruct(self, item: dict) -> tuple[dict, dict]:
        t0 = time.perf_counter()
        meta = item["projections"].meta
        counts = item["projections"].as_tensor()[None] if hasattr(item["projections"], "as_tensor") else item["projections"][None]
        from monai_diffrecon.io.shape_guard import check_spatial_size, spatial_divisor

        source = meta.get("filename_or_obj", "the NM projections")  # the network sees transverse (X, Y) slices
        check_spatial_size(source, item["projector"].in_shape[-3:-1], spatial_divisor(self.sampler), "reconstruction grid")
        scatter = item.get("scatter")
        if scatter is not None:
            scatter = torch.as_tensor(scatter.as_tensor() if hasattr(scatter, "as_tensor") else scatter)[None]  # (1, 1, V, X, Z)
        counts, projector, scatter = self.select(counts, item["projector"], scatter)
        inputs = self._study_inputs(scatter, item.get("ct_hu"))
        out = self.sample(counts, projector, self.seed, self.num_samples, **inputs)
        if inputs.get("additive") is None:
            scatter = None  # not in the sampler's data model: not in the χ² below either
        x_init = out.init[0, 0] if out.init is not None else None  # the sampler's OSEM warm start, computed once
        seconds = time.perf_counter() - t0
        truth = self.reference(item)
        est = projector(out.mean) + (scatter if scatter is not None else 0.0)  # the data model: primary + scatter
        chi2 = float(((est - counts) ** 2 / est.clamp_min(1.0)).mean())  # Pearson χ² per bin: ≈ 1 at the Poisson level
        metrics = {"seconds": round(seconds, 2), "nfe": out.nfe, "num_samples": self.num_samples, "views": projector.num_views,
                   "dose_fraction": self.dose_fraction, "total_counts": float(counts.sum()), "chi2_per_bin": chi2}
        if meta.get("scatter_method") is not None:
            method = str(meta["scatter_method"])
            used = scatter is not None or method == "none"
            metrics["scatter_method"] = method if used else f"{method} (estimated; this sampler takes no additive term)"
        if truth is not None:
            metrics.update(_truth_metrics(out.mean[0, 0], x_init, truth))
        results = {"mean": out.mean[0, 0], "std": out.std[0, 0], "osem": x_init, "affine": np.asarray(meta["affine_lps"]),
                   "source": meta["dicom_source"], "truth": truth}
        return results, metrics

    def _study_inputs(self, scatter: torch.Tensor | None, ct_hu) -> dict:
        """The per-study keyword inputs the sampler takes: ``additive`` (the scatter estimate, ``(1, 1, V, X, Z)``
        expected counts) and ``ct`` (the CT image in HU on the SPECT grid, ``(1, X, Y, Z)`` as loaded: the sampler
        accepts leading singleton dimensions), each passed only if the sampler's ``forward`` has that parameter
        (samplers without them still run; a scatter estimate is then not used, and ``metrics.json``'s
        ``scatter_method`` says so)."""
        fwd = getattr(self.sampler, "forward", self.sampler)
        try:
            params = inspect.signature(fwd).parameters
        except (TypeError, ValueError):
            params = {}
        data = {}
        if "additive" in params:
            data["additive"] = scatter
        if "ct" in params and ct_hu is not None:
            data["ct"] = torch.as_tensor(ct_hu.as_tensor() if hasattr(ct_hu, "as_tensor") else ct_hu)
        return data

    def readout(self, results: dict) -> tuple[dict | None, str]:
        """The 17-segment read-out of ``results`` (module doc, step 4): ``(read-out dict, "")`` or ``(None, why)``.

        The geometry comes from the reference if given, else from our reconstruction, else from the OSEM (the first
        on which :func:`~monai_diffrecon.metrics.lv_segmentation.segment_lv` finds a plausible ventricle); volumes are
        flipped into the LPS voxel frame it expects (the affine's axis signs) and the geometry is reported there."""
        from monai_diffrecon.metrics.lv_segmentation import segment_lv
        from monai_diffrecon.metrics.polar_map import aha17_labels, read_polar_maps

        flips, vs, aligned = _lps_frame(results["affine"])
        vols = {k: results[v] for k, v in (("reference", "truth"), ("ours", "mean"), ("OSEM", "osem")) if results.get(v) is not None}
        vols = {k: torch.flip(v, [i for i in range(3) if flips[i]]) if any(flips) else v for k, v in vols.items()}
        reasons = [] if aligned else ["the grid is not aligned with the patient axes (oblique): read as stored"]
        for name in ("reference", "ours", "OSEM"):
            if name not in vols:
                continue
            seg = segment_lv(vols[name], vs)
            if seg["ok"]:
                break
            reasons.append(f"{name}: {seg['reason']}")
        else:
            return None, "; ".join(reasons) or "no volume to read"
        labels = aha17_labels(seg["myocardium"], seg["centre"], seg["axis"])
        read = read_polar_maps({k: v for k, v in vols.items()}, labels)
        geometry = {"from": name, "frame": "LPS voxel indices (X left, Y posterior, Z superior)", "flipped_axes": list(flips),
                    "voxel_size_mm": [round(float(x), 4) for x in vs], "centre_voxel": [round(float(x), 3) for x in seg["centre"]],
                    "axis_base_to_apex": [round(float(x), 5) for x in seg["axis"]], "quality": seg["flags"]}
        if reasons:
            geometry["notes"] = reasons
        return {"maps": read, "geometry": geometry, "centre": seg["centre"], "axis": seg["axis"], "flips": flips}, ""

    def write(self, out_dir: Path, results: dict, metrics: dict) -> None:
        params = {"sampler": type(self.sampler).__name__, "nfe": metrics["nfe"], "num_samples": self.num_samples, "seed": self.seed,
                  "views": metrics["views"], "dose_fraction": self.dose_fraction}
        deriv = Derivation("DiffSPECT-3D-style 2.5D diffusion reconstruction", params, self.model_sha256)
        aff, src = results["affine"], results["source"]
        write_nm_recon(results["mean"].numpy(), aff, src, out_dir / "dicom", deriv, seed=self.seed, description="SPECT diffusion reconstruction")
        write_nifti(results["mean"].numpy(), aff, out_dir / "recon.nii.gz")
        if self.num_samples > 1:
            write_nm_recon(results["std"].numpy(), aff, src, out_dir / "dicom", Derivation("posterior standard deviation", params, self.model_sha256),
                           seed=self.seed, description="SPECT posterior std", series_number=903, role="std")
            write_nifti(results["std"].numpy(), aff, out_dir / "std.nii.gz")
        if results["osem"] is not None:
            write_nifti(results["osem"].numpy(), aff, out_dir / "osem.nii.gz")
        ro, why = self.readout(results)
        if ro is None:
            warnings.warn(f"polar map skipped: {why}", stacklevel=2)
            metrics["polar_map_skipped"] = why
        else:
            from monai_diffrecon.metrics.polar_map import bullseye_rgb

            maps = {k: [sg["percent"] if sg["percent"] is not None else float("nan") for sg in v["segments"]] for k, v in ro["maps"].items()}
            title = "AHA 17-segment polar map (% of each map's peak; " + ", ".join(f"{k} SSS {v['summed_score']}" for k, v in ro["maps"].items()) + ")"
            rgb = bullseye_rgb(maps, title)
            _save_rgb(out_dir / "polar_map.png", rgb)
            (out_dir / "polar_map.json").write_text(json.dumps({"segments_of": ro["maps"], "geometry": ro["geometry"],
                                                                 "units": "percent of the map's hottest segment"}, indent=2))
            write_secondary_capture(rgb, src, out_dir / "dicom", Derivation("AHA 17-segment polar map", params, self.model_sha256),
                                    seed=self.seed, description="Polar map (AHA 17-segment)")
            metrics["summed_score"] = {k: v["summed_score"] for k, v in ro["maps"].items()}
        _figure(out_dir / "recon.png", results["osem"], results["mean"], results["std"] if self.num_samples > 1 else None, results["truth"], metrics,
                ro)
        (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))

def _truth_metrics(x: torch.Tensor, osem: torch.Tensor | None, truth: torch.Tensor) -> dict:
    from monai_diffrecon.metrics.spect import volume_metrics

    m = {f"ours_{k}": v for k, v in volume_metrics(x, truth).items()}
    if osem is not None:
        m.update({f"osem_{k}": v for k, v in volume_metrics(osem, truth).items()})
    return m


def _lps_frame(affine) -> tuple[tuple[bool, bool, bool], np.ndarray, bool]:
    """``(flip per array axis, voxel sizes in mm, aligned)``: the flips that bring an ``(X, Y, Z)`` array with LPS
    affine ``affine`` into the frame :func:`~monai_diffrecon.metrics.lv_segmentation.segment_lv` expects (array axis
    i along +L, +P, +S); ``aligned`` is False for a permuted or oblique grid (no flips then)."""
    a = np.asarray(affine, dtype=np.float64)[:3, :3]
    vs = np.linalg.norm(a, axis=0)
    d = a / np.where(vs > 0, vs, 1.0)
    dominant = np.abs(d).argmax(0)
    if sorted(dominant.tolist()) != [0, 1, 2] or (dominant != np.arange(3)).any():
        return (False, False, False), vs, False
    return tuple(bool(d[i, i] < 0) for i in range(3)), vs, bool(np.all(np.abs(np.diag(d)) > 0.9))


def _save_rgb(path: Path, rgb: np.ndarray) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.imsave(path, rgb)


def _figure(path, osem, ours, std, truth, metrics, readout: dict | None = None) -> None:
    """``recon.png``: SA / VLA / HLA views of each volume (columns) on the read-out's geometry (the automatic one
    without a reference; the reference's ventricle with one), and a row of bull's-eyes from the read-out."""
    from monai_diffrecon.data.cardiac_views import cardiac_views, lv_axes
    from monai_diffrecon.data.preview import save_panels
    from monai_diffrecon.metrics.polar_map import bullseye_rgb

    cols = [("truth (full dose)", truth), ("OSEM", osem), ("ours", ours), ("posterior std", std)]
    cols = [(n, v) for n, v in cols if v is not None]
    if readout is not None:  # views in the read-out's (LPS-flipped) frame, so the geometry applies
        dims = [i for i in range(3) if readout["flips"][i]]
        cols = [(n, torch.flip(v, dims) if dims else v) for n, v in cols]
        centre, axis = readout["centre"], readout["axis"]
    else:
        centre, axis = lv_axes(truth if truth is not None else ours)
    vmax = float(max(v.max() for n, v in cols if n != "posterior std"))
    panels = []
    for view in ("SA", "VLA", "HLA"):
        for name, vol in cols:
            img = cardiac_views(vol, centre, axis)[view].numpy()
            if name == "posterior std":
                panels.append((f"{name} — {view}", img, "magma"))
            else:
                panels.append((f"{name} — {view}", np.clip(img / vmax, 0, 1), "inferno"))
    if readout is not None:
        names = {"truth (full dose)": "reference", "OSEM": "OSEM", "ours": "ours"}
        for name, _ in cols:
            key = names.get(name)
            if key in readout["maps"]:
                pm = [sg["percent"] if sg["percent"] is not None else float("nan") for sg in readout["maps"][key]["segments"]]
                panels.append((f"{name} — polar map (SSS {readout['maps'][key]['summed_score']})", bullseye_rgb({"": pm}, dpi=90), ""))
            else:
                panels.append(("", np.ones((8, 8, 3)), ""))
    title = f"SPECT reconstruction: {metrics['seconds']} s, NFE {metrics['nfe']}"
    if "ours_psnr_heart" in metrics:
        title += f" — heart PSNR ours {metrics['ours_psnr_heart']:.1f} dB, OSEM {metrics.get('osem_psnr_heart', float('nan')):.1f} dB"
    save_panels(panels, path, ncols=len(cols), title=title)
