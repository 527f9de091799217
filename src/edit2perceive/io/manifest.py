"""Ownership of output files: a command deletes or replaces only what it can prove it wrote.

A folder a command writes into holds ``.e2p-manifest.json``: for each entry (file or folder)
the command wrote, its SHA-256 and an owner label (e.g. ``"e2p predict depth"``). An entry
is *owned* when it is listed and its contents still hash to the recorded value; anything
else (a user's file, a file edited since, outputs of a version without manifests) is not,
and is never deleted or replaced. The manifest is written inside the staging folder of
:mod:`edit2perceive.io.atomic`, so it appears together with the files it lists.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .atomic import FILE_MODE, STAGING_PREFIX

MANIFEST = ".e2p-manifest.json"


def digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file, or of a folder's files (relative POSIX paths and contents, sorted)."""
    path = Path(path)
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        if f != path:
            h.update(f.relative_to(path).as_posix().encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def read_manifest(folder: str | os.PathLike) -> dict[str, dict]:
    """``{entry name: {"sha256", "owner"}}`` of ``folder``'s manifest; ``{}`` when there is
    none or it is unreadable (then nothing is owned)."""
    try:
        data = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
        entries = data["entries"]
        return {str(k): {"sha256": str(v["sha256"]), "owner": str(v["owner"])} for k, v in entries.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def owned(folder: str | os.PathLike) -> dict[str, str]:
    """``{entry name: owner}`` of the entries of ``folder`` that its manifest proves written
    by a command (listed, present, same contents)."""
    folder = Path(folder)
    result = {}
    for name, entry in read_manifest(folder).items():
        path = folder / name
        if "/" not in name and path.exists() and not path.is_symlink() and digest(path) == entry["sha256"]:
            result[name] = entry["owner"]
    return result


def foreign(folder: str | os.PathLike) -> list[str]:
    """Names of the entries of ``folder`` not proven owned (the manifest and staging entries aside)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    mine = owned(folder)
    return sorted(p.name for p in folder.iterdir()
                  if p.name != MANIFEST and not p.name.startswith(STAGING_PREFIX) and p.name not in mine)


def write_manifest(folder: str | os.PathLike, owners: dict[str, str]) -> Path:
    """Record ``{entry name: owner}`` (entries already written in ``folder``) as its manifest."""
    folder = Path(folder)
    entries = {name: {"sha256": digest(folder / name), "owner": owner} for name, owner in sorted(owners.items())}
    path = folder / MANIFEST
    path.write_text(json.dumps({"format": 1, "entries": entries}, indent=1) + "\n", encoding="utf-8")
    os.chmod(path, FILE_MODE)
    return path
