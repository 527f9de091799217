"""3D export: files load with trimesh, points back-project onto the depth map, colours and
normals match their pixels, the synthetic scene's planes are reproduced."""

import math

import numpy as np
import pytest
import trimesh

from edit2perceive.data import synthetic_scenes
from edit2perceive.outputs.pointcloud import intrinsics_from_fov, point_cloud, write_point_cloud


@pytest.fixture(scope="module")
def scene():
    return synthetic_scenes(1, (40, 56), seed=5)[0]


def project(points, intrinsics):
    """Independent inverse of the back-projection: camera point -> (col, row, planar depth)."""
    fx, fy, cx, cy = intrinsics
    z = -points[:, 2].astype(np.float64)
    return fx * points[:, 0] / z + cx, cy - fy * points[:, 1] / z, z


def test_intrinsics_from_fov():
    fx, fy, cx, cy = intrinsics_from_fov(480, 640, 90.0)
    assert fx == pytest.approx(320.0) and fy == pytest.approx(320.0) and (cx, cy) == (319.5, 239.5)
    with pytest.raises(ValueError, match="field of view"):
        intrinsics_from_fov(10, 10, 180)


def test_ply_round_trip_back_projects_with_colours_and_normals(scene, tmp_path):
    k = scene["meta"]["intrinsics"]
    cloud = point_cloud(scene["depth"], scene["rgb"], k, normals=scene["normal"])
    path = write_point_cloud(cloud, tmp_path / "scene.ply")
    loaded = trimesh.load(path)
    assert isinstance(loaded, trimesh.PointCloud) and len(loaded.vertices) == int(scene["valid_mask"].sum())
    u, v, z = project(np.asarray(loaded.vertices), k)
    cols, rows = np.round(u).astype(int), np.round(v).astype(int)
    np.testing.assert_allclose(u, cols, atol=1e-3)
    np.testing.assert_allclose(v, rows, atol=1e-3)
    np.testing.assert_allclose(z, scene["depth"][rows, cols], rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(loaded.colors)[:, :3], scene["rgb"][rows, cols])
    raw = loaded.metadata["_ply_raw"]["vertex"]["data"]
    normals = np.stack([raw["nx"], raw["ny"], raw["nz"]], axis=1)
    np.testing.assert_allclose(normals, scene["normal"][rows, cols], atol=1e-6)
    assert not list(tmp_path.glob(".*partial"))  # nothing half-written left behind


def test_points_lie_on_the_scene_planes(scene):
    """Points on a scene plane (n . p = offset, camera frame) carry that plane's true normal:
    the back-projection puts pixels where the renderer's ray hit."""
    cloud = point_cloud(scene["depth"], scene["rgb"], scene["meta"]["intrinsics"])
    normals = scene["normal"][cloud.pixels[:, 1], cloud.pixels[:, 0]]
    checked = 0
    for surface in scene["meta"]["surfaces"]:
        if surface["type"] != "plane":
            continue
        n = np.asarray(surface["normal"])
        on = np.abs(cloud.points @ n - surface["offset"]) < 1e-4 * max(1.0, abs(surface["offset"]))
        facing = np.abs(normals @ n) > 1 - 1e-4
        checked += int(on.sum())
        assert facing[on].mean() > 0.97, surface
    assert checked > 0.5 * len(cloud.points)


def test_glb_cutout_and_errors(scene, tmp_path):
    mask = scene["alpha"] > 0.5
    k = intrinsics_from_fov(*scene["depth"].shape, 60.0)
    cloud = point_cloud(scene["depth"], scene["rgb"], k, mask=mask)
    path = write_point_cloud(cloud, tmp_path / "cut.glb")
    geom = list(trimesh.load(path).geometry.values())
    assert len(geom) == 1 and len(geom[0].vertices) == int((mask & scene["valid_mask"]).sum())
    u, v, _ = project(np.asarray(geom[0].vertices), k)
    assert mask[np.round(v).astype(int), np.round(u).astype(int)].all()
    assert math.isclose(k[0], (56 / 2) / math.tan(math.radians(30)))
    with pytest.raises(ValueError, match="ply or glb"):
        write_point_cloud(cloud, tmp_path / "cut.obj")
    with pytest.raises(ValueError, match="no point"):
        write_point_cloud(point_cloud(np.zeros((4, 4)), np.zeros((4, 4, 3), np.uint8), k), tmp_path / "e.ply")
    with pytest.raises(ValueError, match="rgb must be"):
        point_cloud(scene["depth"], scene["rgb"][:10], k)
    assert not (tmp_path / "e.ply").exists() and not (tmp_path / "cut.obj").exists()
