"""Safe output folders: refuse to touch a user's files, write into a staging sibling, rename into place.

The rule (the CLI's ``--output`` and every bundle's ``output_dir`` follow it):

* an output path that does not exist, or is an empty folder, is written;
* an existing **file** is never replaced;
* an existing non-empty folder is replaced only with ``overwrite=True`` (``--overwrite``) **and** only if this package
  wrote it: its ``manifest.json`` (written last by :func:`staged_directory`) says ``"generator": "monai_diffrecon"`` and
  lists every file in the folder with its size and sha256, unchanged — a folder with a foreign or edited file is refused;
* an output equal to an input, inside an input, or containing an input is refused.

Writing goes to a hidden sibling ``.NAME.partial-*`` (same file system), is fsynced, gets its manifest last, and is
renamed into place; a previous output of ours is moved aside first and deleted only after the new one is in place. A
crash or ``kill -9`` at any point leaves the previous output or nothing under the final name — never a half-written
folder that looks complete (the hidden partial folder may remain; it is safe to delete). Every file ends up 0644 and
every folder 0755.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from monai_diffrecon.errors import OutputError

__all__ = ["staged_directory", "check_output", "new_staging", "commit_staging", "is_our_output", "MANIFEST", "GENERATOR"]

MANIFEST = "manifest.json"
GENERATOR = "monai_diffrecon"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(root: Path) -> list[str]:
    """Every non-directory entry under ``root`` (symlinks included, not followed), as sorted relative POSIX paths."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        out += [Path(dirpath, f).relative_to(root).as_posix() for f in filenames]
        out += [Path(dirpath, d).relative_to(root).as_posix() for d in dirnames if Path(dirpath, d).is_symlink()]
    return sorted(out)


def is_our_output(folder: str | os.PathLike) -> bool:
    """True if ``folder`` is an unmodified output of this package: its manifest names us and lists exactly its files,
    each with the recorded size and sha256."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        files = manifest["files"]
        if manifest.get("generator") != GENERATOR or not isinstance(files, dict):
            return False
        present = [f for f in _files(folder) if f != MANIFEST]
        if sorted(files) != present:
            return False
        for name, rec in files.items():
            p = folder / name
            if p.is_symlink() or not p.is_file() or p.stat().st_size != rec["size"] or _sha256(p) != rec["sha256"]:
                return False
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return True


def _resolved(p: str | os.PathLike) -> Path:
    return Path(os.path.realpath(os.path.abspath(os.fspath(p))))


def check_output(final: str | os.PathLike, inputs: Iterable[str | os.PathLike] = (), overwrite: bool = False,
                 owned: Callable[[Path], bool] = is_our_output) -> Path:
    """Apply the module's rule to ``final`` before anything is computed; returns its absolute path.

    Args:
        final: the output folder asked for.
        inputs: paths the run reads (files or folders); the output may not equal, contain or sit inside any of them.
        overwrite: allow replacing a non-empty folder that ``owned`` recognises as ours.
        owned: the ownership test (default :func:`is_our_output`).

    Raises:
        OutputError: naming the output path and the reason, with what to do instead.
    """
    out = _resolved(final)
    for p in inputs:
        if p is None:
            continue
        src = _resolved(p)
        if out == src:
            raise OutputError(f"{final}: the output is the input; choose a new output folder")
        if src in out.parents:
            raise OutputError(f"{final}: the output lies inside the input {p}; choose a folder outside it")
        if out in src.parents:
            raise OutputError(f"{final}: the output contains the input {p}; choose a folder that does not hold the input")
    if os.path.lexists(out):
        if out.is_symlink() or not out.is_dir():
            raise OutputError(f"{final}: exists and is not a folder; refusing to replace a file (choose a new output folder)")
        if any(out.iterdir()):
            if not owned(out):
                raise OutputError(f"{final}: folder exists, is not empty and was not written by diffrecon (or was changed "
                                  "since); refusing to touch it, even with --overwrite — choose a new output folder")
            if not overwrite:
                raise OutputError(f"{final}: folder exists and holds an earlier diffrecon output; pass --overwrite "
                                  "(overwrite=True) to replace it, or choose a new output folder")
    return out


def new_staging(final: str | os.PathLike, name: str | None = None) -> Path:
    """A new hidden staging folder next to ``final`` (``name``: a fixed name shared by cooperating processes, e.g.
    torchrun ranks; created if missing)."""
    final = _resolved(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        if name is not None:
            tmp = final.parent / f".{final.name}.partial-{name}"
            tmp.mkdir(exist_ok=True)
            return tmp
        return Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=final.parent))
    except OSError as e:
        raise OutputError(f"{final}: cannot create the output folder ({e.strerror or e})") from None


def _fsync_tree(root: Path) -> None:
    for dirpath, _, files in os.walk(root):
        os.chmod(dirpath, 0o755)
        for f in files:
            p = os.path.join(dirpath, f)
            if os.path.islink(p):
                continue
            os.chmod(p, 0o644)
            with open(p, "rb") as fh:
                os.fsync(fh.fileno())
        fd = os.open(dirpath, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_manifest(tmp: Path) -> None:
    from monai_diffrecon import __version__

    files = {f: {"size": (tmp / f).stat().st_size, "sha256": _sha256(tmp / f)} for f in _files(tmp) if f != MANIFEST}
    doc = {"generator": GENERATOR, "version": __version__, "files": files}
    (tmp / MANIFEST).write_text(json.dumps(doc, indent=1, sort_keys=True))


def commit_staging(tmp: Path, final: str | os.PathLike, overwrite: bool = False, manifest: bool = True,
                   owned: Callable[[Path], bool] = is_our_output) -> Path:
    """Finish a staging folder: manifest last (``manifest=True``), permissions, fsync, then rename it onto ``final``
    (re-checked now: the rule may have changed since the run started). Removes ``tmp`` if ``final`` is refused."""
    try:
        out = check_output(final, (), overwrite, owned)
        if manifest:
            _write_manifest(tmp)
        _fsync_tree(tmp)
        old = None
        if os.path.lexists(out) and any(out.iterdir()):
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.rmdir(old)
            os.replace(out, old)
        elif os.path.lexists(out):
            os.rmdir(out)  # an empty folder: nothing of the user's to keep
        os.replace(tmp, out)
        fd = os.open(out.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return out
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def staged_directory(final: str | os.PathLike, overwrite: bool = False, *, inputs: Iterable[str | os.PathLike] = (),
                     manifest: bool = True, owned: Callable[[Path], bool] = is_our_output) -> Iterator[Path]:
    """Yield a temporary folder next to ``final``; on success it replaces ``final`` atomically (module doc).

    Args:
        final: the output folder the user asked for.
        overwrite: replace an earlier output of ours (``owned``); a foreign non-empty folder or a file is never replaced.
        inputs: input paths that the output must not equal, contain or sit inside.
        manifest: write ``manifest.json`` (sizes and sha256 of every file, the ownership mark) last. ``False`` for
            folders that must hold nothing else (a DICOM series folder); such a folder is then replaced only if
            ``owned`` says so.
        owned: the ownership test for an existing non-empty ``final``.

    Raises:
        OutputError: before anything is written, if ``final`` may not be written (module doc).

    On an exception inside the block the temporary folder is removed and ``final`` is left untouched.
    """
    check_output(final, inputs, overwrite, owned)
    tmp = new_staging(final)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    commit_staging(tmp, final, overwrite, manifest, owned)
