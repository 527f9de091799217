"""Write aside, then rename: the one implementation every writer of the package uses.

A file or folder appears under its final name complete or not at all, even after a kill
(SIGKILL, power loss): it is written and fsynced under a staging name in the same folder
(same file system, so the final ``os.replace`` is atomic), then renamed. Replacing an
existing folder takes two renames (old aside, new in); an error puts the old one back.

Staging names are ``.e2p-staging-<pid>-<token>-<final name>``: the final name keeps its
suffix (writers such as ffmpeg choose the format by it), the pid tells
:func:`clean_stale_staging` whether the writer is still alive. Files are created with mode
0644 (``tempfile`` would give 0600), like every other output.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

STAGING_PREFIX = ".e2p-staging-"
FILE_MODE = 0o644


def staging_path(final: str | os.PathLike) -> Path:
    """A fresh staging name beside ``final`` (see the module docstring)."""
    final = Path(final)
    return final.parent / f"{STAGING_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-{final.name}"


def fsync_path(path: str | os.PathLike) -> None:
    """Flush a file's (or a folder's entries') data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: str | os.PathLike) -> None:
    """fsync every file under ``path`` (a file or a folder), then the folders themselves."""
    path = Path(path)
    if path.is_file():
        fsync_path(path)
        return
    for root, _dirs, files in os.walk(path):
        for name in files:
            fsync_path(os.path.join(root, name))
        fsync_path(root)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a staging path to write ``path``'s contents to; on success it is fsynced, made
    0644 and renamed to ``path`` (replacing any old file); on any error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = staging_path(path)
    try:
        yield staged
        os.chmod(staged, FILE_MODE)
        fsync_path(staged)
        os.replace(staged, path)
    except BaseException:
        _remove(staged)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """``path.write_bytes(data)``, atomically."""
    with atomic_file(path) as staged:
        staged.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """``path.write_text(text)`` (UTF-8), atomically."""
    return write_bytes_atomic(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_files(folder: str | os.PathLike, names: list[str]) -> Iterator[dict[str, Path]]:
    """Several files in one folder, all or nothing: yields ``{name: staging path}``; on
    success every staged file is synced and renamed into place, on error all are removed."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    staged = {name: staging_path(folder / name) for name in names}
    try:
        yield staged
        for path in staged.values():
            os.chmod(path, FILE_MODE)
            fsync_path(path)
        for name, path in staged.items():
            os.replace(path, folder / name)
    except BaseException:
        for path in staged.values():
            _remove(path)
        raise


def publish_folder(staged: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Move the complete folder ``staged`` to ``target`` (same file system), replacing a
    previous ``target`` in two renames; if the second rename fails the old one is put back."""
    staged, target = Path(staged), Path(target)
    fsync_tree(staged)
    old = None
    if target.exists():
        old = staging_path(target.parent / f"replaced-{target.name}")
        os.replace(target, old)
    try:
        os.replace(staged, target)
    except BaseException:
        if old is not None and not target.exists():
            os.replace(old, target)
        raise
    if old is not None:
        _remove(old)
    return target


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty staging folder beside ``path``; on success it replaces ``path``
    (:func:`publish_folder`), on any error it is removed and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = staging_path(path)
    staged.mkdir()
    try:
        yield staged
        publish_folder(staged, path)
    except BaseException:
        _remove(staged)
        raise


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def clean_stale_staging(folder: str | os.PathLike, *, legacy_prefixes: tuple[str, ...] = (),
                        recursive: bool = False) -> list[Path]:
    """Remove staging files and folders in ``folder`` (and its subfolders with ``recursive``)
    whose writer process is gone (a killed run); those of live processes are left alone.
    ``legacy_prefixes``: older staging names of the same ``<prefix><pid>-...`` shape.
    Returns what was removed."""
    prefixes = (STAGING_PREFIX, *legacy_prefixes)
    removed: list[Path] = []
    if not Path(folder).is_dir():
        return removed
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            prefix = next((p for p in prefixes if name.startswith(p)), None)
            if prefix is None:
                continue
            pid = name[len(prefix):].split("-", 1)[0]
            if pid.isdigit() and _alive(int(pid)):
                continue
            _remove(Path(root) / name)
            removed.append(Path(root) / name)
        dirs[:] = [d for d in dirs if not d.startswith(prefixes)] if recursive else []
    return sorted(removed)
