"""Multi-coil k-space I/O: fastMRI-style HDF5 and ISMRMRD (Cartesian).

fastMRI layout (https://fastmri.org/dataset): dataset ``kspace`` complex ``[slices, coils, H, W]`` (single-coil
files ``[slices, H, W]``), optional ``mask`` ``[W]`` (test sets), ``reconstruction_rss`` ``[slices, h, w]`` and
the ``ismrmrd_header`` XML; file attributes such as ``acquisition``, ``max``, ``norm``, ``patient_id``. k-space is
centred (DC at ``n // 2``, the fastMRI convention our :class:`~monai_diffrecon.physics.MultiCoilMRI` uses).
MONAI's ``FastMRIReader`` returns the same datasets as a plain dict; this reader adds the checks (shape, dtype,
finiteness, mask size) and typed errors. fastMRI files place the phase-encode lines along ``W``.

ISMRMRD (https://ismrmrd.readthedocs.io): acquisitions are placed by ``idx.kspace_encode_step_1`` (line) and
``idx.slice`` into ``[slices, coils, lines, samples]`` with a line mask; noise scans, navigators and phase-correction
lines are skipped; 3D (``kspace_encode_step_2``) and non-Cartesian trajectories are rejected with a clear error.
The result uses the fastMRI axis order with the readout along ``H``… transposed: ``[slices, coils, samples, lines]``,
so lines again run along ``W``.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from monai_diffrecon.errors import DependencyError, KSpaceError

__all__ = ["KSpaceData", "read_fastmri", "write_fastmri", "read_ismrmrd", "write_ismrmrd"]


@dataclass
class KSpaceData:
    """Raw multi-coil data.

    Attributes:
        kspace: complex64 ``(S, C, H, W)`` (S slices, C coils; phase-encode lines along W), centred.
        mask: float32 ``(1, 1, 1, W)`` line mask (1 = acquired) or ``None`` if the file does not say (then every
            line with non-zero data counts as acquired — see :meth:`effective_mask`).
        reconstruction: float32 ``(S, h, w)`` reference image if present (e.g. ``reconstruction_rss``).
        attrs: file attributes (``acquisition``, ``max``, ``norm``, …).
        header: ISMRMRD XML header text, if any.
        path: source file.
    """

    kspace: torch.Tensor
    mask: torch.Tensor | None = None
    reconstruction: torch.Tensor | None = None
    attrs: dict = field(default_factory=dict)
    header: str | None = None
    path: str = ""

    def effective_mask(self) -> torch.Tensor:
        """The file's mask, or the lines whose k-space is not identically zero."""
        if self.mask is not None:
            return self.mask
        nz = (self.kspace.abs().sum(dim=(0, 1, 2)) > 0).float()
        return nz.reshape(1, 1, 1, -1)


def _need_h5py():
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py comes with the test extra
        raise DependencyError("h5py is needed for fastMRI HDF5 files: pip install h5py") from None
    return h5py


def _read(f, key: str, path, real: bool = False) -> np.ndarray:
    """Dataset ``key`` of the open HDF5 file ``f`` as an array (``real``: checked real-numeric, as float32); typed
    errors name the file and the dataset."""
    h5py = _need_h5py()
    if not isinstance(f[key], h5py.Dataset):
        raise KSpaceError(path, f"'{key}' is not a dataset")
    try:
        a = np.asarray(f[key][()])
    except (OSError, ValueError, TypeError) as e:
        raise KSpaceError(path, f"'{key}' cannot be read ({type(e).__name__})") from None
    if real and a.dtype.kind not in "biuf":
        raise KSpaceError(path, f"'{key}' must be real numbers, got {a.dtype}")
    return a.astype(np.float32) if real else a


