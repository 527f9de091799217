"""Transforms: masks follow geometry, nearest resampling of depth, flip negates normal x, intrinsics stay exact."""

import numpy as np
import pytest
from data_fixtures import flat_interior

from edit2perceive.data import TrainTransform, synthetic_scenes
from edit2perceive.data.geometry import normals_from_depth
from edit2perceive.data.transforms import (
    color_jitter,
    crop,
    hflip,
    random_crop,
    resize,
    resize_longest_side,
    resize_to_cover,
)


@pytest.fixture(scope="module")
def scene():
    return synthetic_scenes(1, (60, 80), seed=11)[0]


def _agreement(ex):
    """99th percentile angle (deg) between stored normals and normals from back-projected depth."""
    n, (from_depth, ok) = ex["normal"], normals_from_depth(ex["depth"], ex["valid_mask"], ex["meta"]["intrinsics"])
    flat = flat_interior(ex["depth"], n)
    assert flat.sum() > 200
    cos = np.clip((from_depth[ok & flat] * n[ok & flat]).sum(-1), -1, 1)
    return np.percentile(np.degrees(np.arccos(cos)), 99)


def test_hflip_negates_normal_x_and_keeps_geometry_consistent(scene):
    flipped = hflip(scene)
    np.testing.assert_array_equal(flipped["normal"][:, ::-1, 0], -scene["normal"][..., 0])
    np.testing.assert_array_equal(flipped["normal"][:, ::-1, 1:], scene["normal"][..., 1:])
    np.testing.assert_array_equal(flipped["valid_mask"], scene["valid_mask"][:, ::-1])
    assert _agreement(flipped) < 0.5  # normals of the mirrored geometry, not merely mirrored pixels
    twice = hflip(flipped)
    for k in ("rgb", "depth", "normal", "alpha"):
        np.testing.assert_array_equal(twice[k], scene[k])


def test_nearest_resize_never_invents_depth_and_mask_follows(scene):
    ex = dict(scene)
    mask = scene["valid_mask"].copy()
    mask[::3, ::2] = False  # scattered invalid pixels
    ex["valid_mask"], ex["depth"] = mask, np.where(mask, scene["depth"], 0).astype(np.float32)
    for h, w in ((37, 51), (120, 160)):
        small = resize(ex, h, w)
        assert set(np.unique(small["depth"])) <= set(np.unique(ex["depth"]))
        assert ((small["depth"] == 0) == ~small["valid_mask"]).all()
        np.testing.assert_allclose(np.linalg.norm(small["normal"], axis=-1), 1.0, atol=1e-5)


def test_resize_and_crop_update_intrinsics_exactly():
    big = synthetic_scenes(1, (96, 144), seed=12)[0]
    # nearest downsampling by 3 samples block centres: the new intrinsics must describe them exactly
    small = resize(big, 32, 48)
    np.testing.assert_array_equal(small["depth"], big["depth"][1::3, 1::3])
    assert _agreement(small) < 0.5
    cut = crop(big, 10, 20, 64, 64)
    assert _agreement(cut) < 0.5
    np.testing.assert_array_equal(cut["depth"], big["depth"][10:74, 20:84])
    up = resize_to_cover(big, 128, 128)
    assert up["rgb"].shape[:2] == (128, 192)  # aspect 2:3 kept, covers 128 x 128
    assert resize_longest_side(big, 64)["rgb"].shape[:2] == (48, 64)


def test_train_transform_sizes_flip_rate_and_jitter(scene):
    tf = TrainTransform((32, 48), hflip_p=0.5, jitter={"brightness": 0.3}, seed=0)
    outs = [tf(scene) for _ in range(40)]
    assert all(o["rgb"].shape == (32, 48, 3) and o["depth"].shape == (32, 48) for o in outs)
    with pytest.raises(ValueError, match="multiple of 16"):
        TrainTransform(30)
    with pytest.raises(ValueError, match="multiple of 16"):
        random_crop(scene, 20, 32, np.random.default_rng(0))
    jittered = color_jitter(scene, np.random.default_rng(1))
    np.testing.assert_array_equal(jittered["depth"], scene["depth"])
    assert jittered["rgb"].dtype == np.uint8 and not np.array_equal(jittered["rgb"], scene["rgb"])
