"""MONAI array transforms for reconstruction data (logic lives here; ``dictionary.py`` only wraps).

All inputs are channel-first without a batch axis (MONAI convention). Random transforms derive their torch
generator from MONAI's ``self.R`` (``set_random_state`` makes them reproducible); a dictionary wrapper draws once
and applies the same draw to every key.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from monai.config import NdarrayOrTensor
from monai.transforms import RandomizableTransform, Transform
from monai.utils import TransformBackends

from monai_diffrecon.errors import InvalidValueError, ShapeError
from monai_diffrecon.physics import LinearOperator, equispaced_mask, poisson_disc_mask, random_lines_mask
from monai_diffrecon.physics.functional.devices import binomial, randn_like

__all__ = [
    "SimulateMeasurement",
    "ThinCounts",
    "SelectViews",
    "UndersampleKSpace",
    "Stack25D",
    "ComplexToChannels",
    "ChannelsToComplex",
    "LoadSPECTStudy",
    "LoadKSpace",
]


def _torch_gen(R: np.random.RandomState) -> torch.Generator:
    """A CPU generator seeded from MONAI's random state (draws are moved to the data's device)."""
    return torch.Generator(device="cpu").manual_seed(int(R.randint(0, 2**31 - 1)))


def _as_tensor(x: NdarrayOrTensor) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(x, device="cpu")


class SimulateMeasurement(RandomizableTransform):
    """``y = noise(A x)``: apply a forward operator (and an optional noise model) to one image.

    Args:
        operator: a :class:`~monai_diffrecon.physics.LinearOperator`; the image gets a batch axis for it.
        noise: a noise module called as ``noise(y, generator=g)`` (e.g. ``PoissonNoise``), or ``None``.
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, operator: LinearOperator, noise: torch.nn.Module | None = None) -> None:
        RandomizableTransform.__init__(self, prob=1.0)
        self.operator = operator
        self.noise = noise
        self._gen: torch.Generator | None = None

    def randomize(self, data=None) -> None:
        super().randomize(None)
        self._gen = _torch_gen(self.R)

    def __call__(self, img: NdarrayOrTensor, randomize: bool = True) -> torch.Tensor:
        if randomize or self._gen is None:
            self.randomize()
        y = self.operator(_as_tensor(img)[None])
        if self.noise is not None:
            y = self.noise(y, generator=self._gen)
        return y[0]


class ThinCounts(RandomizableTransform):
    """Low-dose emission data by binomial thinning: keep each count with probability ``fraction``.

    Args:
        fraction: a float in (0, 1], or ``(low, high)`` to draw it log-uniformly per call (e.g. ``(0.01, 0.5)`` for
            the 1–50 % doses of DiffSPECT-3D).
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, fraction: float | tuple[float, float] = (0.01, 0.5)) -> None:
        RandomizableTransform.__init__(self, prob=1.0)
        lo, hi = (fraction, fraction) if isinstance(fraction, (int, float)) else fraction
        if not 0 < lo <= hi <= 1:
            raise InvalidValueError(f"fraction: need 0 < low ≤ high ≤ 1, got {fraction}")
        self.range = (float(lo), float(hi))
        self.fraction = float(lo)
        self._gen: torch.Generator | None = None

    def randomize(self, data=None) -> None:
        super().randomize(None)
        lo, hi = self.range
        self.fraction = float(math.exp(self.R.uniform(math.log(lo), math.log(hi)))) if hi > lo else lo
        self._gen = _torch_gen(self.R)

    def __call__(self, img: NdarrayOrTensor, randomize: bool = True) -> torch.Tensor:
        if randomize or self._gen is None:
            self.randomize()
        c = _as_tensor(img)
        if bool((c < 0).any()) or not bool(torch.equal(c, c.round())):
            raise InvalidValueError("img: counts must be non-negative integers for binomial thinning")
        out = binomial(c.double(), torch.full_like(c, self.fraction, dtype=torch.float64), self._gen)
        return out.to(c.dtype)


class SelectViews(RandomizableTransform):
    """Keep a subset of projection views (few-view SPECT/CT).

    Args:
        num_views: views to keep, or ``(low, high)`` to draw the number per call (inclusive).
        mode: ``"even"`` (evenly spaced, random start offset) or ``"random"`` (any subset, sorted).
        axis: the view axis of the channel-first array (``1`` for ``(C, V, X, Z)`` projections).

    After a call, :attr:`indices` holds the kept view indices (the dictionary wrapper stores them under its
    ``indices_key`` so a matching projector can be built with ``SPECTProjector.select_views``).
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, num_views: int | tuple[int, int], mode: str = "even", axis: int = 1) -> None:
        RandomizableTransform.__init__(self, prob=1.0)
        if mode not in ("even", "random"):
            raise InvalidValueError(f"mode: 'even' or 'random', got {mode!r}")
        self.range = (num_views, num_views) if isinstance(num_views, int) else tuple(num_views)
        if self.range[0] < 1:
            raise InvalidValueError(f"num_views: must be ≥ 1, got {num_views}")
        self.mode, self.axis = mode, axis
        self.indices: torch.Tensor | None = None

    def randomize(self, total: int) -> None:
        super().randomize(None)
        n = int(self.R.randint(self.range[0], self.range[1] + 1))
        if n > total:
            raise ShapeError(f"num_views: {n} requested, only {total} views")
        if self.mode == "even":
            off = self.R.uniform(0, total / n)
            idx = np.floor(off + np.arange(n) * total / n).astype(np.int64) % total
        else:
            idx = self.R.choice(total, n, replace=False)
        self.indices = torch.as_tensor(np.sort(idx), device="cpu")

    def __call__(self, img: NdarrayOrTensor, randomize: bool = True) -> torch.Tensor:
        t = _as_tensor(img)
        if randomize or self.indices is None:
            self.randomize(t.shape[self.axis])
        return torch.index_select(t, self.axis, self.indices.to(t.device))


