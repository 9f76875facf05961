"""Parallel-hole SPECT projector: rotate-and-sum with attenuation and a depth-dependent collimator response.

Model, for view ``v`` at angle ``θ_v``, detector bin ``k`` and axial slice ``z``::

    y[v, k, z] = Σ_l Σ_{k', z'} G_{v,l}(k, k') H_{v,l}(z, z') · a_v(k', l, z') · (R_v x)(k', l, z')

* ``R_v`` pulls the object onto the rotated grid (bilinear; detector bins along ``e_u``, depth ``l`` along the
  detector normal, see :mod:`monai_diffrecon.physics.functional.rotate` for the angle convention);
* ``a_v = exp(−∫ μ)`` is the survival probability from each sample to the detector face, the integral taken over
  the rotated μ-map from the sample (half a voxel of its own) to the detector, μ in cm⁻¹;
* ``G, H`` are Gaussian blurs along the detector bins and the axial direction with
  ``FWHM = a + b·(r_v − d_l)`` mm, ``r_v`` the distance of the collimator face from the centre of rotation at
  view ``v`` and ``d_l`` the signed depth of the sample plane (towards the detector is positive);
* the sum over ``l`` is the projection. Every factor is an explicit linear map, so :meth:`SPECTProjector.adjoint`
  is the exact transpose (adjoint test ~1e-16 in float64), not a rotate-back approximation.

Axes: ``x`` is ``(B, 1, X, Y, Z)`` activity per voxel (Z axial); ``y`` is ``(B, 1, V, X, Z)`` expected counts per
detector bin; the detector has ``X`` bins of the transverse voxel size and ``Z`` rows of the axial voxel size.
Computation: view by view — the sparse rotation of one view's non-empty depth planes, the attenuation factor, one batched
product for the axial blur and one dense product for the bin blur and the depth sum together; the adjoint runs the
same steps transposed. Memory: a pass holds one view's ``L·X·B·Z`` values (``L ≈ 1.42·X``; ~1.5 MB at 64³ float32)
besides the tables: the attenuation factors (``≤ V·L·X·Z``, ~80 MB at 64³ / 60 views) and the blur matrices
(``R·L·X²``, plus ``R·L·Z²`` unless ``Z = X`` with isotropic voxels; ``R`` distinct radii).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from monai_diffrecon.errors import InvalidValueError, ShapeError
from monai_diffrecon.physics.base import LinearOperator, check_angles, check_tensor
from monai_diffrecon.physics.functional.devices import device_of
from monai_diffrecon.physics.functional.psf import FWHM_TO_SIGMA, fwhm_at_distance, gaussian_toeplitz
from monai_diffrecon.physics.functional.rotate import (
    apply_csr,
    bilinear_matrix,
    csr_select_rows,
    csr_transpose,
    padded_size,
    register_csr_pair,
    spmm,
)

__all__ = ["CollimatorPSF", "SPECTProjector", "LEHR"]


@dataclass(frozen=True)
class CollimatorPSF:
    """Depth-dependent Gaussian collimator–detector response ``FWHM(d) = fwhm0_mm + slope·d`` (``d`` in mm).

    Args:
        fwhm0_mm: FWHM at the collimator face (mm), intrinsic and collimator resolution combined.
        slope: FWHM increase per mm of source–collimator distance (dimensionless).
    """

    fwhm0_mm: float
    slope: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.fwhm0_mm) and math.isfinite(self.slope)) or self.fwhm0_mm < 0 or self.slope < 0:
            raise InvalidValueError(f"psf: fwhm0_mm and slope must be finite and ≥ 0, got {self}")

    def fwhm(self, distance_mm: torch.Tensor) -> torch.Tensor:
        return fwhm_at_distance(self.fwhm0_mm, self.slope, distance_mm)


#: A low-energy high-resolution collimator, approximately (FWHM ≈ 7.5 mm at 10 cm).
LEHR = CollimatorPSF(fwhm0_mm=2.0, slope=0.055)


def _voxel_size(v: float | Sequence[float]) -> tuple[float, float, float]:
    vs = (float(v),) * 3 if isinstance(v, (int, float)) else tuple(float(t) for t in v)
    if len(vs) != 3 or not all(math.isfinite(t) and t > 0 for t in vs):
        raise InvalidValueError(f"voxel_size_mm: expected a positive float or 3 positive floats, got {v}")
    if abs(vs[0] - vs[1]) > 1e-6 * vs[0]:
        raise InvalidValueError(f"voxel_size_mm: transverse voxels must be square (X == Y), got {vs}")
    return vs


class SPECTProjector(LinearOperator):
    """Parallel-hole SPECT forward model with attenuation and collimator response (exact adjoint).

    Args:
        angles_deg: ``(V,)`` detector angles in degrees, PyTomography's detector-angle convention: at ``θ`` the
            collimator face's outward normal is ``(−sin θ, −cos θ)`` in the object's ``(X, Y)`` axes and bins run
            along ``(cos θ, −sin θ)`` (θ = 0: detector on the −Y side, bins along +X).
        voxel_size_mm: voxel size, a float or ``(sx, sy, sz)`` with ``sx == sy``; detector bins use ``sx``/``sz``.
        attenuation_map: μ in cm⁻¹ on the object grid, ``(X, Y, Z)`` (leading singleton dims allowed), ≥ 0.
        psf: :class:`CollimatorPSF` or ``(fwhm0_mm, slope)``; ``None`` for no collimator blur.
        object_shape: ``(X, Y, Z)``; required when there is no attenuation map.
        radii_mm: ``(V,)`` or scalar distance from the centre of rotation to the collimator face; required with
            ``psf``.
        view_chunk: kept for compatibility (stored, passed on by :meth:`select_views`); the projector works one view at
            a time, which is both the fastest and the smallest in memory.
        dtype: dtype of the stored tables (``float32`` default; ``.double()`` converts).

    Example:
        >>> import torch
        >>> P = SPECTProjector(torch.arange(0, 360, 6.0), 4.0, object_shape=(32, 32, 8))
        >>> y = P(torch.ones(1, 1, 32, 32, 8))
        >>> tuple(y.shape)
        (1, 1, 60, 32, 8)
    """

    in_complex = False
    out_complex = False

    def __init__(
        self,
        angles_deg: torch.Tensor | Sequence[float],
        voxel_size_mm: float | Sequence[float],
        attenuation_map: torch.Tensor | None = None,
        psf: CollimatorPSF | tuple[float, float] | None = None,
        *,
        object_shape: Sequence[int] | None = None,
        radii_mm: torch.Tensor | Sequence[float] | float | None = None,
        view_chunk: int = 8,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        dev = device_of(angles_deg, attenuation_map, radii_mm)  # the buffers go where the tensors given are (else CPU)
        angles = check_angles(angles_deg).to(dev)
        V = angles.numel()
        sx, _, sz = _voxel_size(voxel_size_mm)

        mu = None
        if attenuation_map is not None:
            mu = torch.as_tensor(attenuation_map, device=dev)
            while mu.ndim > 3 and mu.shape[0] == 1:
                mu = mu[0]
            check_tensor(mu, "attenuation_map", (None, None, None), complex_=False)
            if bool((mu < 0).any()):
                raise InvalidValueError(f"attenuation_map: μ must be ≥ 0 cm⁻¹, min is {float(mu.min()):.4g}")
            if float(mu.max()) > 5.0:
                raise InvalidValueError(
                    f"attenuation_map: max μ = {float(mu.max()):.4g} cm⁻¹ is not physical (HU passed instead of μ?)"
                )
            if object_shape is not None and tuple(object_shape) != tuple(mu.shape):
                raise ShapeError(f"object_shape {tuple(object_shape)} differs from attenuation_map {tuple(mu.shape)}")
            object_shape = tuple(mu.shape)
        if object_shape is None:
            raise ShapeError("object_shape: required (X, Y, Z) when no attenuation_map is given")
        object_shape = tuple(int(s) for s in object_shape)
        if len(object_shape) != 3 or min(object_shape) < 1:
            raise ShapeError(f"object_shape: expected (X, Y, Z) positive, got {object_shape}")

        if psf is not None and not isinstance(psf, CollimatorPSF):
            psf = CollimatorPSF(*psf)
        if radii_mm is not None:
            radii = torch.as_tensor(radii_mm, dtype=torch.float64, device=dev).flatten()
            if radii.numel() == 1:
                radii = radii.expand(V).clone()
            if radii.numel() != V:
                raise ShapeError(f"radii_mm: expected {V} values (one per view) or a scalar, got {radii.numel()}")
            if not bool(torch.isfinite(radii).all()) or bool((radii <= 0).any()):
                raise InvalidValueError("radii_mm: must be finite and > 0")
        elif psf is not None:
            raise InvalidValueError("radii_mm: required with psf (collimator-face distance from the centre, per view)")
        else:
            radii = None

        self.object_shape = object_shape
        self.psf = psf
        self.view_chunk = max(1, int(view_chunk))
        X, Y, Z = object_shape
        self.in_shape = (None, 1, X, Y, Z)
        self.out_shape = (None, 1, V, X, Z)
        self.register_buffer("angles_deg", angles.to(dtype))
        self.register_buffer("voxel_size_mm", torch.tensor([sx, sx, sz], dtype=dtype, device=dev))
        self.register_buffer("radii_mm", None if radii is None else radii.to(dtype))
        self.register_buffer("attenuation_map", None if mu is None else mu.to(dtype).clone())
        self._build(dtype)
        self.register_load_state_dict_post_hook(lambda module, _: module._build(module.voxel_size_mm.dtype))

    # ------------------------------------------------------------------ tables
    def _build(self, dtype: torch.dtype) -> None:
        """(Re)compute the derived tables from the persistent parameters.

        Layout (chosen for speed; the values are those of the model in the module doc):

        * the rotation matrix ``R_v`` of each view keeps only the depth planes ``l ∈ [lo_v, lo_v + n_v)`` that hold a
          non-zero weight (planes outside the object's grid are exactly zero) with rows ordered ``(l, k)``; its
          transpose is stored per view too, so both directions are one cache-sized sparse product per view;
        * ``_att`` holds the survival probabilities of the kept planes of all views, ``(Σ_v n_v, K, Z)``;
        * the collimator blurs are ``_gu (R, L, K, K)`` along the bins and ``_gz (R, L, Z, Z)`` axially (``None`` when it equals ``_gu``: ``Z = K`` and ``sz = sx``), ``R``
          distinct radii; ``_gu[r]`` viewed as ``(L·K, K)`` is ``[G_0 … G_{L−1}]ᵀ``, so the bin blur and the sum over
          depth are one dense product per view.
        """
        X, Y, Z = self.object_shape
        dev = self.angles_deg.device
        angles = self.angles_deg.detach().to("cpu", torch.float64)  # the tables are built on the CPU, then moved
        V, K, L = angles.numel(), X, padded_size(X, Y)
        sx, sz = float(self.voxel_size_mm[0]), float(self.voxel_size_mm[2])
        bins = torch.arange(K, dtype=torch.float64, device="cpu") - (K - 1) / 2
        depths = torch.arange(L, dtype=torch.float64, device="cpu") - (L - 1) / 2
        self._dims = (V, K, L)
        crow, col, val, shape = bilinear_matrix(X, Y, angles, bins, depths, dtype=torch.float64)  # rows (v, k, l)

        # depth planes with a non-zero weight, per view
        counts = (crow[1:].to(torch.int64) - crow[:-1].to(torch.int64)).reshape(V, K, L).sum(1) > 0  # (V, L)
        planes, rows = [], []
        for v in range(V):
            nz = torch.nonzero(counts[v]).flatten()
            lo, n = (int(nz[0]), int(nz[-1]) - int(nz[0]) + 1) if nz.numel() else (0, 0)
            planes.append((lo, n))
            ll, kk = torch.meshgrid(torch.arange(lo, lo + n, device="cpu"), torch.arange(K, device="cpu"), indexing="ij")
            rows.append((v * K * L + kk * L + ll).flatten())
        fcrow, fcol, fval, _ = csr_select_rows(crow, col, val, shape, torch.cat(rows))
        fcrow = fcrow.to(torch.int64)
        mu = None if self.attenuation_map is None else self.attenuation_map.detach().to("cpu", torch.float64).reshape(X * Y, Z)
        crows, cols, vals, bcrows, bcols, bvals, atts, nnz_off, row0 = [], [], [], [], [], [], [], [0], 0
        for lo, n in planes:
            a, b = int(fcrow[row0]), int(fcrow[row0 + n * K])
            lcrow = fcrow[row0 : row0 + n * K + 1] - a
            if mu is not None:  # planes beyond lo + n − 1 hold no μ, so the path sums start at the last kept plane
                mu_rot = spmm(lcrow, fcol[a:b], fval[a:b], (n * K, X * Y), mu).reshape(n, K, Z)
                # path from the sample to the detector (+l side): samples beyond it plus half of its own voxel
                path = torch.flip(torch.cumsum(torch.flip(mu_rot, dims=(0,)), dim=0), dims=(0,)).sub_(mu_rot, alpha=0.5)
                atts.append(torch.exp(path.mul_(-sx / 10.0)).to(dtype))  # μ in cm⁻¹, step in cm
            tc, tk, tv, _ = csr_transpose(lcrow, fcol[a:b], fval[a:b], (n * K, X * Y))
            crows.append(lcrow)
            cols.append(fcol[a:b])
            vals.append(fval[a:b])
            bcrows.append(tc.to(torch.int64))
            bcols.append(tk.to(torch.int64))
            bvals.append(tv)
            nnz_off.append(nnz_off[-1] + b - a)
            row0 += n * K
        self._planes = planes
        self.register_buffer("_att", torch.cat(atts).to(dev) if mu is not None else None, persistent=False)  # (Σ n_v, K, Z)
        self._set_rotation(torch.cat(crows), torch.cat(cols), torch.cat(vals), torch.stack(bcrows), torch.cat(bcols),
                           torch.cat(bvals), nnz_off, dtype, dev)

        gu = gz = None
        self._ridx = None
        if self.psf is not None:
            radii = self.radii_mm.detach().to("cpu", torch.float64)
            uniq, ridx = torch.unique(radii, return_inverse=True)
            dist = uniq[:, None] - depths[None, :] * sx  # (R, L) mm from each depth plane to the collimator face
            sigma_mm = self.psf.fwhm(dist) * FWHM_TO_SIGMA
            gu = gaussian_toeplitz(sigma_mm / sx, K).to(dev, dtype)  # (R, L, K, K), symmetric
            if not (Z == K and sz == sx):  # else the axial blur is the bin blur: one table serves both
                gz = gaussian_toeplitz(sigma_mm / sz, Z).to(dev, dtype)  # (R, L, Z, Z), symmetric
            self._ridx = ridx.tolist()
        self.register_buffer("_gu", gu, persistent=False)
        self.register_buffer("_gz", gz, persistent=False)

    def _set_rotation(self, crow, col, val, bcrow, bcol, bval, nnz_off, dtype, dev) -> None:
        """Register the per-view rotation tables (forward rows and transposes), concatenated over views."""
        idx = torch.int32 if max(int(col.numel()), self.object_shape[0] * self.object_shape[1] + 1) < 2**31 - 1 else torch.int64
        self.register_buffer("_fw_crow", crow.to(dev, idx), persistent=False)
        self.register_buffer("_fw_col", col.to(dev, idx), persistent=False)
        self.register_buffer("_fw_val", val.to(dev, dtype), persistent=False)
        self.register_buffer("_bw_crow", bcrow.to(dev, idx), persistent=False)  # (V, X·Y + 1)
        self.register_buffer("_bw_col", bcol.to(dev, idx), persistent=False)
        self.register_buffer("_bw_val", bval.to(dev, dtype), persistent=False)
        self._nnz_off = list(nnz_off)
        crow_off, plane_off = [0], [0]
        for _, n in self._planes:
            crow_off.append(crow_off[-1] + n * self._dims[1] + 1)
            plane_off.append(plane_off[-1] + n)
        self._crow_off, self._plane_off = crow_off, plane_off

    # --------------------------------------------------------------- operator
    def _rot(self, v: int, dense: torch.Tensor, val: torch.Tensor, transpose: bool = False) -> torch.Tensor:
        """``R_v dense`` (rows ``(l, k)`` of the view's planes) or ``R_vᵀ dense`` for view ``v``."""
        X, Y, _ = self.object_shape
        K = self._dims[1]
        n = self._planes[v][1] * K
        a, b = self._nnz_off[v], self._nnz_off[v + 1]
        if transpose:
            return spmm(self._bw_crow[v], self._bw_col[a:b], val[a:b], (X * Y, n), dense)
        c0 = self._crow_off[v]
        return spmm(self._fw_crow[c0 : c0 + n + 1], self._fw_col[a:b], val[a:b], (n, X * Y), dense)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        X, Y, Z = self.object_shape
        V, K, L = self._dims
        B = x.shape[0]
        grad = torch.is_grad_enabled() and x.requires_grad
        xm = x[:, 0].permute(1, 2, 0, 3).reshape(X * Y, B * Z)
        val = self._like(self._fw_val, x)
        att = None if self._att is None else self._like(self._att, x)
        gu = None if self._gu is None else self._like(self._gu, x)
        gz = gu if self._gz is None else self._like(self._gz, x)
        out = []
        for v, (lo, n) in enumerate(self._planes):
            if n == 0:
                out.append(x.new_zeros(K, B * Z))
                continue
            s = self._rot(v, xm, val)  # (n·K, B·Z), planes lo … lo + n − 1
            if att is not None:
                a = att[self._plane_off[v] : self._plane_off[v + 1], :, None, :]
                s = s.view(n, K, B, Z) * a if grad else s.view(n, K, B, Z).mul_(a)
            if gu is None:
                out.append(s.reshape(n, K * B * Z).sum(0).view(K, B * Z))
            else:
                r = self._ridx[v]
                t = torch.bmm(s.reshape(n, K * B, Z), gz[r, lo : lo + n])  # axial blur (G = Gᵀ)
                # bin blur and depth sum in one product: [G_lo … G_{lo+n−1}] · [t_lo; …], the G_l stacked as (L·K, K)
                out.append(gu[r].view(L * K, K)[lo * K : (lo + n) * K].T @ t.view(n * K, B * Z))
        y = torch.stack(out)  # (V, K, B·Z)
        return y.view(V, K, B, Z).permute(2, 0, 1, 3).unsqueeze(1)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        X, Y, Z = self.object_shape
        V, K, L = self._dims
        B = y.shape[0]
        grad = torch.is_grad_enabled() and y.requires_grad
        yv = y[:, 0].permute(1, 2, 0, 3).reshape(V, K, B * Z)
        val = self._like(self._bw_val, y)
        att = None if self._att is None else self._like(self._att, y)
        gu = None if self._gu is None else self._like(self._gu, y)
        gz = gu if self._gz is None else self._like(self._gz, y)
        acc = y.new_zeros(X * Y, B * Z)
        for v, (lo, n) in enumerate(self._planes):
            if n == 0:
                continue
            if gu is None:
                t = yv[v].expand(n, K, B * Z)
            else:
                r = self._ridx[v]
                c = gu[r].view(L * K, K)[lo * K : (lo + n) * K] @ yv[v]  # (n·K, B·Z): G_lᵀ = G_l per plane
                t = torch.bmm(c.view(n, K * B, Z), gz[r, lo : lo + n])
            if att is not None:
                a = att[self._plane_off[v] : self._plane_off[v + 1], :, None, :]
                t = t.reshape(n, K, B, Z) * a if (grad or gu is None) else t.view(n, K, B, Z).mul_(a)
            part = self._rot(v, t.reshape(n * K, B * Z), val, transpose=True)
            acc = acc + part if grad else acc.add_(part)
        return acc.reshape(X, Y, B, Z).permute(2, 0, 1, 3).unsqueeze(1)

    # ------------------------------------------------------------ derived ops
    @classmethod
    def from_nm(cls, nm, attenuation_map: torch.Tensor | None = None, psf: CollimatorPSF | tuple[float, float] | None = None, **kwargs) -> SPECTProjector:
        """Projector for the geometry of :class:`~monai_diffrecon.io.NMProjections` (angles, voxel size, radii, grid).

        Args:
            nm: the projections read by :func:`~monai_diffrecon.io.read_nm_projections`.
            attenuation_map: μ in cm⁻¹ on ``nm``'s reconstruction grid (e.g. :func:`~monai_diffrecon.io.ct_to_mu_on_grid`).
            psf: collimator response; needs the file's RadialPosition.
        """
        if psf is not None and nm.radii_mm is None:
            raise InvalidValueError("psf: the NM file has no RadialPosition, so the collimator response cannot be modelled")
        return cls(nm.angles_deg, nm.voxel_size_mm, attenuation_map, psf, object_shape=nm.object_shape,
                   radii_mm=nm.radii_mm, **kwargs)

    @property
    def num_views(self) -> int:
        return self._dims[0]

    def select_views(self, index: torch.Tensor | Sequence[int]) -> SPECTProjector:
        """A projector for a subset of the views (OSEM subsets, few-view acquisitions); shares μ and PSF.

        The subset's tables are sliced from this projector's (each view's tables depend on that view alone), so
        no table is recomputed; the result equals a projector built from the subset's angles and radii.
        """
        idx = torch.as_tensor(index, dtype=torch.long, device=self.angles_deg.device).flatten()
        if idx.numel() == 0 or int(idx.min()) < 0 or int(idx.max()) >= self.num_views:
            raise ShapeError(f"index: view indices must lie in [0, {self.num_views}), got {idx.tolist()}")
        sel = [int(i) for i in idx.tolist()]
        dev = self.angles_deg.device
        new = type(self).__new__(type(self))
        LinearOperator.__init__(new)
        new.object_shape, new.psf, new.view_chunk = self.object_shape, self.psf, self.view_chunk
        X, Y, Z = self.object_shape
        V, K, L = len(sel), self._dims[1], self._dims[2]
        new.in_shape, new.out_shape = (None, 1, X, Y, Z), (None, 1, V, X, Z)
        new.register_buffer("angles_deg", self.angles_deg[idx].detach().clone())
        new.register_buffer("voxel_size_mm", self.voxel_size_mm.detach().clone())
        new.register_buffer("radii_mm", None if self.radii_mm is None else self.radii_mm[idx].detach().clone())
        new.register_buffer("attenuation_map", None if self.attenuation_map is None else self.attenuation_map.detach().clone())
        new._dims = (V, K, L)
        new._planes = [self._planes[v] for v in sel]

        def pieces(t: torch.Tensor, off: list[int]) -> torch.Tensor:
            return torch.cat([t[off[v] : off[v + 1]] for v in sel])

        new.register_buffer("_att", None if self._att is None else pieces(self._att, self._plane_off), persistent=False)

        nnz = [0]
        for v in sel:
            nnz.append(nnz[-1] + self._nnz_off[v + 1] - self._nnz_off[v])
        new._set_rotation(pieces(self._fw_crow, self._crow_off), pieces(self._fw_col, self._nnz_off),
                          pieces(self._fw_val, self._nnz_off), self._bw_crow[idx], pieces(self._bw_col, self._nnz_off),
                          pieces(self._bw_val, self._nnz_off), nnz, self._fw_val.dtype, dev)
        new._ridx = None if self._ridx is None else [self._ridx[v] for v in sel]
        new.register_buffer("_gu", self._gu, persistent=False)  # shared: indexed by radius, not by view
        new.register_buffer("_gz", self._gz, persistent=False)
        new.register_load_state_dict_post_hook(lambda module, _: module._build(module.voxel_size_mm.dtype))
        return new

    def few_view(self, num_views: int) -> tuple[SPECTProjector, torch.Tensor]:
        """Keep ``num_views`` views spread evenly over the acquisition; returns ``(projector, view_indices)``."""
        if not 1 <= num_views <= self.num_views:
            raise ShapeError(f"num_views: must be in [1, {self.num_views}], got {num_views}")
        idx = torch.floor(torch.arange(num_views, dtype=torch.float64, device=self.angles_deg.device) * self.num_views / num_views).long()
        return self.select_views(idx), idx

    def extra_repr(self) -> str:
        V, K, L = self._dims
        return (
            f"views={V}, object_shape={self.object_shape}, voxel_size_mm={tuple(round(float(v), 4) for v in self.voxel_size_mm)}, "
            f"attenuation={self.attenuation_map is not None}, psf={self.psf}"
        )


class _DenseSPECTProjector(SPECTProjector):
    """The original implementation, kept as the reference for tests and ``benchmarks/spect_projector_speed.py``.

    Same model and constructor as :class:`SPECTProjector`; it rotates all views into one ``(V, K, L, B, Z)`` array and
    blurs every depth plane with dense ``K×K`` and ``Z×Z`` Gaussian matrices gathered per view chunk (``torch.bmm``),
    and :meth:`select_views` rebuilds every table. Not part of the public API.
    """

    def _build(self, dtype: torch.dtype) -> None:
        """(Re)compute the derived tables from the persistent parameters."""
        X, Y, Z = self.object_shape
        dev = self.angles_deg.device
        angles = self.angles_deg.detach().to("cpu", torch.float64)  # the tables are built on the CPU, then moved
        V, K, L = angles.numel(), X, padded_size(X, Y)
        sx, sz = float(self.voxel_size_mm[0]), float(self.voxel_size_mm[2])
        bins = torch.arange(K, dtype=torch.float64, device="cpu") - (K - 1) / 2
        depths = torch.arange(L, dtype=torch.float64, device="cpu") - (L - 1) / 2
        self._dims = (V, K, L)
        crow, col, val, shape = csr = bilinear_matrix(X, Y, angles, bins, depths, dtype=torch.float64)
        register_csr_pair(self, "_rot", csr, dtype, dev)

        att = None
        if self.attenuation_map is not None:
            mu = self.attenuation_map.detach().to("cpu", torch.float64).reshape(X * Y, Z)
            mu_rot = spmm(crow, col, val, shape, mu).reshape(V, K, L, Z)
            step_cm = sx / 10.0
            # path from the sample to the detector (+l side): samples beyond it plus half of its own voxel
            path = torch.flip(torch.cumsum(torch.flip(mu_rot, dims=(2,)), dim=2), dims=(2,)) - 0.5 * mu_rot
            att = torch.exp(-path * step_cm).to(dev, dtype)
        self.register_buffer("_att", att, persistent=False)

        gu = gz = ridx = None
        if self.psf is not None:
            radii = self.radii_mm.detach().to("cpu", torch.float64)
            uniq, ridx = torch.unique(radii, return_inverse=True)
            dist = uniq[:, None] - depths[None, :] * sx  # (R, L) mm from each depth plane to the collimator face
            sigma_mm = self.psf.fwhm(dist) * FWHM_TO_SIGMA
            gu = gaussian_toeplitz(sigma_mm / sx, K).to(dev, dtype)  # (R, L, K, K)
            gz = gaussian_toeplitz(sigma_mm / sz, Z).to(dev, dtype)  # (R, L, Z, Z)
            ridx = ridx.to(dev)
        self.register_buffer("_gu", gu, persistent=False)
        self.register_buffer("_gz", gz, persistent=False)
        self.register_buffer("_ridx", ridx, persistent=False)

    # --------------------------------------------------------------- operator
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        X, Y, Z = self.object_shape
        V, K, L = self._dims
        B = x.shape[0]
        xm = x[:, 0].permute(1, 2, 0, 3).reshape(X * Y, B * Z)
        s = apply_csr(self, "_rot", xm).reshape(V, K, L, B, Z)
        if self._att is not None:
            s = s * self._like(self._att, x)[:, :, :, None, :]
        if self._gu is None:
            y = s.sum(2)
        else:
            y = torch.empty(V, K, B, Z, dtype=x.dtype, device=x.device)
            for v0 in range(0, V, self.view_chunk):
                v1 = min(V, v0 + self.view_chunk)
                n = (v1 - v0) * L
                gu, gz = self._psf_mats(v0, v1, x)
                t = s[v0:v1].permute(0, 2, 1, 3, 4).reshape(n, K, B * Z)
                t = torch.bmm(gu, t).reshape(n, K * B, Z)  # blur along detector bins
                t = torch.bmm(t, gz.transpose(1, 2))  # blur along the axial direction
                y[v0:v1] = t.reshape(v1 - v0, L, K, B, Z).sum(1)
        return y.permute(2, 0, 1, 3).unsqueeze(1)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        X, Y, Z = self.object_shape
        V, K, L = self._dims
        B = y.shape[0]
        yv = y[:, 0].permute(1, 2, 0, 3)  # (V, K, B, Z)
        if self._gu is None:
            s = yv[:, :, None].expand(V, K, L, B, Z)
        else:
            s = torch.empty(V, K, L, B, Z, dtype=y.dtype, device=y.device)
            for v0 in range(0, V, self.view_chunk):
                v1 = min(V, v0 + self.view_chunk)
                n = (v1 - v0) * L
                gu, gz = self._psf_mats(v0, v1, y)
                t = yv[v0:v1, None].expand(v1 - v0, L, K, B, Z).reshape(n, K * B, Z)
                t = torch.bmm(t, gz)  # adjoint of right-multiplication by gzᵀ
                t = torch.bmm(gu.transpose(1, 2), t.reshape(n, K, B * Z))
                s[v0:v1] = t.reshape(v1 - v0, L, K, B, Z).permute(0, 2, 1, 3, 4)
        if self._att is not None:
            s = s * self._like(self._att, y)[:, :, :, None, :]
        xm = apply_csr(self, "_rot", s.reshape(V * K * L, B * Z), transpose=True)
        return xm.reshape(X, Y, B, Z).permute(2, 0, 1, 3).unsqueeze(1)

    def _psf_mats(self, v0: int, v1: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        V, K, L = self._dims
        Z = self.object_shape[2]
        idx = self._ridx[v0:v1]
        gu = self._like(self._gu, like)[idx].reshape(-1, K, K)
        gz = self._like(self._gz, like)[idx].reshape(-1, Z, Z)
        return gu, gz

    def select_views(self, index: torch.Tensor | Sequence[int]) -> SPECTProjector:
        """Rebuilds the tables for the subset (the original behaviour)."""
        idx = torch.as_tensor(index, dtype=torch.long, device=self.angles_deg.device).flatten()
        if idx.numel() == 0 or int(idx.min()) < 0 or int(idx.max()) >= self.num_views:
            raise ShapeError(f"index: view indices must lie in [0, {self.num_views}), got {idx.tolist()}")
        return type(self)(
            self.angles_deg[idx].detach().cpu(),
            tuple(float(v) for v in self.voxel_size_mm),
            None if self.attenuation_map is None else self.attenuation_map.detach().cpu(),
            self.psf,
            object_shape=self.object_shape,
            radii_mm=None if self.radii_mm is None else self.radii_mm[idx].detach().cpu(),
            view_chunk=self.view_chunk,
            dtype=self.voxel_size_mm.dtype,
        ).to(self.angles_deg.device)