def read_fastmri(path: str | Path) -> KSpaceData:
    """Read a fastMRI-style HDF5 file (multi-coil or single-coil) with validation.

    Raises:
        KSpaceError: not HDF5, no ``kspace`` dataset, wrong rank/dtype, an empty axis, NaN/Inf, a mask of the wrong
            length.
    """
    h5py = _need_h5py()
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as e:
        raise KSpaceError(path, f"cannot open as HDF5 ({type(e).__name__})") from None
    with f:
        if "kspace" not in f or not isinstance(f["kspace"], h5py.Dataset):
            raise KSpaceError(path, "no 'kspace' dataset")
        ds = f["kspace"]
        if ds.ndim not in (3, 4):
            raise KSpaceError(path, f"'kspace' must be [slices, (coils,) H, W], got shape {ds.shape}")
        if 0 in ds.shape:
            raise KSpaceError(path, f"'kspace' is empty, shape {ds.shape}")
        if ds.size * 8 > 8 * 1024**3:
            raise KSpaceError(path, f"'kspace' of shape {ds.shape} exceeds the 8 GiB limit")
        try:
            k = ds[()]
        except (OSError, ValueError, TypeError) as e:
            raise KSpaceError(path, f"'kspace' cannot be read ({type(e).__name__})") from None
        if np.iscomplexobj(k):
            k = k.astype(np.complex64)
        elif k.dtype.names and set(k.dtype.names) >= {"r", "i"}:  # compound (real, imag) types
            k = (k["r"] + 1j * k["i"]).astype(np.complex64)
        else:
            raise KSpaceError(path, f"'kspace' must be complex, got {k.dtype}")
        if k.ndim == 3:
            k = k[:, None]
        if not np.isfinite(k).all():
            raise KSpaceError(path, "'kspace' contains NaN or Inf")
        W = k.shape[-1]
        mask = None
        if "mask" in f:
            m = _read(f, "mask", path, real=True).reshape(-1)
            if m.size != W:
                raise KSpaceError(path, f"'mask' has {m.size} entries for {W} k-space columns")
            if not np.isin(m, (0.0, 1.0)).all():
                raise KSpaceError(path, "'mask' must be 0/1")
            mask = torch.from_numpy(m).reshape(1, 1, 1, W)
        rec = None
        for key in ("reconstruction_rss", "reconstruction_esc", "reconstruction"):
            if key in f:
                r = _read(f, key, path, real=True)
                if r.ndim != 3 or r.shape[0] != k.shape[0]:
                    raise KSpaceError(path, f"'{key}' shape {r.shape} does not match {k.shape[0]} slices")
                rec = torch.from_numpy(r)
                break
        header = None
        if "ismrmrd_header" in f:
            raw = _read(f, "ismrmrd_header", path)[()]
            header = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        try:
            attrs = {k2: (v.item() if hasattr(v, "item") else v) for k2, v in f.attrs.items()}
        except (OSError, ValueError, TypeError) as e:
            raise KSpaceError(path, f"file attributes cannot be read ({type(e).__name__})") from None
    return KSpaceData(torch.from_numpy(np.ascontiguousarray(k)), mask, rec, attrs, header, str(path))


def write_fastmri(
    path: str | Path,
    kspace: torch.Tensor | np.ndarray,
    mask: torch.Tensor | np.ndarray | None = None,
    reconstruction_rss: torch.Tensor | np.ndarray | None = None,
    attrs: dict | None = None,
    header: str | None = None,
) -> Path:
    """Write a fastMRI-style HDF5 file (temporary name, then renamed into place)."""
    h5py = _need_h5py()
    k = kspace.detach().cpu().numpy() if isinstance(kspace, torch.Tensor) else np.asarray(kspace)
    if not np.iscomplexobj(k) or k.ndim != 4:
        raise KSpaceError(path, f"kspace must be complex [slices, coils, H, W], got {k.dtype} {k.shape}")
    if not np.isfinite(k).all():
        raise KSpaceError(path, "kspace contains NaN or Inf; refusing to write")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("kspace", data=k.astype(np.complex64))
            if mask is not None:
                m = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
                f.create_dataset("mask", data=m.reshape(-1).astype(bool))
            if reconstruction_rss is not None:
                r = reconstruction_rss.detach().cpu().numpy() if isinstance(reconstruction_rss, torch.Tensor) else np.asarray(reconstruction_rss)
                f.create_dataset("reconstruction_rss", data=r.astype(np.float32))
            if header is not None:
                f.create_dataset("ismrmrd_header", data=header.encode("utf-8"))
            for key, v in (attrs or {}).items():
                f.attrs[key] = v
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _need_ismrmrd():
    try:
        import ismrmrd
    except ImportError:  # pragma: no cover
        raise DependencyError("the ismrmrd package is needed for ISMRMRD files: pip install ismrmrd") from None
    return ismrmrd


_SKIP_FLAGS = (
    "ACQ_IS_NOISE_MEASUREMENT",
    "ACQ_IS_NAVIGATION_DATA",
    "ACQ_IS_PHASECORR_DATA",
    "ACQ_IS_DUMMYSCAN_DATA",
    "ACQ_IS_HPFEEDBACK_DATA",
    "ACQ_IS_RTFEEDBACK_DATA",
)