class UndersampleKSpace(RandomizableTransform):
    """Cartesian undersampling of k-space ``(C, H, W)`` (complex, centred) with an optional noise floor.

    Args:
        acceleration: nominal acceleration R.
        center_lines: fully sampled ACS lines (or ACS block size for ``poisson``).
        mask_type: ``"random"`` lines (fastMRI rule), ``"equispaced"`` lines, ``"poisson"`` (2D variable density).
        noise_sigma: std of complex Gaussian noise added to the acquired samples (per real component).

    After a call :attr:`mask` holds the mask, broadcastable to ``(1, H, W)``.
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, acceleration: float = 4.0, center_lines: int = 20, mask_type: str = "random", noise_sigma: float = 0.0) -> None:
        RandomizableTransform.__init__(self, prob=1.0)
        if mask_type not in ("random", "equispaced", "poisson"):
            raise InvalidValueError(f"mask_type: random, equispaced or poisson, got {mask_type!r}")
        self.acceleration, self.center_lines, self.mask_type, self.noise_sigma = acceleration, center_lines, mask_type, noise_sigma
        self.mask: torch.Tensor | None = None
        self._gen: torch.Generator | None = None

    def randomize(self, shape: Sequence[int]) -> None:
        super().randomize(None)
        self._gen = _torch_gen(self.R)
        H, W = shape[-2], shape[-1]
        if self.mask_type == "random":
            m = random_lines_mask(W, self.acceleration, self.center_lines, generator=self._gen)[0]
        elif self.mask_type == "equispaced":
            m = equispaced_mask(W, int(self.acceleration), self.center_lines, offset=int(self.R.randint(0, int(self.acceleration))))[0]
        else:
            m = poisson_disc_mask((H, W), self.acceleration, (self.center_lines, self.center_lines), generator=self._gen)[0]
        self.mask = m

    def __call__(self, img: NdarrayOrTensor, randomize: bool = True) -> torch.Tensor:
        k = _as_tensor(img)
        if not k.is_complex() or k.ndim != 3:
            raise ShapeError(f"img: expected complex k-space (C, H, W), got {k.dtype} {tuple(k.shape)}")
        if randomize or self.mask is None:
            self.randomize(k.shape)
        m = self.mask.to(device=k.device, dtype=k.real.dtype)
        out = k * m
        if self.noise_sigma > 0:
            out = out + self.noise_sigma * randn_like(k, self._gen) * m
        return out


class Stack25D(Transform):
    """2.5D stacks: each axial slice with its ``neighbours`` slices on either side as channels.

    ``(1, X, Y, Z)`` → ``(Z, 2k+1, X, Y)`` (replicate padding at the volume ends): a batch of slices for a 2D network
    that sees 3D context (DiffSPECT-3D, DDPET-3D). Several volumes (e.g. the low-dose OSEM image and the CT μ-map)
    are stacked by the dictionary wrapper along the channel axis.
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, neighbours: int = 1) -> None:
        if neighbours < 0:
            raise InvalidValueError(f"neighbours: must be ≥ 0, got {neighbours}")
        self.neighbours = neighbours

    def __call__(self, img: NdarrayOrTensor) -> torch.Tensor:
        v = _as_tensor(img)
        if v.ndim != 4 or v.shape[0] != 1:
            raise ShapeError(f"img: expected (1, X, Y, Z), got {tuple(v.shape)}")
        Z, k = v.shape[-1], self.neighbours
        idx = (torch.arange(Z, device=v.device)[:, None] + torch.arange(-k, k + 1, device=v.device)[None]).clamp(0, Z - 1)  # (Z, 2k+1)
        return v[0][..., idx].permute(2, 3, 0, 1).contiguous()  # (X, Y, Z, 2k+1) → (Z, 2k+1, X, Y)


