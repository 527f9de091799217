"""`e2p evaluate` under bad input: stale results, transposed / empty / unreadable predictions."""

import json

import numpy as np
from e2p_dataset_fixtures import write_nyuv2

from edit2perceive.cli import main

SID = "test/kitchen_0004/rgb_0001"


def _args(tmp_path, out):
    return ["evaluate", "--task", "depth", "--dataset", "nyuv2", "--data-dir", str(tmp_path / "nyu"), "--predictions",
            str(tmp_path / "preds"), "--output-dir", str(out), "--no-progress"]


def _save(tmp_path, gts, override=None):
    for sid, gt in gts.items():
        path = tmp_path / "preds" / f"{sid}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, (override or {}).get(sid, np.sqrt(gt) * 0.5 + 0.2))


def test_a_failed_rerun_leaves_the_previous_results_whole(tmp_path, capsys):
    gts = write_nyuv2(tmp_path / "nyu")
    _save(tmp_path, gts)
    out = tmp_path / "out"
    assert main(_args(tmp_path, out)) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(before) == {"per_image.jsonl", "per_image.csv", "summary.json", "results.md"}
    (tmp_path / "preds" / f"{SID}.npy").unlink()  # the second run fails on its first sample
    assert main(_args(tmp_path, out)) == 1
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no new per-image file beside an old summary
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left
    _save(tmp_path, gts)
    assert main(_args(tmp_path, out) + ["--max-samples", "1"]) == 0  # a successful rerun replaces the results
    assert json.loads((out / "summary.json").read_text())["num_evaluated"] == 1
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("mine")
    capsys.readouterr()
    assert main(_args(tmp_path, foreign)) == 1
    assert "holds files that e2p evaluate did not write (thesis.tex)" in capsys.readouterr().err
    assert [p.name for p in foreign.iterdir()] == ["thesis.tex"]


def test_transposed_and_empty_predictions_are_errors_naming_the_file(tmp_path, capsys):
    gts = write_nyuv2(tmp_path / "nyu")
    _save(tmp_path, gts, {SID: np.sqrt(gts[SID]).T.copy()})  # 640 x 480 for a 480 x 640 ground truth
    assert main(_args(tmp_path, tmp_path / "o1")) == 1
    err = capsys.readouterr().err
    assert f"{SID}.npy: the prediction is 480x640 (W x H) but the ground truth is 640x480" in err
    _save(tmp_path, gts, {SID: np.sqrt(gts[SID])[::2, ::2].copy()})  # half size, same aspect: resized, fine
    assert main(_args(tmp_path, tmp_path / "o2")) == 0
    _save(tmp_path, gts, {SID: np.zeros((0, 0), np.float32)})
    assert main(_args(tmp_path, tmp_path / "o3")) == 1
    assert f"{SID}.npy: the prediction is empty (0x0 pixels)" in capsys.readouterr().err


def test_unreadable_npy_predictions_name_the_file(tmp_path, capsys):
    gts = write_nyuv2(tmp_path / "nyu")
    _save(tmp_path, gts)
    path = tmp_path / "preds" / f"{SID}.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)  # an object (pickle) array
    assert main(_args(tmp_path, tmp_path / "o1")) == 1
    assert f"{path}: not a readable numeric .npy array" in capsys.readouterr().err
    _save(tmp_path, gts)
    path.write_bytes(path.read_bytes()[:200])  # truncated
    assert main(_args(tmp_path, tmp_path / "o2")) == 1
    assert f"{path}: not a readable numeric .npy array" in capsys.readouterr().err
