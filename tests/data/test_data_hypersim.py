"""Hypersim reader on fixtures in the raw HDF5 release layout and Marigold's PNG layout."""

from pathlib import Path

import numpy as np
import pytest
from data_fixtures import planar_rays, write_hdf5, write_png

from edit2perceive.data import BadSampleError, HypersimReader, make_example, transforms
from edit2perceive.data.geometry import pinhole_at_principal_point, pixel_rays
from edit2perceive.data.hypersim_camera import STANDARD_M_CAM_FROM_UV, cam_from_pixel, read_camera_table

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


# ---- per-scene cameras: real rows of Hypersim's metadata_camera_parameters.csv ----

CSV = Path(__file__).parent / "fixtures" / "hypersim_metadata_camera_parameters_3rows.csv"


def notebook_rays(m_cam_from_uv, h, w):
    """Rays as in Hypersim's notebook 01_casting_rays_that_match_hypersim_images.ipynb:
    uv at pixel centres in [-1, 1], v = +1 at the top row, ray = M_cam_from_uv @ (u, v, 1)."""
    u, v = np.meshgrid(np.linspace(-1 + 1 / w, 1 - 1 / w, w), np.linspace(-1 + 1 / h, 1 - 1 / h, h)[::-1])
    uv1 = np.dstack([u, v, np.ones_like(u)])
    return uv1 @ np.asarray(m_cam_from_uv).T


def write_scene_frame(root, scene, m_cam_from_uv, h, w, planar=3.0, frame=0):
    """A fronto-parallel wall at planar depth ``planar`` seen by the scene's true camera."""
    rays = notebook_rays(m_cam_from_uv, h, w)
    distance = planar * np.linalg.norm(rays, axis=-1) / -rays[..., 2]
    images = root / scene / "images"
    stem = f"frame.{frame:04d}"
    write_hdf5(images / "scene_cam_00_final_hdf5" / f"{stem}.color.hdf5", np.full((h, w, 3), 0.5, np.float16))
    write_hdf5(images / "scene_cam_00_geometry_hdf5" / f"{stem}.depth_meters.hdf5", distance.astype(np.float32))
    write_hdf5(images / "scene_cam_00_geometry_hdf5" / f"{stem}.render_entity_id.hdf5", np.ones((h, w), np.int32))


def csv_matrix(scene):
    table = read_camera_table(CSV)
    return np.array(table[scene])


def test_camera_table_real_rows():
    table = read_camera_table(CSV)
    assert sorted(table) == ["ai_001_001", "ai_021_002", "ai_037_002"]
    np.testing.assert_allclose(table["ai_001_001"], STANDARD_M_CAM_FROM_UV, atol=1e-12)
    # ai_037_002 (the notebook's example): row values of the CSV, principal point where the ray is
    # the optical axis: x = 0 -> u = -m02 / m00, y = 0 -> v = -m12 / m11, then to pixel centres
    m = csv_matrix("ai_037_002")
    assert m[0, 2] == pytest.approx(-0.06955286861651404) and m[1, 2] == pytest.approx(0.09273312506660672)
    cx = (1 - m[0, 2] / m[0, 0]) * 1024 / 2 - 0.5
    cy = (1 + m[1, 2] / m[1, 1]) * 768 / 2 - 0.5
    fx, fy, px, py = pinhole_at_principal_point(cam_from_pixel(m, 768, 1024))
    assert (px, py) == pytest.approx((cx, cy), abs=1e-6)
    assert (px, py) == pytest.approx((572.94, 465.42), abs=0.01)  # not the centre (511.5, 383.5)
    # the standard row gives the published focal length and centre
    assert pinhole_at_principal_point(cam_from_pixel(STANDARD_M_CAM_FROM_UV, 768, 1024)) == pytest.approx(
        (886.81, 886.81, 511.5, 383.5), abs=0.01)


def test_scene_camera_gives_exact_planar_depth_and_standard_camera_is_178_percent_off(tmp_path):
    """ai_021_002 at full resolution: with the CSV the wall is at 3 m everywhere; with the fixed
    camera the planar depth is up to 17.8 % too large (the worst scene of the 482)."""
    h, w = 768, 1024
    write_scene_frame(tmp_path, "ai_021_002", csv_matrix("ai_021_002"), h, w)
    reader = HypersimReader(tmp_path, targets=("depth",), camera_csv=CSV)
    (ex,) = list(reader)
    np.testing.assert_allclose(ex["depth"], 3.0, rtol=1e-5)
    assert ex["meta"]["camera_source"] == "metadata_camera_parameters"
    np.testing.assert_allclose(ex["meta"]["cam_from_pixel"], cam_from_pixel(csv_matrix("ai_021_002"), h, w))
    with pytest.warns(UserWarning, match="ai_021_002: no camera_csv given; using the standard camera"):
        (fixed,) = list(HypersimReader(tmp_path, targets=("depth",)))
    assert fixed["meta"]["camera_source"] == "standard"
    assert fixed["depth"].max() / 3.0 - 1 == pytest.approx(0.178, abs=5e-4)


def test_csv_found_in_root_and_missing_scene_warns_once(tmp_path):
    import shutil
    import warnings

    small = (24, 32)
    shutil.copy(CSV, tmp_path / "metadata_camera_parameters.csv")
    write_scene_frame(tmp_path, "ai_037_002", csv_matrix("ai_037_002"), *small, frame=0)
    write_scene_frame(tmp_path, "ai_099_001", STANDARD_M_CAM_FROM_UV, *small, frame=0)
    write_scene_frame(tmp_path, "ai_099_001", STANDARD_M_CAM_FROM_UV, *small, frame=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        examples = list(HypersimReader(tmp_path, targets=("depth",)))
    messages = [str(c.message) for c in caught if "standard camera" in str(c.message)]
    assert len(messages) == 1 and "ai_099_001: scene missing from" in messages[0]  # once per scene
    for ex in examples:
        np.testing.assert_allclose(ex["depth"], 3.0, rtol=1e-5)  # both cameras exact
    tilted = examples[0]["meta"]
    assert tilted["scene"] == "ai_037_002" and tilted["intrinsics"][2] > (small[1] - 1) / 2 + 1


def test_transforms_move_the_camera_matrix_with_the_pixels():
    m = cam_from_pixel(csv_matrix("ai_037_002"), 48, 64)
    ex = make_example(np.zeros((48, 64, 3), np.uint8), depth=np.ones((48, 64)),
                      meta={"source": "t", "id": "t", "cam_from_pixel": m.tolist(),
                            "intrinsics": pinhole_at_principal_point(m)})
    rays = pixel_rays(48, 64, m)
    cropped = transforms.crop(ex, 5, 7, 32, 48)
    np.testing.assert_allclose(pixel_rays(32, 48, cropped["meta"]["cam_from_pixel"]), rays[5:37, 7:55], atol=1e-12)
    flipped = transforms.hflip(ex)
    np.testing.assert_allclose(pixel_rays(48, 64, flipped["meta"]["cam_from_pixel"]),
                               rays[:, ::-1] * [-1, 1, 1], atol=1e-12)
    half = transforms.resize(ex, 24, 32)  # new pixel (j, i) covers old (2j + 0.5, 2i + 0.5)
    jj, ii = np.meshgrid(np.arange(32), np.arange(24))
    old = np.stack([2 * jj + 0.5, 2 * ii + 0.5, np.ones_like(jj, float)], -1) @ np.asarray(m).T
    np.testing.assert_allclose(pixel_rays(24, 32, half["meta"]["cam_from_pixel"]), old / -old[..., 2:], atol=1e-12)


def test_split_lists_of_marigold_select_frames_of_both_layouts(tmp_path):
    write_raw_frame(tmp_path / "raw", 0)
    write_raw_frame(tmp_path / "raw", 1)
    depth_list = tmp_path / "filename_list_train_filtered.txt"  # Marigold hypersim_depth rows
    depth_list.write_text("ai_001_002/rgb_cam_00_fr0001.png ai_001_002/depth_plane_cam_00_fr0001.png\n"
                          "ai_001_002/rgb_cam_00_fr0005.png ai_001_002/depth_plane_cam_00_fr0005.png\n")
    with pytest.warns(UserWarning, match="standard camera"):
        reader = HypersimReader(tmp_path / "raw", targets=("depth",), split_file=depth_list)
        assert [e["meta"]["frame"] for e in reader] == [1]
    assert len(reader.stats.listed_missing) == 1 and reader.stats.read == 1
    raw_list = tmp_path / "raw_list.txt"  # a list of the raw colour files works too
    raw_list.write_text("ai_001_002/images/scene_cam_00_final_hdf5/frame.0000.color.hdf5\n")
    with pytest.warns(UserWarning, match="standard camera"):
        assert [e["meta"]["frame"] for e in HypersimReader(tmp_path / "raw", targets=("depth",), split_file=raw_list)] == [0]
    scene = tmp_path / "marigold" / "train" / "ai_003_004"
    for frame in (0, 7):
        write_png(scene / f"rgb_cam_01_fr{frame:04d}.png", np.zeros((H, W, 3), np.uint8))
        write_png(scene / f"depth_plane_cam_01_fr{frame:04d}.png", np.full((H, W), 2500, np.uint16))
    normals_list = tmp_path / "hypersim_filtered_train.txt"  # Marigold hypersim_normals rows carry the split
    normals_list.write_text("train/ai_003_004/rgb_cam_01_fr0007.png train/ai_003_004/normal_cam_cam_01_fr0007.npy\n")
    reader = HypersimReader(tmp_path / "marigold", targets=("depth",), split_file=normals_list)
    assert [e["meta"]["id"] for e in reader] == ["hypersim/ai_003_004/cam_01/0007"]
    with pytest.raises(ValueError, match="does not name a hypersim sample"):
        (tmp_path / "bad.txt").write_text("foo.png bar.png\n")
        HypersimReader(tmp_path / "marigold", split_file=tmp_path / "bad.txt").records()


def test_camera_matrix_survives_shards_and_streams():
    from edit2perceive.data.records import decode_example, encode_shard_row, encode_stream_row

    m = cam_from_pixel(csv_matrix("ai_037_002"), 6, 8)
    ex = make_example(np.zeros((6, 8, 3), np.uint8), depth=np.ones((6, 8)),
                      meta={"source": "hypersim", "id": "hypersim/a", "cam_from_pixel": m.tolist()})
    for encode in (encode_shard_row, encode_stream_row):
        np.testing.assert_array_equal(decode_example(encode(ex))["meta"]["cam_from_pixel"], m)
