"""Sintel reader on .dpt/.cam fixtures (official layout) and Marigold's normals layout."""

import numpy as np
import pytest
from data_fixtures import planar_rays, write_cam, write_dpt, write_png

from edit2perceive.data import SintelReader
from edit2perceive.data.formats import read_sintel_dpt

H, W, F = 20, 24, 20.0


def ground_and_wall():
    """Rows below the horizon see a floor 1 unit below the camera, the rest a wall at depth 8."""
    rays = planar_rays(H, W, F)
    depth = np.full((H, W), 8.0)
    floor = rays[..., 1] < -1 / 8.0  # floor (y = -1) is nearer than the wall: depth = -1 / ray_y < 8
    depth[floor] = -1.0 / rays[..., 1][floor]
    return depth.astype(np.float32), floor


def write_official(root, frame=1, depth=None):
    rgb = np.full((H, W, 3), 90, np.uint8)
    write_png(root / "training" / "final" / "alley_1" / f"frame_{frame:04d}.png", rgb)
    write_dpt(root / "training" / "depth" / "alley_1" / f"frame_{frame:04d}.dpt", ground_and_wall()[0] if depth is None else depth)
    K = np.array([[F, 0, (W - 1) / 2], [0, F, (H - 1) / 2], [0, 0, 1]])
    write_cam(root / "training" / "camdata_left" / "alley_1" / f"frame_{frame:04d}.cam", K)


def test_dpt_round_trip_and_bad_tag(tmp_path):
    depth = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(read_sintel_dpt(write_dpt(tmp_path / "a.dpt", depth)), depth)
    raw = bytearray((tmp_path / "a.dpt").read_bytes())
    raw[:4] = np.array([1.0], "<f4").tobytes()
    (tmp_path / "b.dpt").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"b\.dpt: wrong \.dpt tag"):
        read_sintel_dpt(tmp_path / "b.dpt")
    (tmp_path / "c.dpt").write_bytes(bytes(raw[:20]))
    with pytest.raises(ValueError, match=r"c\.dpt"):
        read_sintel_dpt(tmp_path / "c.dpt")


def test_normals_from_depth_floor_and_wall(tmp_path):
    write_official(tmp_path)
    (ex,) = list(SintelReader(tmp_path, targets=("normal", "depth")))
    _, floor = ground_and_wall()
    valid = ex["valid_mask"]
    assert ex["meta"]["intrinsics"] == pytest.approx((F, F, 11.5, 9.5))
    wall = valid & ~floor
    ground = valid & floor
    assert wall.sum() > 50 and ground.sum() > 20
    np.testing.assert_allclose(ex["normal"][wall], np.tile([0, 0, 1], (int(wall.sum()), 1)), atol=1e-5)
    np.testing.assert_allclose(ex["normal"][ground], np.tile([0, 1, 0], (int(ground.sum()), 1)), atol=1e-5)
    # the last wall row touches the floor (a crease in inverse depth) and the border have no normal
    last_wall_row = np.nonzero(floor.any(1))[0].min() - 1
    assert not valid[last_wall_row].any() and not valid[0].any() and not valid[:, -1].any()
    np.testing.assert_allclose(ex["depth"][valid], ground_and_wall()[0][valid])


def test_nan_depth_is_skipped(tmp_path):
    write_official(tmp_path, 1)
    bad = ground_and_wall()[0]
    bad[3, 3] = np.nan
    write_official(tmp_path, 2, depth=bad)
    reader = SintelReader(tmp_path)
    with pytest.warns(UserWarning, match=r"frame_0002\.dpt: NaN depth"):
        assert [e["meta"]["id"] for e in reader] == ["sintel/alley_1/0001"]


def test_marigold_normals_layout_crop_and_split_file(tmp_path):
    h, w = 6, 1024  # Sintel frames are 1024 wide; Marigold's loader keeps columns 221:803
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[..., 0] = np.arange(w) % 256
    rgb[..., 1] = np.arange(w) // 256
    write_png(tmp_path / "cave_2" / "frame_0004_img.png", rgb)
    normal = np.zeros((h, w, 3), np.float32)
    normal[..., 0] = 1.0
    normal[:2] = 0.0  # sky
    normal[:, 220] = [0, 0, 5.0]  # last cropped-off column: must not appear
    np.save(tmp_path / "cave_2" / "frame_0004_normal.npy", normal)
    write_png(tmp_path / "alley_2" / "frame_0001_img.png", rgb)
    np.save(tmp_path / "alley_2" / "frame_0001_normal.npy", normal)
    split = tmp_path / "sintel_filtered.txt"
    split.write_text("alley_2/frame_0001_img.png alley_2/frame_0001_normal.npy\n")  # Marigold's list, first row
    (ex,) = list(SintelReader(tmp_path, split_file=split))
    assert ex["meta"]["id"] == "sintel/alley_2/0001"
    assert ex["rgb"].shape == (h, 582, 3) and ex["normal"].shape == (h, 582, 3)
    cols = ex["rgb"][0, :, 0].astype(int) + 256 * ex["rgb"][0, :, 1].astype(int)
    np.testing.assert_array_equal(cols, np.arange(221, 803))
    assert not ex["valid_mask"][:2].any() and ex["valid_mask"][2:].all()
    np.testing.assert_allclose(ex["normal"][2:, :, 0], 1.0)
    full = [e for e in SintelReader(tmp_path, marigold_crop=False) if e["meta"]["id"].endswith("0004")][0]
    assert full["rgb"].shape == (h, w, 3)
