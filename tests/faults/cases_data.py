"""Fault cases of the data layer: converted shards, streams, map-style access, the converter."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from harness import FX, case, cli, expect_raises, png_declaring, tests_path
from PIL import Image


def _converted(name: str, n=6):
    from edit2perceive.data import synthetic_scenes
    from edit2perceive.data.convert import convert

    out = FX.fresh(name) / "syn"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        convert(synthetic_scenes(n, (16, 24), seed=3), out, shard_size=2, progress=False)
    return out, sorted((out / "data").glob("*.parquet"))


def _corrupt_row(shard: Path, row: int) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(shard)
    rgb = table.column("rgb").to_pylist()
    rgb[row] = {**rgb[row], "bytes": rgb[row]["bytes"][: len(rgb[row]["bytes"]) // 2]}
    index = table.schema.get_field_index("rgb")
    pq.write_table(table.set_column(index, "rgb", pa.array(rgb, type=table.schema.field("rgb").type)), shard)
    return table.column("id")[row].as_py()


def _stream_ids(ds) -> tuple[list, list]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ids = [ex["meta"]["id"] for ex in ds]
    return ids, [str(w.message) for w in caught]


@case("data", "corrupt image in a converted row (streamed): skipped, counted, named")
def _row_stream():
    from edit2perceive.data.streaming import converted_dataset

    out, shards = _converted("row")
    bad = _corrupt_row(shards[1], 0)
    ids, msgs = _stream_ids(converted_dataset(out, max_bad_fraction=0.5))
    return len(ids) == 5 and any(bad in m and "1 of" in m for m in msgs), next((m for m in msgs if bad in m), "")[:160]


@case("data", "corrupt row in a task mixture")
def _row_mixture():
    from edit2perceive.data.streaming import converted_dataset, task_mixture

    out, shards = _converted("rowmix")
    bad = _corrupt_row(shards[2], 1)
    ids, msgs = _stream_ids(task_mixture("depth", {"hypersim": converted_dataset(out, decode=False,
                                                                                 max_bad_fraction=0.5)}))
    return len(ids) == 5 and any(bad in m for m in msgs), f"{len(ids)} examples; warned: {any(bad in m for m in msgs)}"


@case("data", "corrupt row, map-style access")
def _row_map():
    from edit2perceive.data.streaming import ConvertedRows

    os.environ.setdefault("HF_DATASETS_CACHE", str(FX.root / "hf-cache"))
    out, shards = _converted("rowmap")
    bad = _corrupt_row(shards[1], 0)
    rows = ConvertedRows(out, max_bad_fraction=0.5)
    ids, msgs = _stream_ids(rows[i] for i in range(len(rows)))
    return bad not in ids and len(rows.bad.skipped) == 1, f"skipped {rows.bad.skipped}"[:160]


@case("data", "damaged shard (no Parquet footer): left out and named")
def _shard_damaged():
    from edit2perceive.data.streaming import converted_dataset

    out, shards = _converted("shard", n=8)
    shards[1].write_bytes(shards[1].read_bytes()[:100])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = converted_dataset(out, max_bad_fraction=0.5)
    ids, msgs = _stream_ids(ds)
    msgs += [str(w.message) for w in caught]
    return len(ids) == 6 and any(shards[1].name in m for m in msgs), next((m for m in msgs if "shard" in m), "")[:160]


@case("data", "too many bad rows: the run stops with a clear message")
def _too_many():
    from edit2perceive.data.streaming import TooMuchBadData, converted_dataset

    out, shards = _converted("many")
    _corrupt_row(shards[0], 0)
    _corrupt_row(shards[2], 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return expect_raises(lambda: list(converted_dataset(out)), TooMuchBadData, "more than max_bad_fraction")


def _raw_vkitti(root: Path, n=4):
    tests_path("data")
    from test_data_convert import vkitti_tree

    vkitti_tree(root, n=n)
    return root


def _warned(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn()
    return result, [str(w.message) for w in caught]


def _convert(raw: Path, out: Path):
    from edit2perceive.data import VirtualKitti2Reader
    from edit2perceive.data.convert import convert

    return convert(VirtualKitti2Reader(raw), out, shard_size=2, progress=False)


@case("converter", "truncated existing shard: rebuilt identically on rerun, intact shards kept")
def _conv_truncated():
    import pyarrow.parquet as pq

    raw = _raw_vkitti(FX.fresh("conv-trunc") / "raw", n=6)
    out = raw.parent / "out"
    _warned(lambda: _convert(raw, out))
    shards = sorted((out / "data").glob("*.parquet"))
    stamp = shards[0].stat().st_mtime_ns
    want = pq.read_table(shards[1]).to_pylist()
    shards[1].write_bytes(shards[1].read_bytes()[: shards[1].stat().st_size // 2])  # a cut copy / full disk
    summary, msgs = _warned(lambda: _convert(raw, out))
    assert any(f"{shards[1].name}: missing, truncated or damaged; rebuilding it" in m for m in msgs), msgs
    assert summary["rows"] == 6 and summary["skipped"] == 0, summary
    assert pq.read_table(shards[1]).to_pylist() == want, "the rebuilt shard differs"
    assert shards[0].stat().st_mtime_ns == stamp, "an intact shard was rewritten"
    return True, str(summary)


@case("converter", "decompression-bomb source image: skipped, counted per shard, named")
def _conv_bomb():
    import json

    raw = _raw_vkitti(FX.fresh("conv-bomb") / "raw")
    png_declaring(raw / "Scene02/clone/frames/rgb/Camera_0/rgb_00002.jpg", 20000, 20000)
    summary, msgs = _warned(lambda: _convert(raw, raw.parent / "out"))
    assert any("rgb_00002.jpg" in m or "depth_00002.png" in m for m in msgs), msgs
    assert summary["rows"] == 3 and summary["skipped"] == 1, summary
    manifest = json.loads((raw.parent / "out" / "progress.json").read_text())
    assert [manifest["shards"][str(i)]["skipped"] for i in range(2)] == [0, 1], manifest
    return True, str(summary)


@case("converter", "corrupt progress.json: named, conversion starts over and verifies")
def _conv_manifest():
    import io

    import pyarrow.parquet as pq

    from edit2perceive.data.convert import verify

    raw = _raw_vkitti(FX.fresh("conv-manifest") / "raw")
    out = raw.parent / "out"
    _warned(lambda: _convert(raw, out))
    (out / "progress.json").write_text('{"source": "vkitti2", "shards": {"0": {"fi')  # cut mid-write by another tool
    summary, msgs = _warned(lambda: _convert(raw, out))
    msg = next((m for m in msgs if "progress.json: unreadable manifest" in m), "")
    assert msg, msgs
    assert summary["rows"] == 4 and verify(out)["rows"] == 4, summary
    first = pq.read_table(sorted((out / "data").glob("*.parquet"))[0]).column("rgb")[0].as_py()["bytes"]
    assert np.asarray(Image.open(io.BytesIO(first))).shape == (8, 16, 3)
    return True, msg[:160]


@case("data", "decompression-bomb image in a raw training dataset: the reader skips, counts and names it")
def _reader_bomb():
    from edit2perceive.data import VirtualKitti2Reader

    raw = _raw_vkitti(FX.fresh("reader-bomb") / "raw")
    png_declaring(raw / "Scene02/clone/frames/rgb/Camera_0/rgb_00001.jpg", 20000, 20000)
    reader = VirtualKitti2Reader(raw)
    examples, msgs = _warned(lambda: list(reader))
    named = any("rgb_00001.jpg" in m for m in msgs)
    return len(examples) == 3 and reader.bad.num_skipped == 1 and named, f"{len(examples)} read; {msgs[:1]}"


@case("data", "e2p data check on a dataset holding a decompression bomb: reported and counted, no traceback")
def _check_bomb():
    raw = _raw_vkitti(FX.fresh("check-bomb") / "raw")
    png_declaring(raw / "Scene02/clone/frames/rgb/Camera_0/rgb_00001.jpg", 20000, 20000)
    code, out = cli("data", "check", "--dataset", "vkitti2", raw, "--samples", "4", stdout=True)
    ok = code in (0, 1) and "skipped 1" in out and "rgb_00001.jpg: unreadable, skipped" in out and "Traceback" not in out
    return ok, next((ln.strip() for ln in out.splitlines() if "rgb_00001" in ln), out.strip()[-160:])[:160]
