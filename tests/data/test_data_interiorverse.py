"""InteriorVerse reader on EXR fixtures in the released dataset_85 layout."""

import math

import numpy as np
import pytest
from data_fixtures import write_exr, write_png

from edit2perceive.data import InteriorVerseReader

H, W = 12, 16


def write_view(root, index="000", *, nan_normal=False, nan_radiance=False, nan_depth=False):
    scene = root / "dataset_85" / "L3D124S8ENDIDQ4J4AUI5NYALUF3P3WK888"
    im = np.zeros((H, W, 3), np.float32)
    im[..., 0], im[..., 1], im[..., 2] = 0.25, 2.0, 0.0  # HDR: the green channel is over-exposed
    normal = np.zeros((H, W, 3), np.float32)
    normal[..., 2] = 1.0  # OpenGL: z toward the eye -> facing the camera
    normal[0, 0] = 0.0  # invalid (norm < 0.1)
    normal[1, 1] = [0.0, 0.0, -3.0]  # back-facing and not unit
    if nan_normal:
        normal[5, 5] = np.nan
    if nan_radiance:
        im[6, 6] = [np.nan, 1.0, np.inf]
    depth = np.full((H, W), 2500.0, np.float32)  # millimetres
    if nan_depth:
        depth[7, 7] = np.nan
    depth[2, :] = np.inf  # the README: inf on invalid pixels
    mask = np.ones((H, W), np.float32)
    mask[2, :] = 0
    write_exr(scene / f"{index}_im.exr", {"RGB": im})
    write_exr(scene / f"{index}_normal.exr", {"R": normal[..., 0], "G": normal[..., 1], "B": normal[..., 2]})
    write_exr(scene / f"{index}_depth.exr", {"Y": depth})
    write_exr(scene / f"{index}_mask.exr", {"Y": mask})


def test_exr_view_normals_depth_rgb(tmp_path):
    write_view(tmp_path)
    (ex,) = list(InteriorVerseReader(tmp_path, targets=("normal", "depth")))
    # LDR = clip(0, 1) ** (1 / 2.2): 0.25 -> 0.5325 -> 136; 2.0 -> 255; 0 -> 0
    assert tuple(ex["rgb"][5, 5]) == (round(0.25 ** (1 / 2.2) * 255), 255, 0)
    valid = ex["valid_mask"]
    assert not valid[0, 0] and not valid[2].any() and valid[1, 1]
    np.testing.assert_allclose(ex["normal"][valid], np.tile([0, 0, 1], (int(valid.sum()), 1)), atol=1e-6)
    np.testing.assert_allclose(ex["depth"][valid], 2.5)
    f = (W / 2) / math.tan(math.radians(85) / 2)
    assert ex["meta"]["intrinsics"] == pytest.approx((f, f, 7.5, 5.5))


def test_non_finite_pixels_are_invalid_and_counted_not_skipped(tmp_path):
    write_view(tmp_path, "000")
    write_view(tmp_path, "001", nan_normal=True, nan_radiance=True, nan_depth=True)
    reader = InteriorVerseReader(tmp_path, targets=("normal", "depth"))
    clean, bad = list(reader)
    assert reader.bad.num_skipped == 0 and reader.stats.read == 2
    for i, j in [(5, 5), (6, 6), (7, 7)]:
        assert clean["valid_mask"][i, j] and not bad["valid_mask"][i, j]
    assert tuple(bad["rgb"][6, 6]) == (0, 0, 0)  # non-finite radiance -> 0, as the authors' loader
    np.testing.assert_array_equal(bad["valid_mask"] | np.isin(np.arange(H * W).reshape(H, W), [5 * W + 5, 6 * W + 6, 7 * W + 7]),
                                  clean["valid_mask"])
    assert bad["meta"]["nonfinite_pixels"] == 3 and clean["meta"]["nonfinite_pixels"] == 0
    # statistics: invalid = row 2 (mask) + (0, 0) (zero normal) per view, plus the 3 non-finite pixels
    assert reader.stats.nonfinite_pixels == 3
    assert reader.stats.invalid_pixels == 2 * (W + 1) + 3 and reader.stats.pixels == 2 * H * W


def test_marigold_preprocessed_layout_and_split_file(tmp_path):
    scenes = tmp_path / "scenes_85"
    for scene, index in [("L3D124S21ENDIMIPXNIUI5L7ELUF3P3XY888", "008"), ("L3D124S21ENDIMIPXNIUI5L7ELUF3P3XY888", "007"),
                         ("L3D124S21ENDIMPH3DQUI5NFSLUF3P3XG888", "009")]:
        write_png(scenes / scene / f"{index}_img.png", np.full((H, W, 3), 200, np.uint8))
        normal = np.zeros((H, W, 3), np.float32)
        normal[..., 2] = 1.0
        np.save(scenes / scene / f"{index}_normal.npy", normal)
    # Marigold's interiorverse_filtered_train.txt rows, as published (the paper's add a _depth.npy column)
    split = tmp_path / "interiorverse_filtered_train.txt"
    split.write_text("L3D124S21ENDIMIPXNIUI5L7ELUF3P3XY888/008_img.png L3D124S21ENDIMIPXNIUI5L7ELUF3P3XY888/008_depth.npy "
                     "L3D124S21ENDIMIPXNIUI5L7ELUF3P3XY888/008_normal.npy\n"
                     "L3D124S21ENDIMPH3DQUI5NFSLUF3P3XG888/009_img.png L3D124S21ENDIMPH3DQUI5NFSLUF3P3XG888/009_normal.npy\n"
                     "L3D124S21ENDIMIPXNIUI5L7ELUF3P3XY888/099_img.png L3D124S21ENDIMIPXNIUI5L7ELUF3P3XY888/099_normal.npy\n")
    reader = InteriorVerseReader(tmp_path, split_file=split)
    examples = list(reader)
    assert [e["meta"]["id"] for e in examples] == ["interiorverse/L3D124S21ENDIMIPXNIUI5L7ELUF3P3XY888/008",
                                                   "interiorverse/L3D124S21ENDIMPH3DQUI5NFSLUF3P3XG888/009"]
    assert reader.stats.listed_missing == ["L3D124S21ENDIMIPXNIUI5L7ELUF3P3XY888/099_img.png "
                                           "L3D124S21ENDIMIPXNIUI5L7ELUF3P3XY888/099_normal.npy"]
    assert examples[0]["valid_mask"].all() and (examples[0]["rgb"] == 200).all()
    assert len(InteriorVerseReader(tmp_path)) == 3
