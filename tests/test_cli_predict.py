"""`e2p predict` end to end on a saved tiny pipeline."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from edit2perceive import Edit2PerceivePipeline
from edit2perceive.cli import main


@pytest.fixture(scope="module")
def model_dirs(tiny_components, tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    for task in ("depth", "matting"):
        Edit2PerceivePipeline(**tiny_components, task=task).save_pretrained(root / task)
    return root


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    good = tmp_path / "room.jpg"
    Image.fromarray((rng.random((40, 56, 3)) * 255).astype(np.uint8)).save(good)
    grey = tmp_path / "grey.png"
    Image.fromarray((rng.random((40, 56)) * 255).astype(np.uint8)).save(grey)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    return good, grey, broken


def test_predict_depth_writes_outputs_and_reports_failures(model_dirs, images, tmp_path, capsys):
    good, grey, broken = images
    out = tmp_path / "out"
    code = main(["predict", "--task", "depth", "--model", str(model_dirs / "depth"), str(good), str(broken), str(grey),
                 "--output-dir", str(out), "--processing-resolution", "64"])
    assert code == 1
    err = capsys.readouterr().err
    assert "2 of 3 images" in err and "FAILED" in err and "broken.png" in err
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(f"{s}_{k}" for s in ("room", "grey")
                           for k in ("depth.png", "depth_16bit.png", "depth.npy", "panel.png"))
    depth = np.load(out / "room_depth.npy")
    assert depth.shape == (40, 56) and 0 <= depth.min() <= depth.max() <= 1
    assert Image.open(out / "room_depth_16bit.png").mode == "I;16"


def test_predict_matting_needs_points_and_checks_task(model_dirs, images, tmp_path, capsys):
    good, _, _ = images
    out = tmp_path / "m"
    args = ["predict", "--task", "matting", "--model", str(model_dirs / "matting"), str(good), "--output-dir", str(out)]
    assert main(args) == 2 and "needs --points" in capsys.readouterr().err
    assert main(args + ["--points", "5,5", "20,30", "--processing-resolution", "0"]) == 0
    assert {p.name for p in out.iterdir()} == {"room_alpha.png", "room_cutout.png", "room_alpha.npy", "room_panel.png"}
    assert Image.open(out / "room_cutout.png").mode == "RGBA"
    assert main(args + ["--points", "500,5"]) == 1
    assert "outside" in capsys.readouterr().err
    wrong = ["predict", "--task", "depth", "--model", str(model_dirs / "matting"), str(good), "--output-dir", str(out)]
    assert main(wrong) == 2
    assert "trained for task 'matting', not 'depth'" in capsys.readouterr().err


def test_console_script_help():
    result = subprocess.run([sys.executable, "-m", "edit2perceive.cli", "predict", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--processing-resolution" in result.stdout
