"""`e2p predict` beyond one map: ensembles + uncertainty, metric depth, 3D export, video.
Files are found by their name endings, so the checks hold for any output-folder layout."""

import json

import numpy as np
import pytest
import trimesh
from PIL import Image

from edit2perceive.cli import main
from edit2perceive.outputs.pointcloud import intrinsics_from_fov
from edit2perceive.outputs.video import VideoReader, VideoWriter


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "in" / "room.png"
    path.parent.mkdir()
    Image.fromarray((np.random.default_rng(0).random((40, 56, 3)) * 255).astype(np.uint8)).save(path)
    return path


def one(root, ending):
    found = [p for p in root.rglob("*") if p.name.endswith(ending) and not p.name.startswith(".")]
    assert len(found) == 1, (ending, sorted(p.name for p in root.rglob("*")))
    return found[0]


def test_depth_ensemble_metric_and_export(model_dirs, photo, tmp_path):
    (tmp_path / "m.csv").write_text("x,y,depth\n5,5,2.0\n50,30,6.5\n20,10,3.0\n40,35,5.0\n")
    out = tmp_path / "out"
    code = main(["predict", "--task", "depth", "--model", str(model_dirs / "depth"), str(photo), "--output-dir",
                 str(out), "--processing-resolution", "32", "--ensemble-size", "2", "--uncertainty",
                 "--metric-depth", str(tmp_path / "m.csv"), "--metric-fit", "huber", "--export", "ply", "glb",
                 "--normal-model", str(model_dirs / "normal")])
    assert code == 0
    unc = np.load(one(out, "depth_uncertainty.npy"))
    assert unc.shape == (40, 56) and (unc >= 0).all()
    assert Image.open(one(out, "depth_uncertainty.png")).size == (56, 40)
    fit = json.loads(one(out, "depth_metric_fit.json").read_text())
    assert fit["method"] == "huber" and fit["num_measurements"] == 4 and fit["residual_rms_m"] >= 0
    metric = np.load(one(out, "depth_metric.npy"))
    cloud = trimesh.load(one(out, "depth_cloud.ply"))
    valid = metric > 0
    assert len(cloud.vertices) == int(valid.sum())
    # points back-project onto the metric depth with the default 60-degree intrinsics
    fx, fy, cx, cy = intrinsics_from_fov(40, 56, 60.0)
    v = np.asarray(cloud.vertices, dtype=np.float64)
    cols, rows = np.round(fx * v[:, 0] / -v[:, 2] + cx).astype(int), np.round(cy - fy * v[:, 1] / -v[:, 2]).astype(int)
    np.testing.assert_allclose(-v[:, 2], metric[rows, cols], rtol=1e-5)
    raw = cloud.metadata["_ply_raw"]["vertex"]["data"]
    assert "nx" in raw.dtype.names  # normals from --normal-model
    np.testing.assert_allclose(np.sqrt(raw["nx"] ** 2 + raw["ny"] ** 2 + raw["nz"] ** 2), 1.0, atol=1e-4)
    glb = list(trimesh.load(one(out, "depth_cloud.glb")).geometry.values())[0]
    assert len(glb.vertices) == len(cloud.vertices)


def test_matting_export_is_the_cutout(model_dirs, photo, tmp_path):
    out = tmp_path / "out"
    code = main(["predict", "--task", "matting", "--model", str(model_dirs / "matting"), str(photo), "--output-dir",
                 str(out), "--points", "20,20", "--processing-resolution", "32", "--export", "ply",
                 "--depth-model", str(model_dirs / "depth"), "--intrinsics", "50", "50", "27.5", "19.5"])
    assert code == 0
    alpha = np.load(one(out, "alpha.npy"))
    assert 0 < (alpha > 0.5).mean() < 1  # the tiny model's matte keeps part of the image
    cloud = trimesh.load(one(out, "matting_cloud.ply"))
    assert len(cloud.vertices) == int((alpha > 0.5).sum())
    v = np.asarray(cloud.vertices, dtype=np.float64)
    cols = np.round(50 * v[:, 0] / -v[:, 2] + 27.5).astype(int)
    rows = np.round(19.5 - 50 * v[:, 1] / -v[:, 2]).astype(int)
    assert (alpha[rows, cols] > 0.5).all()


def test_video_input(model_dirs, tmp_path, capsys):
    clip = tmp_path / "clip.mp4"
    writer = VideoWriter(clip, 8.0)
    yy, xx = np.mgrid[0:32, 0:48]
    for k in range(3):
        writer.append(np.stack([xx * 4 + k, yy * 6, 100 + 0 * xx], axis=-1).astype(np.uint8))
    writer.close()
    out = tmp_path / "out"
    code = main(["predict", "--task", "depth", "--model", str(model_dirs / "depth"), str(clip), "--output-dir",
                 str(out), "--processing-resolution", "32", "--temporal-smoothing", "0.5"])
    assert code == 0
    with VideoReader(one(out, "depth.mp4")) as reader:
        frames = list(reader)
    assert len(frames) == 3 and frames[0].shape == (32, 48, 3)
    assert len([p for p in out.rglob("*_depth.npy")]) == 3
    assert len([p for p in out.rglob("*_depth_16bit.png")]) == 3
    again = main(["predict", "--task", "depth", "--model", str(model_dirs / "depth"), str(clip), "--output-dir",
                  str(out), "--skip-existing"])
    assert again == 0 and "already have depth outputs" in capsys.readouterr().err


@pytest.mark.parametrize("extra, message", [
    (["--uncertainty"], "--ensemble-size 2"),
    (["--export", "ply", "--fov", "200"], "--fov"),
    (["--depth-model", "x"], "only used by --export"),
    (["--temporal-smoothing", "1.5"], "temporal-smoothing"),
    (["--metric-depth", "missing.csv"], "no such file"),
])
def test_bad_extra_arguments(model_dirs, photo, tmp_path, capsys, extra, message):
    code = main(["predict", "--task", "depth", "--model", str(model_dirs / "depth"), str(photo), "--output-dir",
                 str(tmp_path / "out")] + extra)
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
