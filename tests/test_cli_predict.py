"""`e2p predict` end to end on a saved tiny pipeline."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from edit2perceive import Edit2PerceivePipeline
from edit2perceive.cli import main


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
    assert sorted(p.name for p in out.iterdir()) == ["grey.png", "room.jpg"]  # one folder per input
    for name in ("room.jpg", "grey.png"):
        assert sorted(p.name for p in (out / name).iterdir()) == sorted(
            ["depth.png", "depth_16bit.png", "depth.npy", "depth_panel.png", ".e2p-manifest.json"])
    depth = np.load(out / "room.jpg" / "depth.npy")
    assert depth.shape == (40, 56) and 0 <= depth.min() <= depth.max() <= 1
    assert Image.open(out / "room.jpg" / "depth_16bit.png").mode == "I;16"


def test_predict_matting_needs_points_and_checks_task(model_dirs, images, tmp_path, capsys):
    good, _, _ = images
    out = tmp_path / "m"
    args = ["predict", "--task", "matting", "--model", str(model_dirs / "matting"), str(good), "--output-dir", str(out)]
    assert main(args) == 2 and "needs --points" in capsys.readouterr().err
    assert main(args + ["--points", "5,5", "20,30", "--processing-resolution", "0"]) == 0
    assert {p.name for p in (out / "room.jpg").iterdir()} == {"alpha.png", "cutout.png", "alpha.npy", "matting_panel.png",
                                                             ".e2p-manifest.json"}
    assert Image.open(out / "room.jpg" / "cutout.png").mode == "RGBA"
    assert main(args + ["--points", "500,5"]) == 1
    assert "outside" in capsys.readouterr().err
    wrong = ["predict", "--task", "depth", "--model", str(model_dirs / "matting"), str(good), "--output-dir", str(out)]
    assert main(wrong) == 2
    assert "trained for task 'matting', not 'depth'" in capsys.readouterr().err


def test_console_script_help():
    result = subprocess.run([sys.executable, "-m", "edit2perceive.cli", "predict", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--processing-resolution" in result.stdout


def _save_random(path, h, w, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)).save(path)
    return path


def _depth_files(out):
    """Every written depth map (wherever the layout puts it), by path."""
    return sorted(p for p in out.rglob("*depth.npy") if not any(part.startswith(".") for part in p.parts[-3:]))


def test_equal_names_in_different_folders_never_overwrite(model_dirs, tmp_path, capsys):
    # issue 15 defect 4: these four inputs used to give "4 of 4 images written" but 3 output sets
    sizes = {"a/same.png": (32, 48), "b/same.png": (48, 32), "b/same-2.png": (40, 40), "a/same.jpg": (32, 64)}
    files = [_save_random(tmp_path / "in" / rel, *hw, seed=i) for i, (rel, hw) in enumerate(sizes.items())]
    out = tmp_path / "out"
    code = main(["predict", "--task", "depth", "--model", str(model_dirs / "depth"), *map(str, files),
                 "--output-dir", str(out), "--processing-resolution", "32"])
    assert code == 0 and "4 of 4 images written" in capsys.readouterr().err
    written = _depth_files(out)
    assert len(written) == 4  # each input's own prediction, at its own size
    assert sorted(np.load(p).shape for p in written) == sorted(sizes.values())
    for rel, hw in sizes.items():  # outputs keep the inputs' relative folders
        assert np.load(out / rel / "depth.npy").shape == hw


def test_folder_input_is_recursive_by_image_type_and_skips_the_output_folder(model_dirs, tmp_path, capsys):
    root = tmp_path / "photos"
    _save_random(root / "x.png", 32, 32)
    _save_random(root / "trip" / "day1" / "x.png", 32, 48, seed=1)
    _save_random(root / "trip" / "y.JPG", 48, 32, seed=2)
    (root / "notes.txt").write_text("not an image")
    _save_random(root / ".thumbs" / "x.png", 32, 32)  # hidden: left out
    out = root / "out"  # inside the input folder: its files must not become inputs on a rerun
    args = ["predict", "--task", "depth", "--model", str(model_dirs / "depth"), str(root), "--output-dir", str(out),
            "--processing-resolution", "32"]
    assert main(args) == 0
    expected = ["trip/day1/x.png", "trip/y.JPG", "x.png"]
    assert sorted(p.parent.relative_to(out).as_posix() for p in _depth_files(out)) == expected
    assert main(args) == 0 and "3 of 3 images written" in capsys.readouterr().err
    assert len(_depth_files(out)) == 3
    assert main(args[:5] + [str(tmp_path / "missing"), *args[6:]]) == 2
    assert "missing: no such file or folder" in capsys.readouterr().err


def test_skip_existing_resumes_an_interrupted_run(model_dirs, tmp_path, capsys):
    root = tmp_path / "in"
    for i in range(4):
        _save_random(root / f"img{i}.png", 32, 32, seed=i)
    out = tmp_path / "out"
    args = ["predict", "--task", "depth", "--model", str(model_dirs / "depth"), str(root), "--output-dir", str(out),
            "--processing-resolution", "32"]
    assert main(args) == 0
    first = {p: p.stat().st_mtime_ns for p in _depth_files(out)}
    # an interrupted run: one set missing, one staging folder of a dead process
    import shutil

    shutil.rmtree(out / "img2.png")
    stale = out / ".e2p-partial-999999999-dead"
    stale.mkdir()
    (stale / "depth.png").write_bytes(b"half")
    capsys.readouterr()
    assert main(args + ["--skip-existing"]) == 0
    err = capsys.readouterr().err
    assert "1 of 4 images written" in err and "3 skipped" in err and ".e2p-partial-999999999-dead" in err
    assert not stale.exists()
    after = {p: p.stat().st_mtime_ns for p in _depth_files(out)}
    assert len(after) == 4 and all(after[p] == t for p, t in first.items() if p.parent.name != "img2.png")
    assert main(args + ["--skip-existing"]) == 0 and "already have depth outputs" in capsys.readouterr().err
    # another task into the same folders keeps the depth files
    matting = ["predict", "--task", "matting", "--model", str(model_dirs / "matting"), str(root / "img0.png"),
               "--output-dir", str(out), "--points", "3,3"]
    assert main(matting) == 0
    assert {"depth.npy", "alpha.npy", "depth_panel.png", "matting_panel.png"} <= {p.name for p in (out / "img0.png").iterdir()}


def test_batch_size_gives_the_same_predictions(model_dirs, tmp_path):
    root = tmp_path / "in"
    for i, hw in enumerate([(32, 32), (32, 32), (48, 32), (32, 32), (32, 40)]):
        _save_random(root / f"i{i}.png", *hw, seed=i)
    outs = {}
    for bs in (1, 3):
        out = tmp_path / f"out{bs}"
        assert main(["predict", "--task", "depth", "--model", str(model_dirs / "depth"), str(root), "--output-dir",
                     str(out), "--processing-resolution", "32", "--batch-size", str(bs)]) == 0
        outs[bs] = {p.relative_to(out): np.load(p) for p in _depth_files(out)}
    assert outs[1].keys() == outs[3].keys() and len(outs[1]) == 5
    for key in outs[1]:  # batched vs single matmuls: float32 rounding only
        np.testing.assert_allclose(outs[3][key], outs[1][key], atol=1e-5)


def test_a_failing_image_in_a_batch_fails_alone(model_dirs, tmp_path, capsys):
    root = tmp_path / "in"
    _save_random(root / "big.png", 64, 64)
    _save_random(root / "small.png", 20, 20, seed=1)  # the point 30,30 lies outside it
    out = tmp_path / "out"
    assert main(["predict", "--task", "matting", "--model", str(model_dirs / "matting"), str(root), "--output-dir",
                 str(out), "--points", "30,30", "--batch-size", "2", "--processing-resolution", "32"]) == 1
    err = capsys.readouterr().err
    assert "1 of 2 images written" in err and "FAILED" in err and "small.png" in err and "outside" in err
    assert [p.parent.name for p in out.rglob("alpha.npy")] == ["big.png"]


@pytest.mark.parametrize("argv, message", [
    (["--steps", "100000000"], "--steps must be within 1..1000"),
    (["--processing-resolution", "100000"], "--processing-resolution must be within 0..8192"),
    (["--batch-size", "0"], "--batch-size must be >= 1"),
])
def test_arguments_that_fail_every_image_are_refused_before_loading(tmp_path, capsys, argv, message):
    img = _save_random(tmp_path / "x.png", 32, 32)
    # the model folder does not exist: the arguments are checked first
    assert main(["predict", "--task", "depth", "--model", str(tmp_path / "nomodel"), str(img), "--output-dir",
                 str(tmp_path / "out"), *argv]) == 2
    assert message in capsys.readouterr().err


def test_points_nan_and_negative_give_clear_messages(model_dirs, tmp_path, capsys):
    img = _save_random(tmp_path / "x.png", 32, 32)
    base = ["predict", "--task", "matting", "--model", str(model_dirs / "matting"), str(img), "--output-dir",
            str(tmp_path / "out")]
    assert main(base + ["--points", "nan,nan"]) == 2
    assert "coordinates must be finite" in capsys.readouterr().err
    assert main(base + ["--points", "-5,10"]) == 1  # parsed as a point, refused as outside the image
    assert "point (x=-5, y=10) lies outside the 32x32 image" in capsys.readouterr().err


def test_non_finite_prediction_is_a_failure_of_that_image(model_dirs, tmp_path, capsys):
    import torch

    from edit2perceive.commands import predict as predict_cmd

    pipe = Edit2PerceivePipeline.from_pretrained(model_dirs / "depth")
    with torch.no_grad():
        next(pipe.transformer.parameters()).fill_(float("nan"))  # NaN weights
    pipe.save_pretrained(tmp_path / "nan-model")
    img = _save_random(tmp_path / "x.png", 32, 32)
    out = tmp_path / "out"
    assert main(["predict", "--task", "depth", "--model", str(tmp_path / "nan-model"), str(img), "--output-dir",
                 str(out), "--processing-resolution", "32"]) == 1
    err = capsys.readouterr().err
    assert "0 of 1 images written" in err and "x.png" in err and "non-finite" in err
    assert not _depth_files(out)
    assert predict_cmd.TASK_FILES["depth"] == tuple(
        predict_cmd.prediction_files("depth", Image.new("RGB", (16, 16)), np.zeros((16, 16), np.float32)))


KILLER = """
import os, signal, sys
after = int(os.environ["E2P_TEST_KILL_AFTER_REPLACE"])
real, calls = os.replace, [0]
def replace(*args, **kwargs):  # SIGKILL right after the N-th rename: no cleanup code can run
    real(*args, **kwargs)
    calls[0] += 1
    if calls[0] == after:
        os.kill(os.getpid(), signal.SIGKILL)
