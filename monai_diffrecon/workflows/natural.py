"""Natural-image restoration workflow behind the natural-image bundles (Blind-PnPDM, RELD, score-based PnP, the
Diff-Unfolding deblurring model): PNG in → PNG out.

Three tasks, each with its measurement file (:data:`MEASUREMENTS`) and operator: ``deblur`` (``blurred.png``,
:class:`~monai_diffrecon.physics.Blur` with the case's kernel), ``denoise`` (``noisy.png``, identity) and ``sr``
(``lowres.png``, :class:`~monai_diffrecon.physics.Downsample` by ``sr_factor``: Gaussian anti-alias blur, then
decimation). A case is a folder (as written by ``diffrecon simulate natural``, which writes all three) holding the
measurement (8- or 16-bit grey), optionally ``kernel.npy`` (the blur kernel, sum 1: the known kernel for non-blind methods, a reference
for blind ones, which never start from it), ``init_kernel.npy`` (a blind method's start; default a Gaussian of the
workflow's ``kernel_size`` and ``init_kernel_sigma``) and ``truth.png`` (used only for metrics). Images are mapped
to the priors' range [−1, 1] and back. Output per case, through one staged folder: ``restored.png``, ``std.png`` (with
``num_samples > 1``), ``kernel.png`` + ``kernel.npy`` (blind methods: ``SamplerOutput.extras["kernel"]``),
``comparison.png`` (input / restored / classical baseline / truth / kernels, and below them the same images cropped
at full resolution around the input's most detailed region) and ``metrics.json`` (PSNR/SSIM of the input, the
result and the baseline against ``truth.png``). The baseline: Wiener deconvolution with the known kernel, or with
the coarse-to-fine estimate (:func:`~monai_diffrecon.recon.estimate_kernel`) for blind deblurring, noise-to-signal
``3σ̂²/var(y)``; TV denoising with ``λ = σ̂``; bicubic upsampling (the input panel) for super-resolution — ``σ̂`` the
MAD noise estimate (:mod:`monai_diffrecon.recon.classical`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.io.rasters import read_array
from monai_diffrecon.io.shape_guard import check_spatial_size, spatial_divisor
from monai_diffrecon.physics import Blur, Downsample, Identity, gaussian_kernel
from monai_diffrecon.recon import estimate_kernel, estimate_noise_std, tv_denoise, wiener
from monai_diffrecon.metrics.alignment import aligned_image_metrics, kernel_rmse
from monai_diffrecon.workflows.base import CaseWorkflow

__all__ = ["NaturalRestoration", "natural_datalist", "read_png", "write_png", "MEASUREMENTS", "detail_crop"]


def detail_crop(img: torch.Tensor, fraction: float = 0.25) -> tuple[tuple[int, int], tuple[int, int]]:
    """``((r0, r1), (c0, c1))``: the square window (side ``fraction`` of the image's shorter side, at least 16 px) with
    the most gradient energy in the 2D image — where a reader compares methods at full resolution."""
    H, W = img.shape[-2:]
    n = max(16, int(min(H, W) * fraction))
    if n >= min(H, W):
        return (0, H), (0, W)
    g = img.double()
    e = torch.zeros_like(g)
    e[:-1] += (g[1:] - g[:-1]) ** 2
    e[:, :-1] += (g[:, 1:] - g[:, :-1]) ** 2
    box = torch.nn.functional.avg_pool2d(e[None, None], n, stride=max(1, n // 4))[0, 0]
    i = int(torch.argmax(box))
    r, c = divmod(i, box.shape[1])
    r0, c0 = r * max(1, n // 4), c * max(1, n // 4)
    return (r0, r0 + n), (c0, c0 + n)

MEASUREMENTS = {"deblur": "blurred.png", "denoise": "noisy.png", "sr": "lowres.png"}


def _measurement(task: str) -> str:
    if task not in MEASUREMENTS:
        raise InvalidValueError(f"task: one of {sorted(MEASUREMENTS)}, got {task!r}")
    return MEASUREMENTS[task]


def read_png(path: str | Path) -> torch.Tensor:
    """A grey PNG as float32 ``(1, 1, H, W)`` in [0, 1] (8- or 16-bit; RGB(A), palette and grey+alpha images are
    converted to luminance, alpha dropped). Typed errors name the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.mode == "P":  # palette indices are not intensities
                im = im.convert("RGBA")
            elif im.mode == "LA":
                im = im.getchannel("L")
            elif im.mode not in ("1", "L", "RGB", "RGBA", "I", "I;16", "I;16B", "I;16L"):
                im = im.convert("RGB")
            a = np.asarray(im)
    except UnidentifiedImageError:
        raise InvalidValueError(f"{path}: not a readable PNG (not an image file)") from None
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise InvalidValueError(f"{path}: not a readable PNG ({type(e).__name__}: {str(e)[:120]})") from None
    if a.ndim == 3:
        a = a[..., :3].astype(np.float64) @ np.array([0.2989, 0.587, 0.114])
        a = a / 255.0
    else:
        a = a.astype(np.float64) / (65535.0 if a.dtype == np.uint16 or a.max(initial=0) > 255 else 255.0)
    if not np.isfinite(a).all() or a.size == 0:
        raise InvalidValueError(f"{path}: empty or non-finite image")
    return torch.from_numpy(a).float()[None, None]


def write_png(path: str | Path, img: torch.Tensor | np.ndarray) -> None:
    """``(H, W)`` values in [0, 1] as a 16-bit grey PNG."""
    from PIL import Image

    a = np.clip(np.asarray(img, dtype=np.float64), 0, 1)
    Image.fromarray((a * 65535 + 0.5).astype(np.uint16)).save(path)


def natural_datalist(input_dir: str | Path, task: str = "deblur") -> list[dict]:
    """Case folders under ``input_dir`` (or ``input_dir`` itself) that hold the task's measurement file."""
    root, name = Path(input_dir), _measurement(task)
    if not root.exists():
        raise InvalidValueError(f"{root}: input folder not found")
    if not root.is_dir():
        raise InvalidValueError(f"{root}: a file; expected a case folder holding {name} (or a folder of case folders)")
    cases = [root] if (root / name).is_file() else sorted(p for p in root.iterdir() if (p / name).is_file())
    return [{"case": str(c)} for c in cases]


def _read_kernel(path: Path) -> torch.Tensor:
    """``kernel.npy`` as a float32 ``(h, w)`` kernel normalised to sum 1; typed errors name the file."""
    k = torch.from_numpy(read_array(path).astype(np.float32))
    if k.ndim != 2 or not bool(torch.isfinite(k).all()) or float(k.sum()) <= 0 or float(k.min()) < 0:
        raise InvalidValueError(f"{path}: a kernel must be a non-negative finite 2D array with a positive sum, "
                                f"got shape {tuple(k.shape)}")
    return k / k.sum()


class NaturalRestoration(CaseWorkflow):
    """Args:
        dataset: items ``{"case": folder}`` (:func:`natural_datalist`). sampler: called as ``sampler(y, Blur(k), …)``.
        blind: the sampler estimates the kernel (returns ``extras["kernel"]``). It starts from ``init_kernel.npy`` if
            the case has one, else from a Gaussian (``kernel_size``, ``init_kernel_sigma``); a ``kernel.npy`` in a blind
            case is the reference kernel, used only for ``kernel_rmse`` in ``metrics.json`` and the comparison picture.
        task: ``deblur``, ``denoise`` or ``sr`` (see module doc). sr_factor: the super-resolution factor.
    """

    def __init__(self, dataset, output_dir, sampler, num_samples: int = 1, seed: int = 0, blind: bool = False, kernel_size: int = 64,
                 init_kernel_sigma: float = 1.0, method: str = "diffusion", task: str = "deblur", sr_factor: int = 4,
                 progress: bool = True, input_dir=None, overwrite: bool = False,
                 device=None) -> None:
        super().__init__(dataset, output_dir, progress, input_dir, overwrite, device)
        self.measurement = _measurement(task)
        if blind and task != "deblur":
            raise InvalidValueError(f"blind restoration estimates a blur kernel: task must be 'deblur', got {task!r}")
        self.task, self.sr_factor = task, int(sr_factor)
        self.sampler, self.num_samples, self.seed, self.blind = sampler, num_samples, seed, blind
        self.kernel_size, self.init_kernel_sigma, self.method = kernel_size, init_kernel_sigma, method

    def _empty(self) -> Exception:
        return InvalidValueError(f"{self.input_dir or 'the dataset'}: no case folder with a {self.measurement}")

    def reconstruct(self, item: dict) -> tuple[dict, dict]:
        t0 = time.perf_counter()
        case = Path(item["case"])
        y = read_png(case / self.measurement)
        f = self.sr_factor if self.task == "sr" else 1  # the prior sees the image at full resolution
        check_spatial_size(case / self.measurement, (y.shape[-2] * f, y.shape[-1] * f), spatial_divisor(self.sampler),
                           "image" if f == 1 else f"super-resolved image (×{f})")
        op, k, ref = self._operator(case, y)
        ys = 2 * y - 1  # the priors' range; every operator here is linear and preserves constants, so the offset commutes
        out = self.sample(ys, op, self.seed, self.num_samples)
        restored = ((out.mean + 1) / 2).clamp(0, 1)[0, 0]
        shown = y if self.task != "sr" else torch.nn.functional.interpolate(y, scale_factor=self.sr_factor, mode="bicubic").clamp(0, 1)
        res = {"blurred": shown[0, 0], "restored": restored, "std": out.std[0, 0] / 2}
        base = self._baseline(y[0, 0], k)
        if base is not None:
            res["baseline"], res["baseline_name"] = base[1].clamp(0, 1).to(restored.dtype), base[0]
        k = out.extras.get("kernel", None if k is None else k[None, None])
        if k is not None:
            res["kernel"] = k[0, 0]
        metrics = {"case": case.name, "task": self.task, "seconds": round(time.perf_counter() - t0, 2), "nfe": out.nfe,
                   "num_samples": self.num_samples}
        if ref is not None and ref.shape == res["kernel"].shape:
            res["kernel_true"] = ref
            metrics["kernel_rmse"] = kernel_rmse(res["kernel"].double(), ref.double())
        if (case / "truth.png").is_file():
            from monai.metrics import PSNRMetric, SSIMMetric

            truth = read_png(case / "truth.png")
            if truth.shape == shown.shape:
                res["truth"] = truth[0, 0]
                # "blurred_*": the input as given (bicubic-upsampled for sr), whatever the task
                for name, x in (("ours", restored), ("blurred", shown[0, 0])) + ((("baseline", res["baseline"]),) if "baseline" in res else ()):
                    metrics[f"{name}_psnr"] = float(PSNRMetric(max_val=1.0)(x[None, None], truth))
                    metrics[f"{name}_ssim"] = float(SSIMMetric(spatial_dims=2, data_range=1.0)(x[None, None], truth))
                if self.blind:  # blind deblurring is defined up to a translation: also score after the best integer shift
                    metrics.update({f"ours_{k}": v for k, v in aligned_image_metrics(restored.double(), truth[0, 0].double()).items()})
        return res, metrics

    def _baseline(self, y: torch.Tensor, k: torch.Tensor | None):
        """``(name, image)`` of the classical baseline (module doc) for the 2D input ``y`` in [0, 1], or ``None``."""
        y = y.double()
        if self.task == "denoise":
            return "TV (λ = σ̂)", tv_denoise(y)
        if self.task != "deblur":
            return None
        if self.blind:
            name, kern = "Wiener, estimated kernel", estimate_kernel(y, k.shape[-1])  # the sampler's kernel support
        else:
            name, kern = "Wiener, known kernel", k.double()
        return name, wiener(y, kern, 3 * estimate_noise_std(y) ** 2 / max(float(y.var()), 1e-12))

    def _operator(self, case: Path, y: torch.Tensor):
        """``(operator, known kernel or None, reference kernel or None)`` for the case."""
        if self.task == "denoise":
            return Identity(), None, None
        if self.task == "sr":
            return Downsample(self.sr_factor), None, None
        kfile, ref = case / "kernel.npy", None
        if self.blind:  # kernel.npy, if present, is the reference only (a blind method must never start from it)
            ref = _read_kernel(kfile) if kfile.is_file() else None
            kfile = case / "init_kernel.npy"
            k = _read_kernel(kfile) if kfile.is_file() else gaussian_kernel(self.init_kernel_sigma, self.kernel_size)
        elif kfile.is_file():
            k = _read_kernel(kfile)
        else:
            raise InvalidValueError(f"{case}: non-blind restoration needs the blur kernel (kernel.npy)")
        if k.shape[-1] > y.shape[-1] or k.shape[-2] > y.shape[-2]:
            if kfile.is_file():
                raise InvalidValueError(f"{kfile}: kernel {tuple(k.shape)} larger than the image {tuple(y.shape[-2:])}")
            raise InvalidValueError(f"{case / self.measurement}: image {tuple(y.shape[-2:])} smaller than the blind "
                                    f"method's kernel {tuple(k.shape)} (kernel_size)")
        return Blur(k), k, ref

    def write(self, out_dir: Path, results: dict, metrics: dict) -> None:
        from monai_diffrecon.data.preview import save_panels

        write_png(out_dir / "restored.png", results["restored"])
        if self.num_samples > 1:
            s = results["std"]
            write_png(out_dir / "std.png", s / max(float(s.max()), 1e-12))
        k = results.get("kernel")
        if self.blind:
            np.save(out_dir / "kernel.npy", k.numpy())
            write_png(out_dir / "kernel.png", k / max(float(k.max()), 1e-12))
        label = {"deblur": "blurred", "denoise": "noisy", "sr": f"low-res (bicubic ×{self.sr_factor})"}[self.task]
        images = [(label, results["blurred"]), (self.method, results["restored"])]
        if "baseline" in results:
            images.append((results["baseline_name"], results["baseline"]))
        if "truth" in results:
            images.append(("truth", results["truth"]))
        panels = [(name, img.numpy(), "gray") for name, img in images]
        if k is not None:
            panels.append(("kernel (estimated)" if self.blind else "kernel", k.numpy(), "magma"))
        if "kernel_true" in results:
            panels.append(("kernel (true)", results["kernel_true"].numpy(), "magma"))
        ncols = max(len(panels), len(images))
        panels += [None] * (ncols - len(panels))  # the crops start a new row
        (r0, r1), (c0, c1) = detail_crop(results["blurred"])
        panels += [(f"{name}, crop", img[r0:r1, c0:c1].numpy(), "gray") for name, img in images]
        title = f"{self.method}: NFE {metrics['nfe']}, {metrics['seconds']} s"
        if "ours_psnr" in metrics:
            title += f" — PSNR {metrics['ours_psnr']:.2f} dB (input {metrics['blurred_psnr']:.2f}"
            title += f", {results['baseline_name']} {metrics['baseline_psnr']:.2f})" if "baseline_psnr" in metrics else ")"
        save_panels(panels, out_dir / "comparison.png", ncols=ncols, title=title, interpolation="nearest")
        (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
