"""Converter faults: damaged shards rebuilt on rerun, decompression bombs skipped, unreadable manifest."""

import json
import struct
import zlib

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image
from test_data_convert import vkitti_tree

from edit2perceive.data import VirtualKitti2Reader
from edit2perceive.data.convert import convert, verify


def _bomb(path, width=20000, height=20000):
    """A 16x16 PNG whose header says ``width x height`` (400 MP: PIL refuses it as a bomb)."""
    Image.new("L", (16, 16)).save(path, format="PNG")
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))


def test_truncated_shard_is_rebuilt_on_rerun(tmp_path):
    vkitti_tree(tmp_path / "raw", n=6)
    out = tmp_path / "out"
    convert(VirtualKitti2Reader(tmp_path / "raw"), out, shard_size=2, progress=False)
    shards = sorted((out / "data").glob("*.parquet"))
    stamp = shards[0].stat().st_mtime_ns
    want = pq.read_table(shards[1]).to_pylist()
    shards[1].write_bytes(shards[1].read_bytes()[: shards[1].stat().st_size // 2])  # a cut copy / full disk
    with pytest.warns(UserWarning, match=rf"{shards[1].name}: missing, truncated or damaged; rebuilding it"):
        summary = convert(VirtualKitti2Reader(tmp_path / "raw"), out, shard_size=2, progress=False)
    assert summary["rows"] == 6 and summary["skipped"] == 0
    assert pq.read_table(shards[1]).to_pylist() == want  # rebuilt identically
    assert shards[0].stat().st_mtime_ns == stamp  # intact shards are kept


def test_decompression_bomb_source_is_skipped_and_counted(tmp_path):
    vkitti_tree(tmp_path / "raw", n=4)
    bomb = tmp_path / "raw/Scene02/clone/frames/rgb/Camera_0/rgb_00002.jpg"
    _bomb(bomb)
    with pytest.warns(UserWarning, match=r"rgb_00002.jpg|depth_00002.png"):
        summary = convert(VirtualKitti2Reader(tmp_path / "raw"), tmp_path / "out", shard_size=2, progress=False)
    assert summary["rows"] == 3 and summary["skipped"] == 1
    manifest = json.loads((tmp_path / "out" / "progress.json").read_text())
    assert [manifest["shards"][str(i)]["skipped"] for i in range(2)] == [0, 1]


def test_unreadable_manifest_is_named_and_the_conversion_starts_over(tmp_path):
    vkitti_tree(tmp_path / "raw", n=4)
    out = tmp_path / "out"
    convert(VirtualKitti2Reader(tmp_path / "raw"), out, shard_size=2, progress=False)
    (out / "progress.json").write_text('{"source": "vkitti2", "shards": {"0": {"fi')  # cut mid-write by another tool
    with pytest.warns(UserWarning, match=r"progress.json: unreadable manifest"):
        summary = convert(VirtualKitti2Reader(tmp_path / "raw"), out, shard_size=2, progress=False)
    assert summary["rows"] == 4 and verify(out)["rows"] == 4
    got = np.asarray(Image.open(__import__("io").BytesIO(pq.read_table(sorted((out / "data").glob("*.parquet"))[0])
                                                            .column("rgb")[0].as_py()["bytes"])))
    assert got.shape == (8, 16, 3)