os.replace = replace
from edit2perceive.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _visible_files(out):
    return sorted(p for p in out.rglob("*") if p.is_file() and not any(s.startswith(".") for s in p.relative_to(out).parts))


@pytest.mark.parametrize("kill_after", [pytest.param(1, marks=pytest.mark.slow), 2])  # each ~15 s: a subprocess
def test_sigkill_leaves_whole_sets_or_nothing(model_dirs, tmp_path, kill_after):
    # issue 15 defect 12: SIGKILL between the renames of a set left 2 of 4 files and a staging folder
    import os

    root = tmp_path / "in"
    for i in range(2):
        _save_random(root / f"img{i}.png", 32, 32, seed=i)
    out = tmp_path / "out"
    argv = ["predict", "--task", "depth", "--model", str(model_dirs / "depth"), str(root / "img0.png"),
            str(root / "img1.png"), "--output-dir", str(out), "--processing-resolution", "32"]
    env = {**os.environ, "E2P_TEST_KILL_AFTER_REPLACE": str(kill_after)}
    if kill_after == 1:  # replacing existing sets: killed between moving the old set aside and the new in
        assert main(argv) == 0
    result = subprocess.run([sys.executable, "-c", KILLER, *argv], env=env, capture_output=True, text=True)
    assert result.returncode == -9, result.stderr[-2000:]
    files = _visible_files(out)
    assert len(files) % 4 == 0, [str(p.relative_to(out)) for p in files]  # whole sets of 4 files only
    for f in files:
        if f.suffix == ".npy":
            assert np.load(f).shape == (32, 32)
        else:
            Image.open(f).load()
    assert main(argv + ["--skip-existing"]) == 0  # resume: completes the sets, removes the staging folders
    assert len(_visible_files(out)) == 8
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_out_of_memory_on_one_image_is_reported_and_the_run_goes_on(model_dirs, tmp_path, capsys, monkeypatch):
    import torch

    from edit2perceive.pipelines.pipeline import Edit2PerceivePipeline as Pipe

    real = Pipe.predict_batch

    def predict_batch(self, images, *args, **kwargs):  # the large image does not fit in memory
        if images[0].shape[-1] > 40:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real(self, images, *args, **kwargs)

    monkeypatch.setattr(Pipe, "predict_batch", predict_batch)
    small, large = _save_random(tmp_path / "small.png", 32, 32), _save_random(tmp_path / "large.png", 32, 64, seed=1)
    out = tmp_path / "out"
    assert main(["predict", "--task", "depth", "--model", str(model_dirs / "depth"), str(small), str(large),
                 "--output-dir", str(out), "--processing-resolution", "0"]) == 1
    err = capsys.readouterr().err
    assert "1 of 2 images written" in err
    assert "FAILED" in err and "large.png: out of memory (CUDA out of memory" in err and "--processing-resolution" in err
    assert [p.parent.name for p in _depth_files(out)] == ["small.png"]
