"""Multi-coil Cartesian MRI (SENSE) forward model, 2D and 3D.

Model: ``y_c = M ⊙ F(S_c ⊙ x)`` for coils ``c = 1..C``, with ``F`` the centred orthonormal FFT (fastMRI
convention, :func:`~monai_diffrecon.physics.functional.fftc`), ``S_c`` the complex coil sensitivities and ``M`` a
real, non-negative sampling mask (0/1 or density weights). Adjoint: ``x = Σ_c conj(S_c) ⊙ Fᴴ(M ⊙ y_c)``.

Axes: 2D ``x`` complex ``(B, 1, H, W)``, ``y`` complex ``(B, C, H, W)``; 3D adds a leading spatial axis
``(B, 1, D, H, W)`` and the FFT runs over ``(D, H, W)``. Coil maps are ``(B|1, C, H, W)`` (or ``(B|1, C, D, H, W)``),
the mask broadcasts to ``(B, 1, H, W)`` (e.g. ``(1, 1, 1, W)`` for Cartesian lines along ``H``).
"""

from __future__ import annotations

import torch

from monai_diffrecon.errors import InvalidValueError, ShapeError
from monai_diffrecon.physics.base import LinearOperator, _positive, check_tensor
from monai_diffrecon.physics.functional.fft import centering_phases

__all__ = ["MultiCoilMRI"]


