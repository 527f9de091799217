"""Raw release -> Parquet shards (resumable, verified), optional upload to the Hub.

Output layout (loadable with ``load_dataset(out_dir, streaming=True)``)::

    out_dir/README.md                          dataset card with a ``configs`` data_files entry
    out_dir/progress.json                      manifest: records, shard size, finished shards
    out_dir/data/<split>-00000-of-00012.parquet

Each shard holds the records ``[i * shard_size, (i + 1) * shard_size)`` of the reader's sorted
record list, encoded with :func:`records.encode_shard_row`. A shard is written to a temporary
file and renamed when complete, then recorded in the manifest, so an interrupted run resumes at
the first unfinished shard. On resume every finished shard is read back in full (footer row
count and all pages); a missing, truncated or damaged one is rebuilt. A source file that
cannot be read (including a decompression bomb, refused by PIL) is skipped and counted like
any bad sample; an unreadable manifest is reported and the conversion starts over. At the
end every shard's row count is read back from the Parquet footer and checked against the
manifest (rows + skipped bad samples = records).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from tqdm.auto import tqdm

from ..io.atomic import atomic_file, write_text_atomic
from .records import SHARD_FEATURES, encode_shard_row

MANIFEST = "progress.json"


class ConversionError(RuntimeError):
    """The output folder disagrees with the requested conversion (counts, shard layout)."""


def _shard_name(split: str, index: int, total: int) -> str:
    return f"{split}-{index:05d}-of-{total:05d}.parquet"


def _parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def _shard_intact(path: Path, rows: int) -> bool:
    """The shard reads in full (footer and every page) and holds ``rows`` rows."""
    import pyarrow.parquet as pq

    if not path.is_file():
        return False
    try:
        return pq.ParquetFile(path).metadata.num_rows == rows and pq.read_table(path).num_rows == rows
    except Exception:  # noqa: BLE001 - ArrowInvalid, OSError: truncated or damaged
        return False


def _read_manifest(path: Path, plan: dict) -> dict:
    if not path.is_file():
        return {**plan, "shards": {}}
    try:
        manifest = json.loads(path.read_text())
        if not isinstance(manifest, dict) or not isinstance(manifest.get("shards"), dict):
            raise ValueError("not a conversion manifest")
    except (ValueError, UnicodeDecodeError) as err:
        warnings.warn(f"{path}: unreadable manifest ({err}); converting every shard again", stacklevel=3)
        return {**plan, "shards": {}}
    return manifest


def _card(source: str, split: str) -> str:
    return (
        "---\nconfigs:\n- config_name: default\n  data_files:\n"
        f"  - split: {split}\n    path: data/{split}-*.parquet\n---\n\n"
        f"# {source} (converted by edit2perceive dataset_scripts)\n\n"
        "Rows decode to edit2perceive example dicts with `edit2perceive.data.records.decode_example`:\n"
        "`rgb` (PNG), `depth` (16-bit PNG x `depth_scale` metres, 0 = invalid), `normal` (float16 .npy,\n"
        "camera frame x right, y up, z toward the viewer), `alpha` (16-bit PNG / 65535), `valid_mask`,\n"
        "`intrinsics` [fx, fy, cx, cy] (pixel centres at integer coordinates), `meta` (JSON).\n"
    )


def convert(reader, out_dir, *, split: str = "train", shard_size: int = 500, depth_scale: float | None = None,
            progress: bool = True) -> dict:
    """Write ``reader`` as Parquet shards under ``out_dir``; resume if a matching manifest exists."""
    from datasets import Dataset

    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    out_dir = Path(out_dir)
    (out_dir / "data").mkdir(parents=True, exist_ok=True)
    records = list(reader.records())
    total = (len(records) + shard_size - 1) // shard_size
    plan = {"source": reader.name, "split": split, "num_records": len(records), "shard_size": shard_size,
            "num_shards": total, "first_id": records[0]["id"] if records else None}
    manifest_path = out_dir / MANIFEST
    manifest = _read_manifest(manifest_path, plan)
    mismatch = {k: (manifest.get(k), v) for k, v in plan.items() if manifest.get(k) != v}
    if mismatch:
        raise ConversionError(f"{manifest_path} was written for a different conversion {mismatch} (manifest vs now); "
                              "use a fresh output folder")
    done = manifest["shards"]
    bar = tqdm(total=len(records), desc=f"convert {reader.name}", unit="ex", disable=not progress)
    for index in range(total):
        chunk = records[index * shard_size:(index + 1) * shard_size]
        name = _shard_name(split, index, total)
        path = out_dir / "data" / name
        entry = done.get(str(index))
        if entry and _shard_intact(path, entry["rows"]):
            bar.update(len(chunk))
            continue
        if entry:
            warnings.warn(f"{path}: missing, truncated or damaged; rebuilding it", stacklevel=2)
        rows, skipped_before = [], reader.bad.num_skipped
        for example in reader.iter_records(chunk):  # bad samples (bombs too) skipped and counted
            rows.append(encode_shard_row(example, depth_scale))
            bar.update(1)
        skipped = reader.bad.num_skipped - skipped_before
        bar.update(skipped)
        with atomic_file(path) as staged:
            Dataset.from_list(rows, features=SHARD_FEATURES).to_parquet(str(staged))
        done[str(index)] = {"file": f"data/{name}", "rows": len(rows), "skipped": skipped}
        write_text_atomic(manifest_path, json.dumps(manifest, indent=1))
    bar.close()
    (out_dir / "README.md").write_text(_card(reader.name, split))
    return verify(out_dir)


def verify(out_dir) -> dict:
    """Check every shard's Parquet row count against the manifest; return a summary."""
    out_dir = Path(out_dir)
    manifest = json.loads((out_dir / MANIFEST).read_text())
    shards = manifest["shards"]
    missing = [i for i in range(manifest["num_shards"]) if str(i) not in shards]
    if missing:
        raise ConversionError(f"{out_dir}: shards {missing} not finished (rerun the conversion to resume)")
    rows = skipped = 0
    for _, entry in sorted(shards.items(), key=lambda kv: int(kv[0])):
        path = out_dir / entry["file"]
        if not path.is_file():
            raise ConversionError(f"{path}: listed in the manifest but missing")
        found = _parquet_rows(path)
        if found != entry["rows"]:
            raise ConversionError(f"{path}: {found} rows, manifest says {entry['rows']}")
        rows += found
        skipped += entry["skipped"]
    if rows + skipped != manifest["num_records"]:
        raise ConversionError(f"{out_dir}: {rows} rows + {skipped} skipped != {manifest['num_records']} records")
    return {"source": manifest["source"], "rows": rows, "skipped": skipped, "shards": manifest["num_shards"],
            "out_dir": str(out_dir)}


def push_to_hub(out_dir, repo_id: str, *, dry_run: bool = False, private: bool = True, token=None) -> list[str]:
    """Upload the converted folder as a dataset repo; ``dry_run`` only returns the file list."""
    out_dir = Path(out_dir)
    summary = verify(out_dir)
    files = sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if p.is_file() and not p.name.endswith(".tmp"))
    if dry_run:
        return files
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.upload_folder(repo_id=repo_id, repo_type="dataset", folder_path=str(out_dir),
                      commit_message=f"Add {summary['source']} ({summary['rows']} rows)", allow_patterns=files)
    return files