class ComplexToChannels(Transform):
    """Complex ``(C, ...)`` → real ``(2C, ...)``, channels interleaved ``[Re 0, Im 0, Re 1, Im 1, …]``."""

    backend = [TransformBackends.TORCH]

    def __call__(self, img: NdarrayOrTensor) -> torch.Tensor:
        t = _as_tensor(img)
        if not t.is_complex():
            raise ShapeError(f"img: expected a complex tensor, got {t.dtype}")
        return torch.view_as_real(t).movedim(-1, 1).reshape(t.shape[0] * 2, *t.shape[1:]).contiguous()


class ChannelsToComplex(Transform):
    """Inverse of :class:`ComplexToChannels`: real ``(2C, ...)`` → complex ``(C, ...)``."""

    backend = [TransformBackends.TORCH]

    def __call__(self, img: NdarrayOrTensor) -> torch.Tensor:
        t = _as_tensor(img)
        if t.is_complex() or t.shape[0] % 2:
            raise ShapeError(f"img: expected a real tensor with an even channel count, got {t.dtype} {tuple(t.shape)}")
        r = t.reshape(t.shape[0] // 2, 2, *t.shape[1:]).movedim(1, -1).contiguous()
        return torch.view_as_complex(r.float() if r.dtype not in (torch.float32, torch.float64) else r)


class LoadSPECTStudy(Transform):
    """NM TOMO projections (+ CT series) → counts, μ-map and the matching projector, with consistency checks.

    ``__call__(projections_path, ct_path=None)`` returns ``(counts, mu, projector)``:

    * ``counts`` — ``MetaTensor (1, V, X, Z)`` with ``meta`` ``angles_deg``, ``radii_mm``, ``affine_lps`` (grid),
      ``dicom_source`` (projections + CT lineage), ``scatter_method``;
    * ``mu`` — ``MetaTensor (1, X, Y, Z)`` μ in cm⁻¹ on the SPECT grid with its RAS affine (``None`` without CT);
    * ``projector`` — :class:`~monai_diffrecon.physics.SPECTProjector` (attenuation if CT, PSF if ``psf`` and the
      file has radial positions).

    :meth:`load` returns these and two more, as a dict: ``scatter`` — ``MetaTensor (1, V, X, Z)`` expected photopeak
    scatter counts estimated from the file's scatter windows (TEW/DEW, :func:`~monai_diffrecon.io.dicom.estimate_scatter`;
    the additive term of OSEM and of the consistency step), ``None`` without scatter windows or with
    ``scatter="none"``; ``ct_hu`` — ``MetaTensor (1, X, Y, Z)`` the CT in HU resampled to the SPECT grid (−1000 outside
    the CT), ``None`` without CT.

    Args:
        psf: collimator response (``"LEHR"``, a :class:`~monai_diffrecon.physics.CollimatorPSF` or ``None``).
        energy_window: photopeak window (1-based index or name); default: the reader's choice.
        allow_no_attenuation: accept a study without CT.
        scatter: ``"auto"`` (TEW if both adjacent windows, else DEW, else none), ``"tew"``, ``"dew"`` or ``"none"``.

    Checks (typed errors): a CT is required unless ``allow_no_attenuation``; projections and CT must share PatientID
    and StudyInstanceUID (and FrameOfReferenceUID when both have one); the CT must cover the SPECT field of view; an
    explicit ``scatter`` method needs its windows; scatter windows must not overlap the photopeak.
    """

    def __init__(self, psf="LEHR", energy_window: int | str | None = None, allow_no_attenuation: bool = False,
                 scatter: str = "auto") -> None:
        from monai_diffrecon.physics import LEHR

        if scatter not in ("auto", "tew", "dew", "none"):
            raise InvalidValueError(f"scatter: 'auto', 'tew', 'dew' or 'none', got {scatter!r}")
        self.psf = LEHR if psf == "LEHR" else psf
        self.energy_window = energy_window
        self.allow_no_attenuation = allow_no_attenuation
        self.scatter = scatter

    @staticmethod
    def _check_pairing(nm, ct, where) -> None:
        from monai_diffrecon.errors import DicomError

        a, b = nm.source.header, ct.meta["dicom_source"].header
        for kw in ("PatientID", "StudyInstanceUID"):
            if str(a.get(kw, "")) != str(b.get(kw, "")):
                raise DicomError(where, f"projections and CT differ in {kw} (different patient or study)", kw)
        fa, fb = str(a.get("FrameOfReferenceUID", "")), str(b.get("FrameOfReferenceUID", ""))
        if fa and fb and fa != fb:
            raise DicomError(where, "projections and CT are in different frames of reference", "FrameOfReferenceUID")

    def load(self, projections_path, ct_path=None) -> dict:
        """``{"counts", "mu", "projector", "scatter", "ct_hu"}`` (see the class doc; absent items are ``None``)."""
        from monai.data import MetaTensor

        from monai_diffrecon.errors import DicomError
        from monai_diffrecon.io.dicom import (
            ct_hu_on_grid,
            estimate_scatter,
            hu_to_mu,
            lps_to_ras,
            read_ct_series,
            read_nm_projections,
        )
        from monai_diffrecon.physics import SPECTProjector

        nm = read_nm_projections(projections_path, self.energy_window)
        try:
            scatter, method = estimate_scatter(nm, self.scatter)
        except DicomError as e:  # name the file, not the instance UID
            raise DicomError(projections_path, e.problem, e.tag) from e
        mu_t, mu, hu_t = None, None, None
        source = nm.source
        grid_ras = torch.from_numpy(lps_to_ras(nm.affine))
        if ct_path is None:
            if not self.allow_no_attenuation:
                raise DicomError(projections_path, "no CT given: attenuation cannot be modelled (allow_no_attenuation=True to proceed without)")
        else:
            ct = read_ct_series(ct_path)
            self._check_pairing(nm, ct, ct_path)
            hu = ct_hu_on_grid(ct, nm)
            mu = hu_to_mu(hu).float()
            if float((mu > 0.05).float().mean()) < 0.02:
                raise DicomError(ct_path, "the CT does not overlap the SPECT field of view (μ-map is air)")
            source = source.merged(ct.meta["dicom_source"])
            mu_t = MetaTensor(mu[None], affine=grid_ras, meta={"space": "RAS", "units": "cm^-1"})
            hu_t = MetaTensor(hu[None], affine=grid_ras.clone(), meta={"space": "RAS", "units": "HU"})
        psf = self.psf if (self.psf is not None and nm.radii_mm is not None) else None
        projector = SPECTProjector.from_nm(nm, mu, psf)
        meta = {
            "angles_deg": nm.angles_deg,
            "radii_mm": nm.radii_mm,
            "affine_lps": nm.affine,
            "dicom_source": source,
            "warnings": list(nm.warnings),
            "filename_or_obj": str(projections_path),
            "scatter_method": method,
        }
        counts = MetaTensor(nm.counts[0], affine=torch.eye(4, dtype=torch.float64, device="cpu"), meta=meta)
        sc_t = None
        if scatter is not None:
            sc_meta = {"scatter_method": method, "units": "counts", "filename_or_obj": str(projections_path)}
            sc_t = MetaTensor(scatter[0], affine=torch.eye(4, dtype=torch.float64, device="cpu"), meta=sc_meta)
        return {"counts": counts, "mu": mu_t, "projector": projector, "scatter": sc_t, "ct_hu": hu_t}

    def __call__(self, projections_path, ct_path=None):
        out = self.load(projections_path, ct_path)
        return out["counts"], out["mu"], out["projector"]


class LoadKSpace(Transform):
    """fastMRI HDF5 / ISMRMRD file → ``MetaTensor`` complex k-space ``(S, C, H, W)``; ``meta["mask"]`` is the
    line mask ``(1, 1, 1, W)`` (from the file, else the non-zero lines)."""

    def __init__(self, reader: str = "auto") -> None:
        if reader not in ("auto", "fastmri", "ismrmrd"):
            raise InvalidValueError(f"reader: auto, fastmri or ismrmrd, got {reader!r}")
        self.reader = reader

    def __call__(self, path) -> torch.Tensor:
        from monai.data import MetaTensor

        from monai_diffrecon.io.kspace import read_fastmri, read_ismrmrd

        kind = self.reader
        if kind == "auto":
            kind = "ismrmrd" if str(path).endswith((".mrd", ".ismrmrd")) else "fastmri"
        data = read_ismrmrd(path) if kind == "ismrmrd" else read_fastmri(path)
        meta = {"mask": data.effective_mask(), "attrs": data.attrs, "filename_or_obj": str(path), "reader": kind}
        if data.reconstruction is not None:
            meta["reconstruction"] = data.reconstruction
        return MetaTensor(data.kspace, meta=meta)