class MultiCoilMRI(LinearOperator):
    """Cartesian SENSE operator ``A x = M ⊙ F(S ⊙ x)`` (one coil with unit map = single-coil MRI).

    Args:
        coil_maps: complex ``(B|1, C, H, W)`` or ``(B|1, C, D, H, W)``; often normalised so ``Σ_c |S_c|² = 1``.
        mask: real, ≥ 0, broadcastable to ``(B, 1, H, W)`` (``(B, 1, D, H, W)`` in 3D); may also be given as
            ``(H, W)`` / ``(W,)``-like trailing shapes, which are right-aligned.

    ``prox_l2`` is closed-form when there is one coil with ``|S| = 1`` everywhere; otherwise CG.
    ``pinv`` is closed-form in the same case, CG otherwise.

    Example:
        >>> import torch
        >>> maps = torch.ones(1, 1, 8, 8, dtype=torch.complex64)
        >>> A = MultiCoilMRI(maps, torch.ones(1, 1, 1, 8))
        >>> x = torch.randn(2, 1, 8, 8, dtype=torch.complex64)
        >>> bool(torch.allclose(A.adjoint(A(x)), x, atol=1e-6))
        True
    """

    in_complex = True
    out_complex = True

    def __init__(self, coil_maps: torch.Tensor, mask: torch.Tensor) -> None:
        super().__init__()
        check_tensor(coil_maps, "coil_maps", complex_=True)
        if coil_maps.ndim not in (4, 5):
            raise ShapeError(
                f"coil_maps: expected (B|1, C, H, W) or (B|1, C, D, H, W), got {tuple(coil_maps.shape)}"
            )
        spatial = tuple(coil_maps.shape[2:])
        nd = len(spatial)
        check_tensor(mask, "mask", complex_=False)
        if mask.ndim > nd + 2:
            raise ShapeError(f"mask: expected at most {nd + 2} dims broadcastable to (B, 1, *{spatial}), got {tuple(mask.shape)}")
        m = mask.reshape((1,) * (nd + 2 - mask.ndim) + tuple(mask.shape))
        for i, (s, n) in enumerate(zip(m.shape[2:], spatial)):
            if s not in (1, n):
                raise ShapeError(f"mask: size {s} along spatial axis {i} does not match coil_maps' {n}")
        if m.shape[1] != 1:
            raise ShapeError(f"mask: channel dim must be 1 (shared by all coils), got {m.shape[1]}")
        if m.shape[0] not in (1, coil_maps.shape[0]) and coil_maps.shape[0] != 1:
            raise ShapeError(f"mask: batch {m.shape[0]} does not match coil_maps batch {coil_maps.shape[0]}")
        if bool((m < 0).any()):
            raise InvalidValueError("mask: must be ≥ 0")
        batch = max(coil_maps.shape[0], m.shape[0])
        b = None if batch == 1 else batch
        self.register_buffer("coil_maps", coil_maps.clone())
        self.register_buffer("mask", m.to(coil_maps.real.dtype).clone())
        self.spatial_shape = spatial
        self.num_coils = coil_maps.shape[1]
        self.in_shape = (b, 1, *spatial)
        self.out_shape = (b, self.num_coils, *spatial)
        self._dims = tuple(range(-nd, 0))
        self._build()
        self.register_load_state_dict_post_hook(lambda module, _: module._build())

    def _build(self) -> None:
        """Fold the centring phase ramps of the centred FFT into the maps and the mask (no shifts at run time):
        ``M ⊙ fftc(S x) = (M b) ⊙ fft((S a) x)`` — see :func:`~monai_diffrecon.physics.functional.centering_phases`."""
        cd, dev = self.coil_maps.dtype, self.coil_maps.device
        a = b = None
        for i, n in enumerate(self.spatial_shape):
            ai, bi = centering_phases(n, cd, dev)
            shape = [1] * len(self.spatial_shape)
            shape[i] = n
            a = ai.reshape(shape) if a is None else a * ai.reshape(shape)
            b = bi.reshape(shape) if b is None else b * bi.reshape(shape)
        self.register_buffer("_maps_mod", self.coil_maps * a, persistent=False)
        self.register_buffer("_post", b, persistent=False)
        self.register_buffer("_mask_mod", self.mask.to(cd) * b, persistent=False)

    @property
    def _unit_single_coil(self) -> bool:
        return self.num_coils == 1 and bool(torch.allclose(self.coil_maps.abs(), self.mask.new_ones(()), atol=1e-6))

    def _fft(self, t: torch.Tensor) -> torch.Tensor:
        return torch.fft.fftn(t, dim=self._dims, norm="ortho")

    def _ifft(self, t: torch.Tensor) -> torch.Tensor:
        return torch.fft.ifftn(t, dim=self._dims, norm="ortho")

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._like(self._mask_mod, x) * self._fft(self._like(self._maps_mod, x) * x)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        maps = self._like(self._maps_mod, y)
        return (maps.conj() * self._ifft(self._like(self._mask_mod, y).conj() * y)).sum(1, keepdim=True)

    # ------------------------------------------------------------------ the multi-coil k-space domain (MSM, SelfDB)
    def expand(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The full multi-coil k-space of an image, ``F(S ⊙ x)`` (complex ``(B, C, …)``), times ``mask`` if given — the
        measurement domain ``z = F S x`` of MSM (arXiv 2505.11853) whatever this operator's own mask is."""
        x = self.check_input(x)
        k = self._like(self._post, x) * self._fft(self._like(self._maps_mod, x) * x)
        return k if mask is None else mask.to(k.real.dtype) * k

    def combine(self, k: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Coil combination of multi-coil k-space, ``Σ_c conj(S_c) ⊙ Fᴴ(k_c)`` (times ``mask`` first, if given) — the
        left inverse of :meth:`expand` for maps with ``Σ_c |S_c|² = 1``; with this operator's 0/1 mask it is the
        adjoint. Complex ``(B, C, …)`` → ``(B, 1, …)``."""
        k = self.check_output(k)
        if mask is not None:
            k = mask.to(k.real.dtype) * k
        maps = self._like(self._maps_mod, k)
        return (maps.conj() * self._ifft(self._like(self._post, k).conj() * k)).sum(1, keepdim=True)

    def restrict(self, mask: torch.Tensor) -> "MultiCoilMRI":
        """The same coils on another sampling mask (e.g. MSM's partial-measurement masks ``S_i``, SelfDB's sub-masks
        ``M̄ ⊂ M``); the mask is taken as given (not intersected with this operator's)."""
        return MultiCoilMRI(self.coil_maps, mask)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        x = self.check_input(x)
        maps = self._like(self._maps_mod, x)
        m2 = self._like(self.mask, x) ** 2
        return (maps.conj() * self._ifft(m2 * self._fft(maps * x))).sum(1, keepdim=True)

    def prox_l2(self, z, y, gamma, tol=1e-6, max_iter=100):
        if not self._unit_single_coil:
            return super().prox_l2(z, y, gamma, tol=tol, max_iter=max_iter)
        # S unitary ⇒ (SᴴFᴴM²FS + I/γ)⁻¹ = Sᴴ Fᴴ (M² + 1/γ)⁻¹ F S  (centring phases folded into S and M)
        z, y = self.check_input(z), self.check_output(y)
        g = _positive(gamma, "gamma", z)
        maps = self._like(self._maps_mod, z)
        mm = self._like(self._mask_mod, z)
        k = (g * mm.conj() * y + self._fft(maps * z)) / (g * mm.abs() ** 2 + 1.0)
        return maps.conj() * self._ifft(k)

    def pinv(self, y, tol=1e-6, max_iter=100):
        if not self._unit_single_coil:
            return super().pinv(y, tol=tol, max_iter=max_iter)
        y = self.check_output(y)
        mm = self._like(self._mask_mod, y)
        m2 = mm.abs() ** 2
        k = torch.where(m2 > 0, mm.conj() * y / torch.where(m2 > 0, m2, torch.ones_like(m2)), torch.zeros_like(y))
        return self._like(self._maps_mod, y).conj() * self._ifft(k)

    def extra_repr(self) -> str:
        return f"coils={self.num_coils}, spatial={self.spatial_shape}, acceleration={self.acceleration():.2f}"

    def acceleration(self) -> float:
        """Nominal acceleration ``N / Σ M`` for a 0/1 mask (for weighted masks the ratio of sums)."""
        full = 1
        for n in self.spatial_shape:
            full *= n
        m = self.mask.expand(self.mask.shape[0], 1, *self.spatial_shape)
        return float(full * m.shape[0] / m.sum().clamp_min(1e-12))
