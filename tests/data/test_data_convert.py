"""dataset_scripts/convert.py: Parquet shards, load_dataset(streaming=True) round trip, resume, counts, dry-run push."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import write_jpg, write_png

from edit2perceive.data import VirtualKitti2Reader, converted_dataset, synthetic_scenes
from edit2perceive.data.convert import ConversionError, convert, push_to_hub, verify

REPO = Path(__file__).resolve().parents[2]


def vkitti_tree(root, n=5, bad=()):
    for k in range(n):
        write_jpg(root / f"Scene02/clone/frames/rgb/Camera_0/rgb_{k:05d}.jpg", np.full((8, 16, 3), 40 * k, np.uint8))
        depth = np.full((8, 16), 1000 + k, np.uint16)
        depth[0] = 65535
        path = root / f"Scene02/clone/frames/depth/Camera_0/depth_{k:05d}.png"
        write_png(path, depth)
        if k in bad:
            path.write_bytes(b"\x89PNG broken")


def test_round_trip_through_load_dataset_streaming(tmp_path):
    vkitti_tree(tmp_path / "raw")
    summary = convert(VirtualKitti2Reader(tmp_path / "raw"), tmp_path / "out", shard_size=2, progress=False)
    assert summary["rows"] == 5 and summary["shards"] == 3 and summary["skipped"] == 0
    from datasets import load_dataset

    rows = list(load_dataset(str(tmp_path / "out"), split="train", streaming=True))
    assert len(rows) == 5
    by_id = {e["meta"]["id"]: e for e in converted_dataset(tmp_path / "out")}
    for original in VirtualKitti2Reader(tmp_path / "raw"):
        got = by_id[original["meta"]["id"]]
        np.testing.assert_array_equal(got["rgb"], original["rgb"])
        np.testing.assert_array_equal(got["valid_mask"], original["valid_mask"])
        np.testing.assert_allclose(got["depth"], original["depth"], atol=0.005 + 1e-6)  # cm step: exact to float error


def test_synthetic_round_trip_keeps_normals_and_alpha(tmp_path):
    scenes = synthetic_scenes(3, (24, 32), seed=2)
    convert(scenes, tmp_path / "syn", shard_size=10, progress=False)
    for got, want in zip(sorted(converted_dataset(tmp_path / "syn"), key=lambda e: e["meta"]["id"]), scenes, strict=True):
        np.testing.assert_allclose(got["normal"], want["normal"], atol=2e-3)  # float16
        np.testing.assert_allclose(got["alpha"], want["alpha"], atol=1 / 65535)
        np.testing.assert_allclose(got["depth"], want["depth"], atol=5e-4 + 1e-6)  # 1 mm step
        assert got["meta"]["intrinsics"] == pytest.approx(want["meta"]["intrinsics"], rel=1e-6)


def test_resume_skips_finished_shards_and_counts_bad_samples(tmp_path):
    vkitti_tree(tmp_path / "raw", n=6, bad={4})
    out = tmp_path / "out"
    with pytest.warns(UserWarning, match="depth_00004.png"):
        convert(VirtualKitti2Reader(tmp_path / "raw"), out, shard_size=2, progress=False)
    manifest = json.loads((out / "progress.json").read_text())
    assert [manifest["shards"][str(i)]["rows"] for i in range(3)] == [2, 2, 1]
    first = out / "data" / "train-00000-of-00003.parquet"
    stamp = first.stat().st_mtime_ns
    (out / "data" / "train-00002-of-00003.parquet").unlink()  # an interrupted run
    with pytest.raises(ConversionError, match="missing"):
        verify(out)
    with pytest.warns(UserWarning):
        summary = convert(VirtualKitti2Reader(tmp_path / "raw"), out, shard_size=2, progress=False)
    assert first.stat().st_mtime_ns == stamp and summary == {**summary, "rows": 5, "skipped": 1}
    with pytest.raises(ConversionError, match="different conversion"):
        convert(VirtualKitti2Reader(tmp_path / "raw"), out, shard_size=3, progress=False)


def test_cli_with_dry_run_push(tmp_path, monkeypatch):
    cmd = [sys.executable, str(REPO / "dataset_scripts" / "convert.py"), "synthetic", "--num-samples", "4", "--size",
           "16", "16", "--shard-size", "2", "--out", str(tmp_path / "o"), "--push-to-hub", "someone/e2p-synthetic",
           "--dry-run", "--no-progress"]
    done = subprocess.run(cmd, capture_output=True, text=True, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "would upload 4 files to https://huggingface.co/datasets/someone/e2p-synthetic" in done.stdout
    assert "data/train-00001-of-00002.parquet" in done.stdout
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", lambda **kw: pytest.fail("dry run must not touch the Hub"))
    assert "README.md" in push_to_hub(tmp_path / "o", "someone/x", dry_run=True)
