"""``e2p predict --dataset``: one process against the plain pipeline, read-back, the card,
2 CPU processes through the real ``accelerate launch``, SIGKILL + resume, bad rows, full
disk, settings checks and the Hub upload (HfApi mocked)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from edit2perceive import Edit2PerceivePipeline
from edit2perceive.cli import main
from edit2perceive.inference_at_scale import decode_row

HERE = Path(__file__).parent
RES = "32"  # processing resolution
SHARD = "2"  # rows per shard: 8 rows -> 4 shards
NUM_IMAGES = 7  # plus one unreadable file


@pytest.fixture(scope="module")
def model_dir(tiny_components, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "depth"
    Edit2PerceivePipeline(**tiny_components, task="depth").save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """An image folder (an ``imagefolder`` dataset): 7 images of 16-40 px, one broken file."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(NUM_IMAGES):
        h, w = (int(v) for v in rng.integers(16, 41, size=2))
        arr = (rng.random((h, w, 3)) * 255).astype(np.uint8)
        Image.fromarray(arr[..., 0] if i == 3 else arr).save(root / f"img{i}.png")  # img3: greyscale
    (root / "img7.png").write_bytes(b"\x89PNG\r\n\x1a\n not a png")
    return root


def _env(tmp):
    src = str(Path(__file__).resolve().parents[2] / "src")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
            "OMP_NUM_THREADS": "1", "HF_HOME": str(tmp / "hf"), "HF_HUB_OFFLINE": "1", "ACCELERATE_USE_CPU": "true",
            "TOKENIZERS_PARALLELISM": "false", "PYTHONWARNINGS": "ignore"}


def _args(model_dir, images, out, *extra):
    return ["predict", "--task", "depth", "--model", str(model_dir), "--dataset", str(images), "--output-dir",
            str(out), "--processing-resolution", RES, "--shard-size", SHARD, "--batch-size", "2", *extra]


def _free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def _launch(tmp, script_args, n=2):
    """``accelerate launch`` N CPU processes (gloo) of ``python [-m] script_args``."""
    accelerate = os.path.join(os.path.dirname(sys.executable), "accelerate")
    cmd = [accelerate, "launch", "--multi_gpu", "--num_processes", str(n), "--num_machines", "1",
           "--main_process_port", _free_port(), "--mixed_precision", "no", "--dynamo_backend", "no", *script_args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=_env(tmp))


def _rows(out):
    from datasets import load_dataset

    files = sorted(str(p) for p in (Path(out) / "data").glob("*.parquet"))
    return list(load_dataset("parquet", data_files=files, split="train", cache_dir=str(Path(out).parent / "c")))


@pytest.fixture(scope="module")
def reference(model_dir, images, tmp_path_factory):
    """A one-process run (float32 encoding), the baseline of the other tests."""
    out = tmp_path_factory.mktemp("ref") / "out"
    assert main(_args(model_dir, images, out, "--encoding", "float32")) == 0
    return out


def test_one_process_equals_the_pipeline_and_reads_back(model_dir, images, reference):
    from edit2perceive.pipelines.loading import load_pipeline

    rows = _rows(reference)
    assert [r["row_index"] for r in rows] == list(range(NUM_IMAGES + 1))
    assert sorted(r["image_path"] for r in rows) == [f"img{i}.png" for i in range(NUM_IMAGES + 1)]
    bad = [r for r in rows if r["image_path"] == "img7.png"]
    assert len(bad) == 1 and bad[0]["status"] == "error" and bad[0]["prediction"] is None
    assert "img7.png" in bad[0]["error"] and "not a readable image" in bad[0]["error"]
    pipe = load_pipeline(str(model_dir), task="depth", device="cpu")
    for row in rows:
        if row["status"] != "ok":
            continue
        img = Image.open(images / row["image_path"]).convert("RGB")
        assert (row["height"], row["width"]) == (img.height, img.width) and row["error"] is None
        expected = pipe(img, processing_resolution=int(RES)).prediction[0]
        got = decode_row(row, "depth", "float32")["prediction"]
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)  # float32; batched vs single calls


def test_png16_encoding_is_the_float_prediction_within_half_a_level(model_dir, images, reference, tmp_path):
    out = tmp_path / "png"
    assert main(_args(model_dir, images, out, "--shard-size", "3")) == 0  # another cut: same rows
    floats, pngs = _rows(reference), _rows(out)
    assert [r["row_index"] for r in pngs] == [r["row_index"] for r in floats]
    for f, p in zip(floats, pngs):
        assert (p["status"], p["image_path"]) == (f["status"], f["image_path"])
        if f["status"] == "ok":
            diff = decode_row(p, "depth", "png16")["prediction"] - decode_row(f, "depth", "float32")["prediction"]
            assert np.abs(diff).max() <= 0.5 / 65535 + 1e-6


