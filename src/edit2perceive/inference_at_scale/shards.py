"""Shards, their files and the manifest of a prediction dataset folder.

Rows are cut into shards of ``shard_size`` consecutive input rows: shard ``k`` holds rows
``k * shard_size .. (k + 1) * shard_size - 1`` and is written to
``data/<split>-<k:06d>.parquet``; process ``r`` of ``N`` does the shards with ``k % N == r``.
The cut depends on the input and ``shard_size`` only, never on the number of processes,
so a run can resume with another number of processes and the shards read back in file
order are the input's rows in order.

A shard file appears whole or not at all (:mod:`edit2perceive.io.atomic`); a shard is done
when its file exists. ``manifest.json`` records the settings (a resumed run must match
them) and, once every shard is there, the shard list with row and error counts.
"""

from __future__ import annotations

import contextlib
import errno
import json
from pathlib import Path

from ..io.atomic import STAGING_PREFIX, atomic_file, clean_stale_staging, write_text_atomic

MANIFEST = "manifest.json"
DATA_DIR = "data"
#: rows per parquet row group: what a process holds encoded before writing
ROW_GROUP_ROWS = 64
#: errors that mean "no space left": the run stops, complete shards stay
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


class DiskFullError(OSError):
    """Writing a shard ran out of space; complete shards are kept."""


def shard_path(output_dir: Path, split: str, k: int) -> Path:
    return Path(output_dir) / DATA_DIR / f"{split}-{k:06d}.parquet"


def shard_rows(k: int, shard_size: int, num_rows: int) -> range:
    """Input rows of shard ``k``."""
    return range(k * shard_size, min((k + 1) * shard_size, num_rows))


def my_shards(num_shards: int, rank: int, world: int) -> list[int]:
    """Shards of process ``rank`` of ``world`` (round robin: ``k % world == rank``)."""
    return list(range(rank, num_shards, world))


def read_manifest(output_dir: Path) -> dict | None:
    path = Path(output_dir) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: unreadable manifest ({err}); use a new --output-dir") from err


def check_resumable(output_dir: Path, settings: dict) -> dict | None:
    """The existing manifest if ``output_dir`` can take this run (new, empty, or made with
    the same settings); ``ValueError`` naming the differing settings otherwise."""
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"{output_dir}: exists and is not a folder")
    manifest = read_manifest(output_dir)
    if manifest is None:
        foreign = [p.name for p in output_dir.iterdir() if not p.name.startswith(STAGING_PREFIX)] if output_dir.is_dir() else []
        if foreign:
            raise ValueError(f"{output_dir}: not empty and has no {MANIFEST} ({', '.join(sorted(foreign)[:3])}); "
                             "choose a new or empty --output-dir")
        return None
    old = manifest.get("settings", {})
    differ = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
    if differ:
        details = "; ".join(f"{k}: {old.get(k)!r} -> {settings.get(k)!r}" for k in differ[:4])
        raise ValueError(f"{output_dir} holds predictions made with other settings ({details}); "
                         "run with the same settings to resume, or choose a new --output-dir")
    return manifest


def start(output_dir: Path, settings: dict) -> list[Path]:
    """Main process, before any shard: remove staging files of dead runs, write the manifest
    (status ``running``). Returns the removed staging files."""
    removed = clean_stale_staging(output_dir, recursive=True)  # the folder and data/
    write_text_atomic(Path(output_dir) / MANIFEST,
                      json.dumps({"status": "running", "settings": settings}, indent=2, sort_keys=True) + "\n")
    return removed


@contextlib.contextmanager
def shard_writer(path: Path, schema):
    """Write one shard: yields ``write(table)``, each call one parquet row group (so a shard
    never has to be held in memory whole); the file appears under ``path`` only when the
    block ends without error. A full disk raises :class:`DiskFullError` naming the shard."""
    import pyarrow.parquet as pq

    try:
        with atomic_file(path) as staged:
            with pq.ParquetWriter(str(staged), schema) as writer:
                yield writer.write_table
    except OSError as err:
        if err.errno in DISK_FULL_ERRNOS:
            done = len(list(path.parent.glob("*.parquet")))
            raise DiskFullError(err.errno, f"no space left writing {path.name} in {path.parent} ({err.strerror}); "
                                f"the {done} complete shard(s) are kept: free space and run the same command "
                                "again to do only the missing shards") from err
        raise


def shard_summary(path: Path) -> dict:
    """``{"file", "rows", "errors", "bytes"}`` of a written shard (reads only the status
    column; ``bytes``: uncompressed data size)."""
    import pyarrow.parquet as pq

    status = pq.read_table(path, columns=["status"]).column("status").to_pylist()
    meta = pq.read_metadata(path)
    size = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    return {"file": f"{DATA_DIR}/{path.name}", "rows": len(status), "errors": sum(s != "ok" for s in status),
            "bytes": int(size)}


def finish(output_dir: Path, settings: dict, split: str, num_shards: int, extra: dict) -> dict:
    """Main process, after every process finished: check that every shard is there and
    write the complete manifest. Returns it."""
    paths = [shard_path(output_dir, split, k) for k in range(num_shards)]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise RuntimeError(f"{output_dir}: shard(s) {missing[:5]} missing after the run; run again to finish them")
    shards = [shard_summary(p) for p in paths]
    manifest = {"status": "complete", "settings": settings, "split": split, "num_shards": num_shards,
                "num_rows": sum(s["rows"] for s in shards), "num_errors": sum(s["errors"] for s in shards),
                "num_bytes": sum(s["bytes"] for s in shards),
                "shards": shards, **extra}
    write_text_atomic(Path(output_dir) / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest
