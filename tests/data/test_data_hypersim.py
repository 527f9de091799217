"""Hypersim reader on fixtures in the raw HDF5 release layout and Marigold's PNG layout."""

import numpy as np
import pytest
from data_fixtures import planar_rays, write_hdf5, write_png

from edit2perceive.data import BadSampleError, HypersimReader

H, W = 24, 32
F = 886.81 * W / 1024  # published focal length scaled to the fixture width


def write_raw_frame(root, frame=0, *, plane_depth=3.0, nan_distance=False):
    scene = root / "ai_001_002" / "images"
    stem = f"frame.{frame:04d}"
    rays = planar_rays(H, W, F)
    distance = plane_depth * np.linalg.norm(rays, axis=-1)  # fronto-parallel wall at planar depth 3 m
    entity = np.ones((H, W), np.int32)
    entity[:3, :] = -1  # no geometry in the top rows
    distance[:3, :] = np.nan  # Hypersim stores NaN where there is no geometry
    if nan_distance:
        distance[10, 10] = np.nan
    normal = np.zeros((H, W, 3), np.float32)
    normal[..., 2] = 1.0
    normal[5:8, :] = [0, 0, -1]  # artist normal pointing away from the camera
    normal[8, 0] = 0  # degenerate normal
    color = np.full((H, W, 3), 0.37, np.float32)  # grey HDR radiance
    write_hdf5(scene / "scene_cam_00_final_hdf5" / f"{stem}.color.hdf5", color)
    geo = scene / "scene_cam_00_geometry_hdf5"
    write_hdf5(geo / f"{stem}.depth_meters.hdf5", distance.astype(np.float16))
    write_hdf5(geo / f"{stem}.render_entity_id.hdf5", entity)
    write_hdf5(geo / f"{stem}.normal_cam.hdf5", normal)
    return scene


def test_raw_layout_planar_depth_normals_and_tonemap(tmp_path):
    write_raw_frame(tmp_path)
    reader = HypersimReader(tmp_path)
    (ex,) = list(reader)
    assert ex["meta"]["source"] == "hypersim" and ex["meta"]["id"] == "hypersim/ai_001_002/cam_00/0000"
    assert ex["meta"]["intrinsics"] == pytest.approx((F, F, 15.5, 11.5))
    valid = ex["valid_mask"]
    assert not valid[:3].any() and (ex["depth"][:3] == 0).all()  # render_entity_id == -1
    assert not valid[8, 0]  # zero normal
    # a fronto-parallel wall has the same planar depth everywhere although the distances differ
    np.testing.assert_allclose(ex["depth"][valid], 3.0, atol=3e-3)  # float16 distances
    # normals: back-facing ones flipped toward the camera; all (0, 0, 1)
    np.testing.assert_allclose(ex["normal"][valid], [[0, 0, 1]] * int(valid.sum()), atol=1e-6)
    # tone map on a uniform grey: the 90th percentile maps to exactly 0.8 -> 204
    assert ex["rgb"].dtype == np.uint8 and (ex["rgb"][valid] == 204).all()


def test_targets_subset_and_nan_distance_is_skipped_with_warning(tmp_path):
    write_raw_frame(tmp_path, 0)
    write_raw_frame(tmp_path, 1, nan_distance=True)
    depth_only = list(HypersimReader(tmp_path, targets=("depth",)))
    assert len(depth_only) == 1 and "normal" not in depth_only[0]
    reader = HypersimReader(tmp_path, targets=("depth",))
    with pytest.warns(UserWarning, match=r"frame\.0001\.depth_meters\.hdf5.*NaN"):
        assert [e["meta"]["frame"] for e in reader] == [0]
    assert reader.bad.num_skipped == 1
    with pytest.raises(BadSampleError, match=r"frame\.0001"):
        list(HypersimReader(tmp_path, targets=("depth",), strict=True))


def test_corrupt_and_missing_files(tmp_path):
    scene = write_raw_frame(tmp_path, 0)
    write_raw_frame(tmp_path, 1)
    (scene / "scene_cam_00_geometry_hdf5" / "frame.0001.normal_cam.hdf5").unlink()
    (scene / "scene_cam_00_final_hdf5" / "frame.0000.color.hdf5").write_bytes(b"not hdf5")
    reader = HypersimReader(tmp_path)
    with pytest.warns(UserWarning) as record:
        assert list(reader) == []
    messages = " | ".join(str(w.message) for w in record)
    assert "frame.0000.color.hdf5" in messages and "frame.0001.normal_cam.hdf5: missing file" in messages
    assert reader.bad.num_skipped == 2


def test_marigold_png_layout(tmp_path):
    scene = tmp_path / "train" / "ai_003_004"
    rgb = np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8)
    write_png(scene / "rgb_cam_01_fr0007.png", rgb)
    depth_mm = np.full((H, W), 2500, np.uint16)
    depth_mm[0, 0] = 0  # invalid
    depth_mm[1, 1] = 65535  # 65.535 m > 65.5 m: out of range
    write_png(scene / "depth_plane_cam_01_fr0007.png", depth_mm)
    normal = np.zeros((H, W, 3), np.float32)
    normal[..., 1] = 2.0  # not unit: normalized; (0, 1, 0) = floor seen from above faces the camera here
    np.save(scene / "normal_cam_cam_01_fr0007.npy", normal)
    (ex,) = list(HypersimReader(tmp_path, layout="marigold"))
    assert ex["meta"]["id"] == "hypersim/ai_003_004/cam_01/0007"
    np.testing.assert_array_equal(ex["rgb"], rgb)
    assert not ex["valid_mask"][0, 0] and not ex["valid_mask"][1, 1]
    np.testing.assert_allclose(ex["depth"][ex["valid_mask"]], 2.5)
    # (0, 1, 0) faces the camera only for pixels below the horizon (ray y < 0): flipped above it
    rays = planar_rays(H, W, F)
    expected_y = np.where(rays[..., 1] > 0, -1.0, 1.0)
    np.testing.assert_allclose(ex["normal"][..., 1][ex["valid_mask"]], expected_y[ex["valid_mask"]])


def test_empty_root_names_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="scene_cam_00_final_hdf5"):
        HypersimReader(tmp_path).records()