def read_ismrmrd(path: str | Path, group: str = "dataset") -> KSpaceData:
    """Assemble Cartesian 2D multi-slice ISMRMRD acquisitions into ``(S, C, samples, lines)`` k-space + line mask.

    Raises:
        KSpaceError: unreadable file, non-Cartesian trajectory, 3D encoding, inconsistent coil/sample counts, or
            indices outside the encoding limits.
    """
    ismrmrd = _need_ismrmrd()
    if not Path(path).is_file():
        raise KSpaceError(path, "no such file")
    try:
        dset = ismrmrd.Dataset(str(path), group, create_if_needed=False)
    except Exception as e:  # noqa: BLE001 - the library raises assorted types
        raise KSpaceError(path, f"cannot open as ISMRMRD ({type(e).__name__})") from None
    try:
        xml = dset.read_xml_header()
        xml = xml.decode("utf-8", "replace") if isinstance(xml, bytes) else str(xml)
        hdr = ismrmrd.xsd.CreateFromDocument(xml)
        enc = hdr.encoding[0]
        if str(getattr(enc.trajectory, "value", enc.trajectory)).lower() != "cartesian":
            raise KSpaceError(path, f"trajectory {enc.trajectory} is not Cartesian")
        lines = int(enc.encodedSpace.matrixSize.y)
        if int(enc.encodedSpace.matrixSize.z) > 1:
            raise KSpaceError(path, "3D encoding (kspace_encode_step_2) is not supported")
        lim = enc.encodingLimits
        n_slices = int(lim.slice.maximum) + 1 if lim.slice is not None else 1
        n = dset.number_of_acquisitions()
        acqs = []
        for i in range(n):
            a = dset.read_acquisition(i)
            if any(a.is_flag_set(getattr(ismrmrd, fl)) for fl in _SKIP_FLAGS):
                continue
            acqs.append(a)
    except KSpaceError:
        raise
    except Exception as e:  # noqa: BLE001
        raise KSpaceError(path, f"ISMRMRD header/acquisitions unreadable ({type(e).__name__})") from None
    finally:
        try:
            dset.close()
        except Exception:  # noqa: BLE001
            pass
    if not acqs:
        raise KSpaceError(path, "no imaging acquisitions")
    coils, samples = acqs[0].active_channels, acqs[0].number_of_samples
    k = np.zeros((n_slices, coils, samples, lines), dtype=np.complex64)
    mask = np.zeros(lines, dtype=np.float32)
    for a in acqs:
        if a.active_channels != coils or a.number_of_samples != samples:
            raise KSpaceError(path, "acquisitions differ in coil or sample count")
        ky, sl = int(a.idx.kspace_encode_step_1), int(a.idx.slice)
        if not (0 <= ky < lines and 0 <= sl < n_slices):
            raise KSpaceError(path, f"line {ky} / slice {sl} outside the encoding limits ({lines} lines, {n_slices} slices)")
        data = np.asarray(a.data)
        if not np.isfinite(data).all():
            raise KSpaceError(path, "acquisition data contains NaN or Inf")
        k[sl, :, :, ky] = data
        mask[ky] = 1.0
    return KSpaceData(torch.from_numpy(k), torch.from_numpy(mask).reshape(1, 1, 1, lines), None, {}, xml, str(path))


def write_ismrmrd(path: str | Path, kspace: torch.Tensor | np.ndarray, mask: torch.Tensor | np.ndarray | None = None, group: str = "dataset") -> Path:
    """Write ``(S, C, samples, lines)`` Cartesian k-space as ISMRMRD acquisitions (acquired lines only)."""
    ismrmrd = _need_ismrmrd()
    k = kspace.detach().cpu().numpy() if isinstance(kspace, torch.Tensor) else np.asarray(kspace)
    S, C, NS, L = k.shape
    m = np.ones(L) if mask is None else (mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)).reshape(-1)
    x = ismrmrd.xsd
    space = x.encodingSpaceType(matrixSize=x.matrixSizeType(x=NS, y=L, z=1), fieldOfView_mm=x.fieldOfViewMm(x=float(NS), y=float(L), z=5.0))
    lim = x.encodingLimitsType(
        kspace_encoding_step_1=x.limitType(minimum=0, maximum=L - 1, center=L // 2),
        slice=x.limitType(minimum=0, maximum=S - 1, center=0),
    )
    enc = x.encodingType(encodedSpace=space, reconSpace=space, encodingLimits=lim, trajectory=x.trajectoryType("cartesian"))
    hdr = x.ismrmrdHeader(
        experimentalConditions=x.experimentalConditionsType(H1resonanceFrequency_Hz=63_870_000),
        acquisitionSystemInformation=x.acquisitionSystemInformationType(receiverChannels=C),
        encoding=[enc],
    )
    path = Path(path)
    path.unlink(missing_ok=True)
    dset = ismrmrd.Dataset(str(path), group, create_if_needed=True)
    try:
        dset.write_xml_header(x.ToXML(hdr, "utf-8"))
        for s in range(S):
            for ky in np.nonzero(m)[0]:
                a = ismrmrd.Acquisition.from_array(np.ascontiguousarray(k[s, :, :, ky]).astype(np.complex64))
                a.idx.kspace_encode_step_1 = int(ky)
                a.idx.slice = s
                a.center_sample = NS // 2
                dset.append_acquisition(a)
    finally:
        dset.close()
    return path
