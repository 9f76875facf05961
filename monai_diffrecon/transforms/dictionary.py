"""Dictionary wrappers of :mod:`monai_diffrecon.transforms.array` (``...d``): they only loop the keys, copy the
``backend``, forward ``set_random_state`` and share one random draw across keys. Output keys are constructor
arguments (``None`` = overwrite the input key)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
from monai.config import KeysCollection
from monai.transforms import MapTransform, RandomizableTransform

from monai_diffrecon.errors import InvalidValueError
from monai_diffrecon.transforms.array import (
    ChannelsToComplex,
    ComplexToChannels,
    LoadKSpace,
    LoadSPECTStudy,
    SelectViews,
    SimulateMeasurement,
    Stack25D,
    ThinCounts,
    UndersampleKSpace,
)

__all__ = [
    "SimulateMeasurementd",
    "ThinCountsd",
    "SelectViewsd",
    "UndersampleKSpaced",
    "Stack25Dd",
    "ComplexToChannelsd",
    "ChannelsToComplexd",
    "LoadSPECTStudyd",
    "LoadKSpaced",
]


def _out_keys(keys, output_keys):
    keys = (keys,) if isinstance(keys, str) else tuple(keys)
    if output_keys is None:
        return keys
    out = (output_keys,) if isinstance(output_keys, str) else tuple(output_keys)
    if len(out) != len(keys):
        raise InvalidValueError(f"output_keys: {len(out)} given for {len(keys)} keys")
    return out


def _present(d: Mapping, key, allow_missing: bool) -> bool:
    """Whether ``key`` is in ``d``; a missing key is skipped with ``allow_missing``, else a typed error."""
    if key in d:
        return True
    if allow_missing:
        return False
    raise InvalidValueError(f"data: key {key!r} not found (keys: {', '.join(map(str, d))}); "
                            "allow_missing_keys=True to skip it")


class _RandMapd(RandomizableTransform, MapTransform):
    """Shared plumbing: one array transform, one draw per call applied to all keys."""

    array_cls: type

    def __init__(self, keys: KeysCollection, output_keys, allow_missing_keys: bool, transform) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob=1.0)
        self.transform = transform
        self.output_keys = _out_keys(self.keys, output_keys)
        self.backend = transform.backend

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None):
        super().set_random_state(seed, state)
        self.transform.set_random_state(seed, state)
        return self

    def _draw(self, first) -> None:
        self.transform.randomize()

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        first = True
        for key, out in zip(self.keys, self.output_keys):
            if not _present(d, key, self.allow_missing_keys):
                continue
            if first:
                self._draw(d[key])
                first = False
            d[out] = self.transform(d[key], randomize=False)
            self._after(d, key)
        return d

    def _after(self, d: dict, key) -> None:
        pass


class SimulateMeasurementd(_RandMapd):
    """Dictionary :class:`SimulateMeasurement` (one noise seed per call, shared by all keys)."""

    def __init__(self, keys: KeysCollection, operator, noise=None, output_keys=None, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, output_keys, allow_missing_keys, SimulateMeasurement(operator, noise))


class ThinCountsd(_RandMapd):
    """Dictionary :class:`ThinCounts`; the dose fraction drawn is stored under ``fraction_key`` if given."""

    def __init__(self, keys: KeysCollection, fraction=(0.01, 0.5), output_keys=None, fraction_key: str | None = None, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, output_keys, allow_missing_keys, ThinCounts(fraction))
        self.fraction_key = fraction_key

    def _after(self, d: dict, key) -> None:
        if self.fraction_key is not None:
            d[self.fraction_key] = self.transform.fraction


class SelectViewsd(_RandMapd):
    """Dictionary :class:`SelectViews` (the same views for every key); indices stored under ``indices_key``."""

    def __init__(self, keys: KeysCollection, num_views, mode: str = "even", axis: int = 1, output_keys=None, indices_key: str | None = None, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, output_keys, allow_missing_keys, SelectViews(num_views, mode, axis))
        self.indices_key = indices_key

    def _draw(self, first) -> None:
        self.transform.randomize(first.shape[self.transform.axis])

    def _after(self, d: dict, key) -> None:
        if self.indices_key is not None:
            d[self.indices_key] = self.transform.indices


class UndersampleKSpaced(_RandMapd):
    """Dictionary :class:`UndersampleKSpace` (one mask for all keys), the mask stored under ``mask_key``."""

    def __init__(self, keys: KeysCollection, acceleration: float = 4.0, center_lines: int = 20, mask_type: str = "random", noise_sigma: float = 0.0,
                 output_keys=None, mask_key: str | None = None, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, output_keys, allow_missing_keys, UndersampleKSpace(acceleration, center_lines, mask_type, noise_sigma))
        self.mask_key = mask_key

    def _draw(self, first) -> None:
        self.transform.randomize(first.shape)

    def _after(self, d: dict, key) -> None:
        if self.mask_key is not None:
            d[self.mask_key] = self.transform.mask


class Stack25Dd(MapTransform):
    """Dictionary :class:`Stack25D`: stacks every key's 2.5D neighbourhood and concatenates them along channels
    into ``output_key`` (e.g. keys ``["osem", "mu"]`` → ``(Z, 2k+1 + 2k+1, X, Y)``)."""

    def __init__(self, keys: KeysCollection, output_key: str, neighbours: int | Sequence[int] = 1, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        ks = [neighbours] * len(self.keys) if isinstance(neighbours, int) else list(neighbours)
        if len(ks) != len(self.keys):
            raise InvalidValueError(f"neighbours: one value, or one per key ({len(self.keys)}), got {len(ks)}")
        self.stackers = [Stack25D(k) for k in ks]
        self.output_key = output_key
        self.backend = Stack25D.backend

    def __call__(self, data):
        import torch

        d = dict(data)
        # stacker i belongs to key i, so a skipped key must not shift the others
        parts = [s(d[k]) for k, s in zip(self.keys, self.stackers) if _present(d, k, self.allow_missing_keys)]
        d[self.output_key] = torch.cat(parts, dim=1)
        return d


class _MapSimple(MapTransform):
    def __init__(self, keys: KeysCollection, transform, output_keys=None, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.transform = transform
        self.output_keys = _out_keys(self.keys, output_keys)
        self.backend = transform.backend

    def __call__(self, data):
        d = dict(data)
        for key, out in self.key_iterator(d, self.output_keys):
            d[out] = self.transform(d[key])
        return d


class ComplexToChannelsd(_MapSimple):
    """Dictionary :class:`ComplexToChannels`."""

    def __init__(self, keys: KeysCollection, output_keys=None, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, ComplexToChannels(), output_keys, allow_missing_keys)


class ChannelsToComplexd(_MapSimple):
    """Dictionary :class:`ChannelsToComplex`."""

    def __init__(self, keys: KeysCollection, output_keys=None, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, ChannelsToComplex(), output_keys, allow_missing_keys)


class LoadKSpaced(_MapSimple):
    """Dictionary :class:`LoadKSpace` (paths in, complex ``MetaTensor`` k-space out)."""

    def __init__(self, keys: KeysCollection, reader: str = "auto", output_keys=None, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, LoadKSpace(reader), output_keys, allow_missing_keys)


class LoadSPECTStudyd(MapTransform):
    """Dictionary :class:`LoadSPECTStudy`: ``d[projections_key]`` (NM file) and ``d[ct_key]`` (CT folder, optional)
    are replaced by the counts and μ ``MetaTensor``s; the projector goes to ``d[projector_key]``, the scatter
    estimate ``(1, V, X, Z)`` (or ``None`` without scatter windows; ``meta["scatter_method"]``) to
    ``d[scatter_key]`` and the CT in HU on the SPECT grid ``(1, X, Y, Z)`` (with a CT) to ``d[ct_hu_key]``; a key
    given as ``None`` is not written."""

    def __init__(self, projections_key: str = "projections", ct_key: str | None = "ct", projector_key: str = "projector", psf="LEHR",
                 energy_window=None, allow_no_attenuation: bool = False, allow_missing_keys: bool = False,
                 scatter: str = "auto", scatter_key: str | None = "scatter", ct_hu_key: str | None = "ct_hu") -> None:
        keys = [projections_key] + ([ct_key] if ct_key else [])
        super().__init__(keys, allow_missing_keys)
        self.loader = LoadSPECTStudy(psf, energy_window, allow_no_attenuation, scatter)
        self.projections_key, self.ct_key, self.projector_key = projections_key, ct_key, projector_key
        self.scatter_key, self.ct_hu_key = scatter_key, ct_hu_key

    def __call__(self, data):
        d = dict(data)
        _present(d, self.projections_key, False)
        ct = d.get(self.ct_key) if self.ct_key else None
        out = self.loader.load(d[self.projections_key], ct)
        d[self.projections_key] = out["counts"]
        if self.ct_key and out["mu"] is not None:
            d[self.ct_key] = out["mu"]
        d[self.projector_key] = out["projector"]
        if self.scatter_key:
            d[self.scatter_key] = out["scatter"]
        if self.ct_hu_key and out["ct_hu"] is not None:
            d[self.ct_hu_key] = out["ct_hu"]
        return d
