"""``e2p evaluate`` end to end on saved .npy predictions, and the --model path with the
pipeline replaced by a fake (the real pipeline is tested elsewhere)."""

import json

import numpy as np
import pytest
from e2p_dataset_fixtures import write_kitti, write_matting, write_nyuv2

from edit2perceive.cli import main


def _save_predictions(folder, preds):
    for sid, arr in preds.items():
        path = folder / f"{sid}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, arr)


def test_saved_predictions_end_to_end(tmp_path, capsys):
    gts = write_nyuv2(tmp_path / "nyu")
    # a sqrt-encoded "model": 0.5 * sqrt(depth) + 0.2 (perfect up to an affine map in sqrt space)
    _save_predictions(tmp_path / "preds", {k: 0.5 * np.sqrt(v) + 0.2 for k, v in gts.items()})
    out = tmp_path / "out"
    rc = main(["evaluate", "--task", "depth", "--dataset", "nyuv2", "--data-dir", str(tmp_path / "nyu"),
               "--predictions", str(tmp_path / "preds"), "--depth-encoding", "sqrt", "--output-dir", str(out),
               "--method", "saved", "--no-progress"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "| saved | 0.0 | 100.0 |" in captured.out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["protocol"]["alignment"] == "least_squares_sqrt"
    assert summary["predictor"] == {"kind": "saved_predictions", "folder": str(tmp_path / "preds"),
                                    "depth_encoding": "sqrt"}
    # the same predictions aligned in depth space are not perfect
    rc = main(["evaluate", "--task", "depth", "--dataset", "nyuv2", "--data-dir", str(tmp_path / "nyu"),
               "--predictions", str(tmp_path / "preds"), "--alignment", "least_squares", "--output-dir",
               str(tmp_path / "out2"), "--max-samples", "1", "--no-progress"])
    assert rc == 0
    s2 = json.loads((tmp_path / "out2" / "summary.json").read_text())
    assert s2["metrics"]["abs_rel"] > 1e-3 and s2["num_evaluated"] == 1 and s2["max_samples"] == 1


def test_missing_prediction_and_bad_layout_exit_codes(tmp_path, capsys):
    write_nyuv2(tmp_path / "nyu")
    (tmp_path / "preds").mkdir()
    rc = main(["evaluate", "--task", "depth", "--dataset", "nyuv2", "--data-dir", str(tmp_path / "nyu"),
               "--predictions", str(tmp_path / "preds"), "--output-dir", str(tmp_path / "o"), "--no-progress"])
    assert rc == 1 and "no saved prediction for sample 'test/kitchen_0004/rgb_0001'" in capsys.readouterr().err
    rc = main(["evaluate", "--task", "depth", "--dataset", "kitti", "--data-dir", str(tmp_path / "nyu"),
               "--predictions", str(tmp_path / "preds"), "--no-progress"])
    assert rc == 2 and "Eigen split file" in capsys.readouterr().err  # a layout error: exit 2, as documented
    rc = main(["evaluate", "--task", "normal", "--dataset", "kitti", "--data-dir", str(tmp_path),
               "--predictions", str(tmp_path / "preds")])
    assert rc == 2 and "unknown normal dataset" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # --model and --predictions are exclusive
        main(["evaluate", "--task", "depth", "--dataset", "nyuv2", "--data-dir", str(tmp_path), "--model", "m",
              "--predictions", str(tmp_path)])


def test_kitti_protocols_through_cli(tmp_path, capsys):
    gts = write_kitti(tmp_path / "kitti", n=3, without_gt=(1,))
    _save_predictions(tmp_path / "full", {k: v * 0.1 + 3.0 for k, v in gts.items()})
    _save_predictions(tmp_path / "kb", {k: v[23:375, 13:1229] * 0.1 + 3.0 for k, v in gts.items()})
    for protocol, preds in (("marigold", "kb"), ("edit2perceive", "full")):
        out = tmp_path / f"out_{protocol}"
        rc = main(["evaluate", "--task", "depth", "--dataset", "kitti", "--data-dir", str(tmp_path / "kitti"),
                   "--predictions", str(tmp_path / preds), "--protocol", protocol, "--output-dir", str(out),
                   "--no-progress"])
        assert rc == 0, capsys.readouterr().err
        s = json.loads((out / "summary.json").read_text())
        assert s["num_listed"] == 3 and s["num_listed_without_gt"] == 1 and s["num_evaluated"] == 2
        assert s["metrics"]["abs_rel"] == pytest.approx(0.0, abs=1e-6)
        assert s["protocol"]["kb_crop"] is (protocol == "marigold")


def test_model_path_uses_pipeline_contract(tmp_path, monkeypatch, capsys):
    """--model goes through PipelinePredictor: from_pretrained, task check, pipe(image, points=...)."""
    from edit2perceive.evaluation import predictors

    alphas = write_matting(tmp_path / "data", "am2k")
    calls = []

    class FakeOut:
        def __init__(self, pred):
            self.prediction = pred[None]

    class FakePipe:
        task = type("T", (), {"name": "matting"})()

        @classmethod
        def from_pretrained(cls, model, torch_dtype=None, **kwargs):
            calls.append(("load", model))
            return cls()

        def set_progress_bar_config(self, **kw):
            pass

        def to(self, device):
            return self

        def __call__(self, image, points=None, processing_resolution=None, output_type="np"):
            calls.append(("call", image.size, len(points[0]), processing_resolution))
            w, h = image.size
            return FakeOut(np.full((h, w), 0.5, np.float32))

    # the loader (edit2perceive.pipelines.loading.load_pipeline) resolves the class in its own module
    import edit2perceive.pipelines.loading as pipeline_module

    monkeypatch.setattr(pipeline_module, "Edit2PerceivePipeline", FakePipe)
    rc = main(["evaluate", "--task", "matting", "--dataset", "am2k", "--data-dir", str(tmp_path / "data"),
               "--model", "some/model", "--output-dir", str(tmp_path / "o"), "--processing-resolution", "512",
               "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    assert calls[0] == ("load", "some/model")
    assert [c[2:] for c in calls[1:]] == [(10, 512)] * len(alphas)  # 10 oracle points per image
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["predictor"]["kind"] == "pipeline" and s["method"] == "some/model"
    assert s["metrics"]["mad"] == pytest.approx(np.mean([np.mean(np.abs(0.5 - a)) for a in alphas.values()]), rel=1e-6)
    assert predictors.PipelinePredictor("x", "depth").describe  # constructing does not load anything
