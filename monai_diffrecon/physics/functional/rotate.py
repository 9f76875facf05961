"""Rotate-and-sample kernels shared by the SPECT and parallel-beam CT projectors.

Geometry (index units of the transverse grid, one unit = one voxel/pixel):

* The object plane has ``nx × ny`` pixels; pixel ``(i, j)`` sits at ``(i − (nx−1)/2, j − (ny−1)/2)`` relative to
  the centre of rotation.
* At view angle ``θ`` (degrees) the detector's outward normal is ``n(θ) = (−sin θ, −cos θ)`` and its bins run
  along ``e_u(θ) = (cos θ, −sin θ)`` (so ``e_u × n = −1`` at every angle). This is PyTomography's detector-angle
  convention: at ``θ = 0`` the detector sits on the −Y side of the object with bin index increasing along +X;
  at ``θ = 90`` it sits on the −X side with bins increasing along −Y.
* Sample ``(k, l)`` of view ``v`` is at ``u_k e_u + d_l n``: ``u_k`` the bin offset, ``d_l`` the depth offset
  (the detector is on the ``+d`` side, so the largest ``l`` is the closest to the detector).

The object is *pulled* onto the samples with bilinear interpolation (zero outside the grid). The interpolation is
stored as a sparse CSR matrix ``R`` (rows: samples, columns: pixels), so the forward map is ``R x`` and the exact
adjoint is ``Rᵀ y`` — no rotate-back approximation. All functions are stateless; the operator modules keep the
tables as buffers.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "detector_frame",
    "sample_positions",
    "bilinear_matrix",
    "csr_transpose",
    "csr_select_rows",
    "spmm",
    "padded_size",
    "register_csr_pair",
    "apply_csr",
    "CSR",
]

CSR = tuple  # (crow, col, val, (n_rows, n_cols))


def detector_frame(angles_deg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bin direction ``e_u`` and outward detector normal ``n`` for each angle.

    Args:
        angles_deg: ``(V,)`` view angles in degrees (float64 recommended).

    Returns:
        ``(e_u, n)``, each ``(V, 2)`` in the object's ``(X, Y)`` index axes.
    """
    t = torch.deg2rad(angles_deg.to(torch.float64))
    c, s = torch.cos(t), torch.sin(t)
    e_u = torch.stack([c, -s], dim=-1)
    n = torch.stack([-s, -c], dim=-1)
    return e_u, n


