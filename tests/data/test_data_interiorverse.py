"""InteriorVerse reader on EXR fixtures in the released dataset_85 layout."""

import math

import numpy as np
import pytest
from data_fixtures import write_exr

from edit2perceive.data import InteriorVerseReader

H, W = 12, 16


def write_view(root, index="000", *, nan_normal=False):
    scene = root / "dataset_85" / "L3D124S8ENDIDQ4J4AUI5NYALUF3P3WK888"
    im = np.zeros((H, W, 3), np.float32)
    im[..., 0], im[..., 1], im[..., 2] = 0.25, 2.0, 0.0  # HDR: the green channel is over-exposed
    normal = np.zeros((H, W, 3), np.float32)
    normal[..., 2] = 1.0  # OpenGL: z toward the eye -> facing the camera
    normal[0, 0] = 0.0  # invalid (norm < 0.1)
    normal[1, 1] = [0.0, 0.0, -3.0]  # back-facing and not unit
    if nan_normal:
        normal[5, 5] = np.nan
    depth = np.full((H, W), 2500.0, np.float32)  # millimetres
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


def test_nan_normal_inside_mask_is_skipped(tmp_path):
    write_view(tmp_path, "000")
    write_view(tmp_path, "001", nan_normal=True)
    reader = InteriorVerseReader(tmp_path)
    with pytest.warns(UserWarning, match=r"001_normal\.exr: NaN/inf normals"):
        assert [e["meta"]["id"].rsplit("/", 1)[1] for e in reader] == ["000"]
