"""Virtual KITTI 2 reader on fixtures in the released scene/variant layout."""

import numpy as np
import pytest
from data_fixtures import write_jpg, write_png

from edit2perceive.data import VirtualKitti2Reader

H, W = 12, 40


def write_frame(base_rgb, base_depth, scene="Scene01", variant="clone", camera="Camera_0", frame=0):
    rgb = np.full((H, W, 3), 128, np.uint8)
    write_jpg(base_rgb / scene / variant / "frames" / "rgb" / camera / f"rgb_{frame:05d}.jpg", rgb)
    depth_cm = np.full((H, W), 1234, np.uint16)  # 12.34 m
    depth_cm[0, :] = 65535  # sky: 655.35 m, beyond 80 m
    depth_cm[1, 0] = 5  # 5 cm, below 0.1 m
    write_png(base_depth / scene / variant / "frames" / "depth" / camera / f"depth_{frame:05d}.png", depth_cm)


def test_merged_layout_centimetres_ranges_and_intrinsics(tmp_path):
    write_frame(tmp_path, tmp_path, frame=0)
    write_frame(tmp_path, tmp_path, variant="fog", camera="Camera_1", frame=3)
    (tmp_path / "Scene01" / "clone" / "intrinsic.txt").write_text(
        "frame cameraID K[0,0] K[1,1] K[0,2] K[1,2]\n0 0 725.0087 725.0087 620.5 187\n0 1 725.0087 725.0087 620.5 187\n")
    examples = {e["meta"]["id"]: e for e in VirtualKitti2Reader(tmp_path)}
    assert sorted(examples) == ["vkitti2/Scene01/clone/Camera_0/00000", "vkitti2/Scene01/fog/Camera_1/00003"]
    ex = examples["vkitti2/Scene01/clone/Camera_0/00000"]
    assert ex["meta"]["intrinsics"] == (725.0087, 725.0087, 620.5, 187.0)
    assert "intrinsics" not in examples["vkitti2/Scene01/fog/Camera_1/00003"]["meta"]  # no intrinsic.txt there
    assert not ex["valid_mask"][0].any() and not ex["valid_mask"][1, 0]
    np.testing.assert_allclose(ex["depth"][ex["valid_mask"]], 12.34, rtol=1e-6)
    assert ex["valid_mask"].sum() == H * W - W - 1
    assert len(VirtualKitti2Reader(tmp_path, variants=["fog"])) == 1


def test_split_rgb_depth_layout_and_missing_depth(tmp_path):
    write_frame(tmp_path / "rgb", tmp_path / "depth", frame=0)
    write_frame(tmp_path / "rgb", tmp_path / "depth", frame=1)
    (tmp_path / "depth" / "Scene01" / "clone" / "frames" / "depth" / "Camera_0" / "depth_00001.png").unlink()
    reader = VirtualKitti2Reader(tmp_path)
    with pytest.warns(UserWarning, match=r"depth_00001\.png: missing file"):
        assert [e["meta"]["frame"] for e in reader] == [0]
    assert reader.bad.num_skipped == 1


def test_wrong_bit_depth_is_reported(tmp_path):
    write_frame(tmp_path, tmp_path)
    write_png(tmp_path / "Scene01/clone/frames/depth/Camera_0/depth_00000.png", np.zeros((H, W), np.uint8))
    with pytest.raises(Exception, match=r"depth_00000\.png.*16-bit"):
        list(VirtualKitti2Reader(tmp_path, strict=True))


def test_marigold_list_selects_frames_and_stats_count_skips(tmp_path):
    """Rows of Marigold's / the paper's vkitti_train.txt (Marigold's rgb/ + depth/ layout)."""
    for variant, frame in (("clone", 0), ("clone", 1), ("15-deg-left", 212)):
        write_frame(tmp_path / "rgb", tmp_path / "depth", scene="Scene06", variant=variant, frame=frame)
    (tmp_path / "depth/Scene06/clone/frames/depth/Camera_0/depth_00001.png").write_bytes(b"broken")
    split = tmp_path / "vkitti_train_filtered_7k.txt"
    split.write_text("rgb/Scene06/15-deg-left/frames/rgb/Camera_0/rgb_00212.jpg "
                     "depth/Scene06/15-deg-left/frames/depth/Camera_0/depth_00212.png\n"
                     "rgb/Scene06/clone/frames/rgb/Camera_0/rgb_00001.jpg depth/Scene06/clone/frames/depth/Camera_0/depth_00001.png\n")
    reader = VirtualKitti2Reader(tmp_path, split_file=split)
    with pytest.warns(UserWarning, match="depth_00001.png"):
        assert [e["meta"]["id"] for e in reader] == ["vkitti2/Scene06/15-deg-left/Camera_0/00212"]
    s = reader.stats.summary()
    assert s["read"] == 1 and s["skipped"] == 1 and s["listed_missing"] == 0
    assert s["pixels"] == H * W and s["invalid_pixels"] == W + 1  # sky row + the 5 cm pixel
    assert len(s["skip_reasons"]) == 1
