"""Converted shards with a corrupt row or a damaged shard: skipped, counted, named, bounded
(streamed, in a mixture, and map-style)."""

import warnings

import numpy as np
import pyarrow.parquet as pq
import pytest

from edit2perceive.data import synthetic_scenes
from edit2perceive.data.convert import convert
from edit2perceive.data.streaming import ConvertedRows, TooMuchBadData, converted_dataset, task_mixture


def _convert(tmp_path, n=6, shard_size=2):
    out = tmp_path / "syn"
    convert(synthetic_scenes(n, (16, 24), seed=3), out, shard_size=shard_size, progress=False)
    return out, sorted((out / "data").glob("*.parquet"))


def _truncate_rgb(shard, row):
    """Cut one row's RGB PNG bytes in half (``OSError: Truncated File Read`` / broken data stream)."""
    table = pq.read_table(shard)
    rgb = table.column("rgb").to_pylist()
    rgb[row] = {**rgb[row], "bytes": rgb[row]["bytes"][: len(rgb[row]["bytes"]) // 2]}
    import pyarrow as pa

    table = table.set_column(table.schema.get_field_index("rgb"), "rgb", pa.array(rgb, type=table.schema.field("rgb").type))
    pq.write_table(table, shard)
    return table.column("id")[row].as_py()


def _ids(ds):
    return [ex["meta"]["id"] for ex in ds]


def test_a_corrupt_row_is_skipped_counted_and_named_streamed_and_mixed(tmp_path):
    out, shards = _convert(tmp_path)
    all_ids = _ids(converted_dataset(out))
    bad_id = _truncate_rgb(shards[1], 0)
    with pytest.warns(UserWarning, match=rf"skipping bad row synthetic/{bad_id} .*1 of \d+ rows bad"):
        got = _ids(converted_dataset(out, max_bad_fraction=0.5))
    assert got == [i for i in all_ids if i != bad_id]
    with pytest.warns(UserWarning, match=bad_id):  # the same through a mixture (decode=False: stream rows)
        mixed = _ids(task_mixture("depth", {"hypersim": converted_dataset(out, decode=False, max_bad_fraction=0.5)}))
    assert sorted(mixed) == sorted(got)
    with warnings.catch_warnings():  # the default limit (1 % of at least 100 rows) allows one bad row
        warnings.simplefilter("ignore")
        assert len(_ids(converted_dataset(out))) == 5


def test_too_many_bad_rows_stop_the_run_with_a_clear_message(tmp_path):
    out, shards = _convert(tmp_path)
    _truncate_rgb(shards[0], 0)
    _truncate_rgb(shards[2], 1)
    with pytest.warns(UserWarning), pytest.raises(TooMuchBadData, match=r"2 of \d+ rows could not be decoded, more "
                                                                          r"than max_bad_fraction=0.01"):
        _ids(converted_dataset(out))


def test_a_damaged_shard_is_left_out_and_named(tmp_path):
    out, shards = _convert(tmp_path, n=8)
    full = _ids(converted_dataset(out))
    lost = [ex["meta"]["id"] for ex in converted_dataset(out) if ex["meta"]["id"] in set(
        pq.read_table(shards[1]).column("id").to_pylist())]
    shards[1].write_bytes(shards[1].read_bytes()[:100])  # truncated download: no footer ("magic bytes not found")
    with pytest.warns(UserWarning, match=rf"skipping damaged shard .*{shards[1].name}"):
        got = _ids(converted_dataset(out, max_bad_fraction=0.5))
    assert got == [i for i in full if i not in lost] and len(lost) == 2
    with pytest.warns(UserWarning), pytest.raises(TooMuchBadData, match=r"1 of 4 shards are damaged"):
        converted_dataset(out)  # 25 % > the default 1 %


def test_map_style_rows_skip_a_corrupt_row(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    out, shards = _convert(tmp_path)
    bad_id = _truncate_rgb(shards[1], 0)
    rows = ConvertedRows(out, max_bad_fraction=0.5)
    assert len(rows) == 6
    ids = [rows[i]["meta"]["id"] for i in range(2)]
    with pytest.warns(UserWarning, match=bad_id):
        replaced = rows[2]  # the bad row: the next readable one in its place
    assert replaced["meta"]["id"] == rows[3]["meta"]["id"] and bad_id not in ids
    assert rows.bad.skipped[0][0] == f"synthetic/{bad_id}" and "OSError" in rows.bad.skipped[0][1]
    assert replaced["rgb"].dtype == np.uint8 and replaced["rgb"].shape == (16, 24, 3)