def test_dataset_card_yaml_and_manifest(reference):
    text = (reference / "README.md").read_text()
    assert text.startswith("---\n")
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["configs"] == [{"config_name": "default",
                                "data_files": [{"split": "train", "path": "data/train-*.parquet"}]}]
    feats = {f["name"]: f for f in meta["dataset_info"]["features"]}
    assert list(feats) == ["row_index", "image_path", "height", "width", "prediction", "status", "error"]
    assert feats["prediction"] == {"name": "prediction", "list": "float32"}
    assert meta["dataset_info"]["splits"][0]["num_examples"] == NUM_IMAGES + 1
    e2p = meta["edit2perceive"]
    assert e2p["task"] == "depth" and e2p["encoding"] == "float32" and e2p["num_errors"] == 1
    assert e2p["model"]["id"].endswith("depth") and e2p["model"]["revision"] is None
    assert e2p["options"]["processing_resolution"] == int(RES) and e2p["options"]["steps"] == 1
    assert e2p["shard_size"] == int(SHARD) and "reshape with the row's height and width" in e2p["decode"]
    import datasets
    import torch

    assert e2p["software"]["datasets"] == datasets.__version__ and e2p["software"]["torch"] == torch.__version__
    manifest = json.loads((reference / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["num_shards"] == 4
    assert [s["rows"] for s in manifest["shards"]] == [2, 2, 2, 2]
    # the card's configs make the folder loadable by name
    from datasets import load_dataset

    assert len(load_dataset(str(reference), split="train", cache_dir=str(reference.parent / "c2"))) == NUM_IMAGES + 1


def _same_rows(a, b):
    assert [r["row_index"] for r in a] == [r["row_index"] for r in b]
    for x, y in zip(a, b):
        assert (x["status"], x["image_path"]) == (y["status"], y["image_path"])
        if x["status"] == "ok":
            np.testing.assert_allclose(decode_row(x, "depth", "float32")["prediction"],
                                       decode_row(y, "depth", "float32")["prediction"], rtol=0, atol=1e-5)


def test_two_processes_through_accelerate_launch_equal_one(model_dir, images, reference, tmp_path):
    out = tmp_path / "two"
    proc = _launch(tmp_path, ["-m", "edit2perceive.cli", *_args(model_dir, images, out, "--encoding", "float32")])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "on process 0 of 2" in proc.stderr
    _same_rows(_rows(out), _rows(reference))
    assert json.loads((out / "manifest.json").read_text())["num_processes_last_run"] == 2


def _shards(out):
    return sorted(p.name for p in (out / "data").iterdir())


def test_sigkill_of_one_process_then_resume_does_only_the_missing_shards(model_dir, images, reference, tmp_path):
    out = tmp_path / "killed"
    args = _args(model_dir, images, out, "--encoding", "float32")
    # rank 1 does shards 1 and 3; it kills itself at its second pipeline call (shard 3)
    proc = _launch(tmp_path, [str(HERE / "kill_worker.py"), "1", "1", *args])
    assert proc.returncode != 0
    written = [n for n in _shards(out) if not n.startswith(".")]
    assert "train-000001.parquet" in written and "train-000003.parquet" not in written
    before = {n: (out / "data" / n).stat().st_mtime_ns for n in written}
    # resume with ONE plain process: the cut does not depend on the number of processes
    resumed = subprocess.run([sys.executable, "-m", "edit2perceive.cli", *args], capture_output=True, text=True,
                             timeout=300, env=_env(tmp_path))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"wrote {4 - len(written)} shard(s) on process 0 of 1, skipped {len(written)} already done" in resumed.stderr
    assert {n: (out / "data" / n).stat().st_mtime_ns for n in written} == before  # untouched
    assert _shards(out) == [f"train-00000{k}.parquet" for k in range(4)]  # no staging left-overs
    _same_rows(_rows(out), _rows(reference))


def test_sigkill_of_a_single_process_run_leaves_whole_shards(model_dir, images, reference, tmp_path):
    out = tmp_path / "killed1"
    args = _args(model_dir, images, out, "--encoding", "float32")
    proc = subprocess.run([sys.executable, str(HERE / "kill_worker.py"), "0", "2", *args], capture_output=True,
                          text=True, timeout=300, env=_env(tmp_path))
    assert proc.returncode == -9
    final = [n for n in _shards(out) if not n.startswith(".e2p-staging-")]
    assert final == ["train-000000.parquet", "train-000001.parquet"]  # shard 2 only under a staging name
    for name in final:  # whole: readable with all their rows
        import pyarrow.parquet as pq

        assert pq.read_table(out / "data" / name).num_rows == 2
    assert json.loads((out / "manifest.json").read_text())["status"] == "running"
    assert main(args) == 0
    assert _shards(out) == [f"train-00000{k}.parquet" for k in range(4)]  # the dead run's staging file removed
    _same_rows(_rows(out), _rows(reference))


def test_full_disk_stops_with_a_clear_error_and_keeps_complete_shards(model_dir, images, reference, tmp_path,
                                                                      monkeypatch, capsys):
    import errno

    import pyarrow.parquet as pq

    real = pq.ParquetWriter.write_table
    calls = [0]

    def filling(self, table, *a, **k):
        calls[0] += 1
        if calls[0] == 2:  # the second shard: its file is open, part of it may be on disk
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, table, *a, **k)

    monkeypatch.setattr(pq.ParquetWriter, "write_table", filling)
    out = tmp_path / "full"
    args = _args(model_dir, images, out, "--encoding", "float32")
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "no space left writing train-000001.parquet" in err and "the 1 complete shard(s) are kept" in err
    assert _shards(out) == ["train-000000.parquet"]  # the partial shard was removed
    monkeypatch.setattr(pq.ParquetWriter, "write_table", real)
    assert main(args) == 0
    _same_rows(_rows(out), _rows(reference))


def test_other_settings_are_refused_and_arguments_checked(model_dir, images, reference, tmp_path, capsys):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(reference, out)
    assert main(_args(model_dir, images, out, "--encoding", "float32", "--steps", "2")) == 2
    assert "other settings (options:" in capsys.readouterr().err
    assert main(_args(model_dir, images, tmp_path / "x", "--export", "ply")) == 2
    assert "--export is for image files" in capsys.readouterr().err
    assert main(_args(model_dir, images, tmp_path / "x", "--shard-size", "0")) == 2
    assert main([*_args(model_dir, images, tmp_path / "x"), str(images / "img0.png")]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(_args(model_dir, images, tmp_path / "x", "--split", "test")) == 2
    assert 'Unknown split "test"' in capsys.readouterr().err
    assert main(["predict", "--task", "depth", "--model", str(model_dir), "--output-dir", str(tmp_path / "y")]) == 2


def test_parquet_source_streaming_id_columns_and_kept_images(model_dir, tmp_path):
    """A parquet file with embedded image bytes (one corrupt): streaming and map-style agree."""
    import datasets

    rng = np.random.default_rng(3)
    cells = []
    for i in range(5):
        buf = Image.fromarray((rng.random((20 + i, 24, 3)) * 255).astype(np.uint8))
        path = tmp_path / f"{i}.png"
        buf.save(path)
        cells.append({"bytes": path.read_bytes() if i != 2 else b"corrupt", "path": None})
    ds = datasets.Dataset.from_dict({"key": [f"k{i}" for i in range(5)], "photo": cells, "extra": list(range(5))},
                                    features=datasets.Features({"key": datasets.Value("string"),
                                                                "photo": datasets.Image(),
                                                                "extra": datasets.Value("int64")}))
    ds.to_parquet(tmp_path / "in.parquet")
    runs = {}
    for mode in ("map", "stream"):
        out = tmp_path / mode
        args = ["predict", "--task", "depth", "--model", str(model_dir), "--dataset", str(tmp_path / "in.parquet"),
                "--output-dir", str(out), "--processing-resolution", "16", "--shard-size", "2", "--id-columns", "key",
                "--keep-image", "--encoding", "float32"] + (["--streaming"] if mode == "stream" else [])
        assert main(args) == 0
        runs[mode] = _rows(out)
    for a, b in zip(runs["map"], runs["stream"]):
        assert set(a) == {"row_index", "key", "image_path", "image", "height", "width", "prediction", "status", "error"}
        assert (a["key"], a["status"], a["row_index"]) == (b["key"], b["status"], b["row_index"])
    assert [r["key"] for r in runs["stream"]] == [f"k{i}" for i in range(5)]
    assert [r["status"] for r in runs["stream"]] == ["ok", "ok", "error", "ok", "ok"]
    assert "embedded image" in runs["stream"][2]["error"]
    assert np.asarray(runs["map"][4]["image"]).shape == (24, 24, 3)
    # each run loads the model anew: equal to float32 rounding (kernels may pick other paths)
    np.testing.assert_allclose(runs["map"][4]["prediction"], runs["stream"][4]["prediction"], rtol=1e-5, atol=1e-6)


def test_save_to_disk_folder_and_a_column_of_image_paths(model_dir, images, reference, tmp_path):
    """Two more sources, the same images: the predictions equal the image-folder run's."""
    import datasets

    ref = {r["image_path"]: r for r in _rows(reference)}
    names = sorted(ref)
    (tmp_path / "list.jsonl").write_text("".join(json.dumps({"file": str(images / n), "n": i}) + "\n"
                                                 for i, n in enumerate(names)))
    # an input column named like an output column is not copied by default (the output's height is the image's)
    datasets.Dataset.from_dict({"img": [str(images / n) for n in names], "height": [999] * len(names)}).cast_column(
        "img", datasets.Image()).save_to_disk(str(tmp_path / "disk"))
    for source, extra in ((tmp_path / "list.jsonl", ["--image-column", "file"]), (tmp_path / "disk", [])):
        out = tmp_path / f"out-{source.name}"
        args = ["predict", "--task", "depth", "--model", str(model_dir), "--dataset", str(source), "--output-dir",
                str(out), "--processing-resolution", RES, "--encoding", "float32", *extra]
        assert main(args) == 0
        rows = _rows(out)
        assert [r["image_path"].rsplit("/", 1)[-1] for r in rows] == names
        _same_rows([{**r, "image_path": r["image_path"].rsplit("/", 1)[-1]} for r in rows], [ref[n] for n in names])


def test_normals_with_uncertainty_in_png16(tiny_components, tmp_path):
    Edit2PerceivePipeline(**tiny_components, task="normal").save_pretrained(tmp_path / "normal")
    rng = np.random.default_rng(5)
    (tmp_path / "imgs").mkdir()
    for i in range(2):
        Image.fromarray((rng.random((24, 32, 3)) * 255).astype(np.uint8)).save(tmp_path / "imgs" / f"{i}.png")
    out = tmp_path / "out"
    assert main(["predict", "--task", "normal", "--model", str(tmp_path / "normal"), "--dataset",
                 str(tmp_path / "imgs"), "--output-dir", str(out), "--processing-resolution", "32",
                 "--ensemble-size", "2", "--uncertainty"]) == 0
    meta = yaml.safe_load((out / "README.md").read_text().split("---\n")[1])
    feats = {f["name"]: f for f in meta["dataset_info"]["features"]}
    assert feats["prediction"]["list"] == "image" and feats["uncertainty"]["dtype"] == "image"
    for row in _rows(out):
        maps = decode_row(row, meta["edit2perceive"])
        assert maps["prediction"].shape == (24, 32, 3) and maps["uncertainty"].shape == (24, 32)
        norms = np.linalg.norm(maps["prediction"], axis=-1)
        assert np.abs(norms - 1).max() < 1e-3  # unit vectors, up to the 16-bit quantization
        assert 0 <= maps["uncertainty"].min() and maps["uncertainty"].max() <= 1


def test_push_to_hub_uploads_a_dataset_repository(model_dir, images, tmp_path, monkeypatch):
    import huggingface_hub

    calls = {}

    def create_repo(self, repo_id, **kw):
        calls["create"] = (repo_id, kw)

    def upload_folder(self, **kw):
        import fnmatch

        folder = Path(kw["folder_path"])
        files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        calls["uploaded"] = [f for f in files if any(fnmatch.fnmatch(f, pat) for pat in kw["allow_patterns"])]
        calls["upload"] = kw
        return "https://huggingface.co/datasets/me/depth-preds/commit/abc"

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    out = tmp_path / "push"
    assert main(_args(model_dir, images, out, "--push-to-hub", "me/depth-preds", "--private")) == 0
    repo, kw = calls["create"]
    assert repo == "me/depth-preds" and kw["repo_type"] == "dataset" and kw["private"] is True
    assert calls["upload"]["repo_type"] == "dataset" and calls["upload"]["repo_id"] == "me/depth-preds"
    assert calls["uploaded"] == ["README.md", "data/train-000000.parquet", "data/train-000001.parquet",
                                 "data/train-000002.parquet", "data/train-000003.parquet", "manifest.json"]


def test_dataset_options_from_the_namespace():
    from edit2perceive.cli import build_parser, parse_args
    from edit2perceive.commands._predict_dataset import DatasetOptions

    base = ["predict", "--task", "depth", "--model", "m", "--output-dir", "o", "--dataset", "user/images"]
    args = parse_args(build_parser(), base + [
        "--split", "test", "--config", "c", "--data-dir", "d", "--streaming", "--image-column", "img",
        "--id-columns", "a", "b", "--keep-image", "--encoding", "float32", "--shard-size", "7",
        "--push-to-hub", "me/x", "--private"])
    assert DatasetOptions.from_args(args) == DatasetOptions(
        dataset="user/images", split="test", config="c", data_dir="d", streaming=True, image_column="img",
        id_columns=("a", "b"), keep_image=True, encoding="float32", shard_size=7, push_to_hub="me/x", private=True)
    assert DatasetOptions.from_args(parse_args(build_parser(), base)) == DatasetOptions(dataset="user/images")
