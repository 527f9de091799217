"""Synthetic scenes: the API contract, exact geometry, soft alpha, determinism, speed."""

import time

import numpy as np
import pytest
from data_fixtures import flat_interior

from edit2perceive.data import synthetic_scenes
from edit2perceive.data.geometry import normals_from_depth, pixel_rays


def test_api_contract():
    examples = list(synthetic_scenes(num_samples=8, size=(64, 96), seed=0))
    assert len(examples) == 8
    for ex in examples:
        assert ex["rgb"].dtype == np.uint8 and ex["rgb"].shape == (64, 96, 3)
        assert ex["depth"].dtype == np.float32 and ex["depth"].shape == (64, 96)
        assert ex["normal"].dtype == np.float32 and ex["normal"].shape == (64, 96, 3)
        assert ex["alpha"].dtype == np.float32 and 0 <= ex["alpha"].min() and ex["alpha"].max() <= 1
        assert ex["valid_mask"].dtype == bool
        np.testing.assert_allclose(np.linalg.norm(ex["normal"], axis=-1), 1.0, atol=1e-5)
        assert (ex["depth"][~ex["valid_mask"]] == 0).all() and (ex["depth"][ex["valid_mask"]] > 0).all()
        assert ex["meta"]["source"] == "synthetic" and len(ex["meta"]["intrinsics"]) == 4
    assert len({ex["meta"]["id"] for ex in examples}) == 8


def test_deterministic_by_seed():
    a, b = synthetic_scenes(3, (32, 32), seed=5), synthetic_scenes(3, (32, 32), seed=5)
    for x, y in zip(a, b, strict=True):
        for k in ("rgb", "depth", "normal", "alpha"):
            np.testing.assert_array_equal(x[k], y[k])
    assert not np.array_equal(synthetic_scenes(1, (32, 32), seed=6)[0]["rgb"], a[0]["rgb"])


def _surface_residual(points, surface, R):
    if surface["type"] == "plane":
        return np.abs(points @ np.array(surface["normal"]) - surface["offset"])
    if surface["type"] == "sphere":
        return np.abs(np.linalg.norm(points - np.array(surface["center"]), axis=-1) - surface["radius"])
    world = points @ R.T  # box faces in world coordinates
    lo, hi = np.array(surface["lo"]), np.array(surface["hi"])
    inside = np.all((world >= lo - 1e-4) & (world <= hi + 1e-4), axis=-1)
    face = np.minimum(np.abs(world - lo), np.abs(world - hi)).min(-1)
    return np.where(inside, face, np.inf)


def test_depth_is_exact_planar_depth_of_the_described_scene():
    for ex in synthetic_scenes(6, (48, 64), seed=1):
        valid, meta = ex["valid_mask"], ex["meta"]
        R = np.array(meta["world_from_camera"])
        points = ex["depth"][..., None] * pixel_rays(48, 64, meta["intrinsics"])  # z = -depth: planar depth
        residual = np.min([_surface_residual(points, s, R) for s in meta["surfaces"]], axis=0)
        assert np.all(residual[valid] < 1e-3 * ex["depth"][valid] + 1e-4)


def test_normals_agree_with_normals_from_back_projected_depth():
    angles = []
    for ex in synthetic_scenes(6, (96, 128), seed=2):
        from_depth, ok = normals_from_depth(ex["depth"], ex["valid_mask"], ex["meta"]["intrinsics"])
        # compare where the analytic normal is locally constant (plane interiors, away from edges)
        n = ex["normal"]
        sel = ok & flat_interior(ex["depth"], n)
        cos = np.clip((from_depth[sel] * n[sel]).sum(-1), -1, 1)
        angles.append(np.degrees(np.arccos(cos)))
    angles = np.concatenate(angles)
    assert angles.size > 5000 and np.percentile(angles, 99) < 0.5


def test_alpha_is_a_soft_matte_of_the_foreground_sphere():
    for ex in synthetic_scenes(4, (64, 96), seed=3):
        alpha, meta = ex["alpha"], ex["meta"]
        fg = next(s for s in meta["surfaces"] if s.get("foreground"))
        points = ex["depth"][..., None] * pixel_rays(64, 96, meta["intrinsics"])
        on_fg = np.abs(np.linalg.norm(points - np.array(fg["center"]), axis=-1) - fg["radius"]) < 1e-3
        soft = (alpha > 0.02) & (alpha < 0.98)
        assert soft.sum() > 10  # anti-aliased / feathered edge
        assert (alpha[on_fg & ~soft] > 0.5).all() and (alpha[~on_fg & ~soft] < 0.5).all()
        # rgb is the composite: where alpha == 1 the foreground colours alone are visible
        assert ex["rgb"][alpha >= 1].std() > 0


def test_thousands_per_minute():
    start = time.perf_counter()
    n = sum(1 for _ in synthetic_scenes(60, (128, 128), seed=4))
    per_minute = n / (time.perf_counter() - start) * 60
    assert per_minute > 1000, per_minute


def test_scenes_are_bit_identical_to_the_recorded_renders():
    # sha256 of renders recorded before the scene ranges were named (fixture provenance inside)
    import hashlib
    import json
    from pathlib import Path

    from edit2perceive.data.synthetic import render_scene

    recorded = json.loads((Path(__file__).parent / "fixtures" / "synthetic_scene_sha256.json").read_text())
    for case in recorded["cases"]:
        ex = render_scene(tuple(case["seed"]), tuple(case["size"]))
        got = {k: hashlib.sha256(np.ascontiguousarray(ex[k]).tobytes()
                                 + str((ex[k].dtype.str, ex[k].shape)).encode()).hexdigest()
               for k in ("rgb", "depth", "normal", "alpha", "valid_mask")}
        got["meta"] = hashlib.sha256(json.dumps(ex["meta"], sort_keys=True, default=str).encode()).hexdigest()
        assert got == case["sha256"], case["seed"]


def test_scene_ranges_drive_the_scene():
    import dataclasses
    import math

    from edit2perceive.data.synthetic import SCENE_RANGES, render_scene

    ranges = dataclasses.replace(SCENE_RANGES, hfov=(60, 60), sky_probability=1.0, wall_top=(0.5, 0.5),
                                 boxes=(0, 1), spheres=(0, 1), rectangle_probability=0.0, side_wall_probability=0.0)
    ex = render_scene(3, (32, 48), ranges)
    assert ex["meta"]["intrinsics"][0] == pytest.approx(24 / math.tan(math.radians(30)), rel=1e-12)
    kinds = [s["type"] for s in ex["meta"]["surfaces"]]
    assert kinds == ["plane", "plane", "sphere"]  # floor, back wall, the foreground sphere
    assert not ex["valid_mask"].all()  # sky above the 0.5 m wall