def sample_positions(
    nx: int, ny: int, angles_deg: torch.Tensor, bins: torch.Tensor, depths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fractional pixel indices ``(xi, yi)`` of every sample, each ``(V, K, L)`` (float64).

    Args:
        nx, ny: size of the object plane.
        angles_deg: ``(V,)`` angles in degrees.
        bins: ``(K,)`` bin offsets ``u_k`` from the centre of rotation, in pixels.
        depths: ``(L,)`` depth offsets ``d_l`` from the centre of rotation, in pixels (detector on the + side).
    """
    e_u, n = detector_frame(angles_deg)
    u = bins.to(torch.float64)[None, :, None]
    d = depths.to(torch.float64)[None, None, :]
    xi = (nx - 1) / 2 + u * e_u[:, 0, None, None] + d * n[:, 0, None, None]
    yi = (ny - 1) / 2 + u * e_u[:, 1, None, None] + d * n[:, 1, None, None]
    return xi, yi


def _index_dtype(nnz: int) -> torch.dtype:
    return torch.int32 if nnz < 2**31 - 1 else torch.int64


def bilinear_matrix(
    nx: int,
    ny: int,
    angles_deg: torch.Tensor,
    bins: torch.Tensor,
    depths: torch.Tensor,
    depth_weight: float = 1.0,
    fold_depth: bool = False,
    dtype: torch.dtype = torch.float32,
) -> CSR:
    """Sparse bilinear sampling matrix of the rotated sample grid, built view by view.

    Args:
        nx, ny, angles_deg, bins, depths: see :func:`sample_positions`.
        depth_weight: factor applied to every weight (e.g. the ray step length for a line integral).
        fold_depth: if ``True`` the rows of one ray are summed, giving the ray-sum (Radon) matrix with
            ``V·K`` rows; otherwise there is one row per sample (``V·K·L`` rows), ordered ``(v, k, l)``.
        dtype: dtype of the values.

    Returns:
        ``(crow, col, val, (n_rows, nx·ny))``; columns index pixel ``i·ny + j``.
    """
    V, K, L = angles_deg.numel(), bins.numel(), depths.numel()
    dev = angles_deg.device  # the table is built where the angles are (the operators pass CPU angles, then move it)
    rows_per_view = K if fold_depth else K * L
    crow_counts = []
    cols, vals = [], []
    for v in range(V):
        xi, yi = sample_positions(nx, ny, angles_deg[v : v + 1], bins, depths)
        xi, yi = xi[0], yi[0]  # (K, L)
        x0, y0 = torch.floor(xi), torch.floor(yi)
        fx, fy = xi - x0, yi - y0
        row = torch.arange(K, device=dev)[:, None].expand(K, L) if fold_depth else torch.arange(K * L, device=dev).reshape(K, L)
        r_all, c_all, w_all = [], [], []
        for dx, dy, w in (
            (0, 0, (1 - fx) * (1 - fy)),
            (1, 0, fx * (1 - fy)),
            (0, 1, (1 - fx) * fy),
            (1, 1, fx * fy),
        ):
            ii, jj = x0 + dx, y0 + dy
            ok = (ii >= 0) & (ii <= nx - 1) & (jj >= 0) & (jj <= ny - 1) & (w > 0)
            r_all.append(row[ok])
            c_all.append((ii[ok] * ny + jj[ok]).to(torch.int64))
            w_all.append(w[ok] * depth_weight)
        r = torch.cat(r_all)
        c = torch.cat(c_all)
        w = torch.cat(w_all)
        # coalesce duplicates (several samples of one ray hitting the same pixel) and sort by (row, col)
        key = r * (nx * ny) + c
        key, inv = torch.unique(key, sorted=True, return_inverse=True)
        w = torch.zeros(key.numel(), dtype=torch.float64, device=dev).index_add_(0, inv, w)
        r, c = key // (nx * ny), key % (nx * ny)
        crow_counts.append(torch.bincount(r, minlength=rows_per_view))
        cols.append(c)
        vals.append(w)
    counts = torch.cat(crow_counts)
    col = torch.cat(cols)
    val = torch.cat(vals).to(dtype)
    idx = _index_dtype(col.numel())
    crow = torch.zeros(counts.numel() + 1, dtype=torch.int64, device=dev)
    crow[1:] = torch.cumsum(counts, 0)
    return crow.to(idx), col.to(idx), val, (V * rows_per_view, nx * ny)


def csr_transpose(crow: torch.Tensor, col: torch.Tensor, val: torch.Tensor, shape: tuple[int, int]) -> CSR:
    """CSR of the transposed matrix (so the adjoint is also a fast row-major sparse product)."""
    n_rows, n_cols = shape
    counts = crow[1:].to(torch.int64) - crow[:-1].to(torch.int64)
    rows = torch.repeat_interleave(torch.arange(n_rows, dtype=torch.int64, device=crow.device), counts)
    colsi = col.to(torch.int64)
    order = torch.argsort(colsi * n_rows + rows, stable=True)
    t_counts = torch.bincount(colsi, minlength=n_cols)
    t_crow = torch.zeros(n_cols + 1, dtype=torch.int64, device=crow.device)
    t_crow[1:] = torch.cumsum(t_counts, 0)
    idx = crow.dtype
    return t_crow.to(idx), rows[order].to(idx), val[order], (n_cols, n_rows)


def csr_select_rows(crow: torch.Tensor, col: torch.Tensor, val: torch.Tensor, shape: tuple[int, int], rows: torch.Tensor) -> CSR:
    """CSR of the matrix whose row ``i`` is row ``rows[i]`` of the given one (reorder, subset or repeat rows).

    Entries keep their order within each row, so products with the result are bitwise those of the original rows.
    """
    rows = rows.to(device=crow.device, dtype=torch.int64).flatten()
    start = crow.to(torch.int64)[rows]
    counts = crow.to(torch.int64)[rows + 1] - start
    new_crow = torch.zeros(rows.numel() + 1, dtype=torch.int64, device=crow.device)
    new_crow[1:] = torch.cumsum(counts, 0)
    nnz = int(new_crow[-1])
    pos = torch.arange(nnz, dtype=torch.int64, device=crow.device)
    src = pos + torch.repeat_interleave(start - new_crow[:-1], counts, output_size=nnz)
    idx = _index_dtype(max(nnz, shape[1]))
    return new_crow.to(idx), col[src].to(idx), val[src], (rows.numel(), shape[1])


def spmm(crow: torch.Tensor, col: torch.Tensor, val: torch.Tensor, shape: tuple[int, int], dense: torch.Tensor) -> torch.Tensor:
    """``M @ dense`` for the CSR matrix ``(crow, col, val)``; ``dense`` is ``(n_cols, m)``, real.

    The values are cast to ``dense``'s dtype and device. Differentiable with respect to ``dense``.
    """
    if val.dtype != dense.dtype or val.device != dense.device:
        val = val.to(device=dense.device, dtype=dense.dtype)
        crow, col = crow.to(dense.device), col.to(dense.device)
    m = torch.sparse_csr_tensor(crow, col, val, size=shape, check_invariants=False, device=dense.device)
    return torch.sparse.mm(m, dense) if dense.requires_grad else m @ dense


def register_csr_pair(module, prefix: str, csr: CSR, dtype: torch.dtype, device: torch.device) -> None:
    """Register a CSR matrix and its transpose on ``module`` as non-persistent buffers ``{prefix}_crow`` …
    (``{prefix}T_*`` for the transpose); the shapes go to ``module.{prefix}_shape`` / ``{prefix}T_shape``."""
    crow, col, val, shape = csr
    for name, (c, k, v, sh) in ((prefix, csr), (prefix + "T", csr_transpose(crow, col, val, shape))):
        module.register_buffer(f"{name}_crow", c.to(device), persistent=False)
        module.register_buffer(f"{name}_col", k.to(device), persistent=False)
        module.register_buffer(f"{name}_val", v.to(device, dtype), persistent=False)
        setattr(module, f"{name}_shape", sh)


def apply_csr(module, prefix: str, dense: torch.Tensor, transpose: bool = False) -> torch.Tensor:
    """``M @ dense`` (or ``Mᵀ @ dense``) for a pair registered by :func:`register_csr_pair`."""
    name = prefix + ("T" if transpose else "")
    return spmm(
        getattr(module, f"{name}_crow"), getattr(module, f"{name}_col"), getattr(module, f"{name}_val"),
        getattr(module, f"{name}_shape"), dense,
    )


def padded_size(nx: int, ny: int | None = None) -> int:
    """Number of depth samples that span the diagonal of an ``nx × ny`` plane, with the parity of ``nx``.

    For a square plane this is ``n + 2·ceil((√2 − 1)·n / 2)`` (the padding PyTomography uses).
    """
    ny = nx if ny is None else ny
    return nx + 2 * int(math.ceil((math.hypot(nx, ny) - nx) / 2))
