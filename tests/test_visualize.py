"""Output renderings and atomic writing."""

import numpy as np
import pytest
from PIL import Image

from edit2perceive import visualize


def test_depth_outputs():
    depth = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    png16 = visualize.depth_to_png16(depth)
    assert png16.mode == "I;16"
    values = np.asarray(png16)
    assert values[0, 0] == 0 and values[-1, -1] == 65535
    color = visualize.depth_to_color(depth)
    assert color.size == (4, 3) and color.mode == "RGB"
    assert np.asarray(color)[0, 0].tolist() != np.asarray(color)[-1, -1].tolist()


def test_normals_rgb_convention():
    n = np.zeros((2, 2, 3), np.float32)
    n[..., 2] = 1  # facing the camera -> (128, 128, 255)
    px = np.asarray(visualize.normals_to_rgb(n))[0, 0]
    assert px.tolist() == [127, 127, 255]


def test_alpha_and_cutout():
    alpha = np.array([[0.0, 0.5], [1.0, 0.25]], np.float32)
    assert np.asarray(visualize.alpha_to_image(alpha)).tolist() == [[0, 128], [255, 64]]
    rgb = Image.new("RGB", (2, 2), (10, 20, 30))
    cut = visualize.cutout(rgb, alpha)
    assert cut.mode == "RGBA" and np.asarray(cut)[1, 0].tolist() == [10, 20, 30, 255]


def test_panel_and_points():
    a, b = Image.new("RGB", (40, 20), "red"), Image.new("RGB", (20, 10), "blue")
    panel = visualize.side_by_side([a, b], gap=4)
    assert panel.size == (40 + 4 + 40, 20)
    dotted = visualize.draw_points(a, [(5, 5)], radius=2)
    assert np.asarray(dotted)[5, 5].tolist() == [255, 0, 0] and np.asarray(a)[5, 5].tolist() == [255, 0, 0]


def test_write_outputs_all_or_nothing(tmp_path):
    rgb = Image.new("RGB", (16, 16))
    outputs = visualize.render_outputs("depth", rgb, np.random.rand(16, 16).astype(np.float32))
    paths = visualize.write_outputs(outputs, tmp_path, "img")
    assert sorted(p.name for p in paths) == sorted(p.name for p in tmp_path.iterdir())
    assert {p.name for p in paths} == {"img_depth.png", "img_depth_16bit.png", "img_depth.npy", "img_panel.png"}

    class Broken:
        def save(self, path):
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        visualize.write_outputs({"a.npy": np.zeros(2), "b.png": Broken()}, tmp_path / "x", "img")
    assert list((tmp_path / "x").iterdir()) == []  # nothing partial left


def test_write_prediction_set_replaces_atomically_keeps_other_files_and_names_the_path(tmp_path, monkeypatch):
    import errno

    rgb = Image.new("RGB", (16, 16))
    outputs = visualize.render_outputs("depth", rgb, np.full((16, 16), 0.25, np.float32))
    folder = visualize.write_prediction_set(outputs, tmp_path, "a/b.png")
    assert folder == tmp_path / "a" / "b.png"
    assert sorted(p.name for p in folder.iterdir() if p.name != ".e2p-manifest.json") == sorted(outputs)
    (folder / "alpha.npy").write_bytes(b"another task's file")
    again = dict(outputs, **{"depth.npy": np.full((16, 16), 0.75, np.float32)})
    visualize.write_prediction_set(again, tmp_path, "a/b.png")
    assert np.load(folder / "depth.npy")[0, 0] == 0.75 and (folder / "alpha.npy").read_bytes() == b"another task's file"

    def disk_full(value, path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(visualize, "_save", disk_full)
    with pytest.raises(OSError, match=r"cannot write .*a/b.png/depth.png: No space left on device"):
        visualize.write_prediction_set(outputs, tmp_path, "a/b.png")
    assert np.load(folder / "depth.npy")[0, 0] == 0.75  # the previous set is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["a"]  # no staging folder left


def test_depth_color_lookup_matches_diffusers_colour_map():
    from diffusers.pipelines.marigold.marigold_image_processing import MarigoldImageProcessor

    depth = np.random.default_rng(0).random((60, 80)).astype(np.float32)
    direct = np.asarray(MarigoldImageProcessor.visualize_depth([depth], color_map="Spectral")[0]).astype(int)
    looked_up = np.asarray(visualize.depth_to_color(depth)).astype(int)
    assert np.abs(direct - looked_up).max() <= 1 and (direct != looked_up).mean() < 0.01  # 16-bit levels
