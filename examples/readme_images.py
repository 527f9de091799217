"""Make the README's pictures of ensembles / uncertainty and of the 3D export.

    python examples/readme_images.py --models /tmp/tiny-models --output docs/images

``--models`` holds trained tiny ``depth/``, ``normal/``, ``matting/`` pipelines (e.g. from
``python -m benchmarks.bench_ensemble --models DIR``, which trains missing ones). The
scenes are held-out synthetic scenes, so the exact targets are shown next to the predictions.

- ``ensemble_uncertainty.png``: per task one row: input | target | plain prediction |
  ensemble (flip, 2 members: the one that helps these tiny models) | its uncertainty | the ensemble's error.
- ``pointcloud.png``: the depth model's prediction aligned to 12 sparse metric measurements
  (:func:`edit2perceive.outputs.metric_depth.align_to_metric`), exported as a PLY with the normal
  model's normals, read back with trimesh and drawn from two viewpoints (a plain z-buffered
  point splat, no 3D viewer needed); right: the matting cut-out exported alone.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import numpy as np
import PIL.Image

from edit2perceive.tasks import TASKS

SIZE = 64
SHOW = 128  # displayed tile size


def tile(image: PIL.Image.Image) -> PIL.Image.Image:
    return image.convert("RGB").resize((SHOW, SHOW), PIL.Image.NEAREST)


def render_points(points: np.ndarray, colors: np.ndarray, yaw_deg: float, size=(SHOW * 2, SHOW * 2)) -> PIL.Image.Image:
    """Perspective view of a point cloud from a camera orbiting its centre by ``yaw_deg``
    (and looking slightly down), framed to fit; far points drawn first."""
    center = np.median(points, axis=0)
    yaw, pitch = math.radians(yaw_deg), math.radians(-15.0)
    ry = np.array([[math.cos(yaw), 0, math.sin(yaw)], [0, 1, 0], [-math.sin(yaw), 0, math.cos(yaw)]])
    rx = np.array([[1, 0, 0], [0, math.cos(pitch), -math.sin(pitch)], [0, math.sin(pitch), math.cos(pitch)]])
    p = (points - center) @ (rx @ ry).T
    p[:, 2] -= np.linalg.norm(points - center, axis=1).max() * 1.5  # the camera steps back along +z
    u, v = p[:, 0] / -p[:, 2], -p[:, 1] / -p[:, 2]
    w, h = size
    scale = 0.92 * min(w / max(np.ptp(u), 1e-9), h / max(np.ptp(v), 1e-9))
    u = (u - (u.min() + u.max()) / 2) * scale + w / 2
    v = (v - (v.min() + v.max()) / 2) * scale + h / 2
    img = np.full((h, w, 3), 255, np.uint8)
    order = np.argsort(p[:, 2])  # far first, near points paint over
    r = max(1, min(3, math.ceil(w / math.sqrt(len(points)) / 2)))
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            x = np.round(u[order]).astype(int) + dx
            y = np.round(v[order]).astype(int) + dy
            ok = (x >= 0) & (x < w) & (y >= 0) & (y < h)
            img[y[ok], x[ok]] = colors[order][ok]
    return PIL.Image.fromarray(img)


def ensemble_picture(models: Path, scene: dict) -> PIL.Image.Image:
    from edit2perceive import Edit2PerceivePipeline
    from edit2perceive.evaluation.points import oracle_points
    from edit2perceive.outputs.visualize import (
        alpha_to_image,
        depth_to_color,
        normals_to_rgb,
        side_by_side,
        uncertainty_to_image,
    )

    rows = []
    for task in TASKS:
        pipe = Edit2PerceivePipeline.from_pretrained(models / task)
        pipe.set_progress_bar_config(disable=True)
        points = [oracle_points(scene["alpha"])[0]] if task == "matting" else None
        plain = pipe(scene["rgb"], points=points, processing_resolution=0).prediction[0]
        out = pipe(scene["rgb"], points=points, processing_resolution=0, ensemble_size=2, output_uncertainty=True)
        pred, unc = out.prediction[0], out.uncertainty[0]
        mask = scene["valid_mask"]
        if task == "depth":
            gt = np.sqrt(np.where(mask, scene["depth"], 0))
            gt = np.clip((gt - gt[mask].min()) / max(np.ptp(gt[mask]), 1e-6), 0, 1)
            # error after least-squares alignment to the target, in the same normalized sqrt space
            a = np.stack([pred[mask], np.ones(mask.sum())], 1)
            s, t = np.linalg.lstsq(a, gt[mask], rcond=None)[0]
            err = np.where(mask, np.abs(s * pred + t - gt), 0)
            show = [depth_to_color(gt), depth_to_color(plain), depth_to_color(pred)]
        elif task == "normal":
            err = np.where(mask, np.degrees(np.arccos(np.clip((pred * scene["normal"]).sum(-1), -1, 1))) / 90, 0)
            show = [normals_to_rgb(scene["normal"]), normals_to_rgb(plain), normals_to_rgb(pred)]
        else:
            err = np.abs(pred - scene["alpha"])
            show = [alpha_to_image(scene["alpha"]), alpha_to_image(plain), alpha_to_image(pred)]
        rows.append(side_by_side([tile(im) for im in [PIL.Image.fromarray(scene["rgb"]), *show,
                                                      uncertainty_to_image(unc), uncertainty_to_image(err)]]))
    return _stack(rows)


def pointcloud_picture(models: Path, scene: dict) -> PIL.Image.Image:
    import trimesh

    from edit2perceive import Edit2PerceivePipeline
    from edit2perceive.evaluation.points import oracle_points
    from edit2perceive.outputs.metric_depth import align_to_metric
    from edit2perceive.outputs.pointcloud import point_cloud, write_point_cloud
    from edit2perceive.outputs.visualize import side_by_side

    pipes = {t: Edit2PerceivePipeline.from_pretrained(models / t) for t in TASKS}
    for p in pipes.values():
        p.set_progress_bar_config(disable=True)
    depth_pred = pipes["depth"](scene["rgb"], processing_resolution=0).prediction[0]
    normals = pipes["normal"](scene["rgb"], processing_resolution=0).prediction[0]
    alpha = pipes["matting"](scene["rgb"], points=[oracle_points(scene["alpha"])[0]], processing_resolution=0).prediction[0]
    rng = np.random.default_rng(0)
    rows, cols = np.nonzero(scene["valid_mask"])
    pick = rng.choice(len(rows), 12, replace=False)
    measured = [(c, r, scene["depth"][r, c]) for r, c in zip(rows[pick], cols[pick])]
    fit = align_to_metric(depth_pred, measured, encoding=pipes["depth"].task.encoding, method="ransac")
    print(f"metric fit: {fit.summary()}")
    k = scene["meta"]["intrinsics"]
    views = []
    with tempfile.TemporaryDirectory() as tmp:
        whole = write_point_cloud(point_cloud(fit.depth, scene["rgb"], k, normals=normals), Path(tmp) / "scene.ply")
        cut = write_point_cloud(point_cloud(fit.depth, scene["rgb"], k, mask=alpha > 0.5), Path(tmp) / "cutout.glb")
        cloud = trimesh.load(whole)
        pts, colors = np.asarray(cloud.vertices), np.asarray(cloud.colors)[:, :3]
        views += [render_points(pts, colors, 0.0), render_points(pts, colors, 35.0)]
        geom = list(trimesh.load(cut).geometry.values())[0]
        views.append(render_points(np.asarray(geom.vertices), np.asarray(geom.colors)[:, :3], 35.0))
    return side_by_side([PIL.Image.fromarray(scene["rgb"]).resize((SHOW * 2, SHOW * 2), PIL.Image.NEAREST), *views])


def _stack(rows):
    out = PIL.Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows) + 4 * (len(rows) - 1)), "white")
    y = 0
    for r in rows:
        out.paste(r, (0, y))
        y += r.height + 4
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, required=True)
    parser.add_argument("--output", type=Path, default=Path("docs/images"))
    parser.add_argument("--scene", type=int, default=3, help="held-out synthetic scene index (seed 10000)")
    parser.add_argument("--size", type=int, default=SIZE, help="scene side in pixels (the models' training size)")
    args = parser.parse_args(argv)
    from edit2perceive.data import synthetic_scenes

    scene = synthetic_scenes(args.scene + 1, (args.size, args.size), seed=10_000)[args.scene]
    args.output.mkdir(parents=True, exist_ok=True)
    ensemble_picture(args.models, scene).save(args.output / "ensemble_uncertainty.png", optimize=True)
    pointcloud_picture(args.models, scene).save(args.output / "pointcloud.png", optimize=True)
    print(f"wrote {args.output / 'ensemble_uncertainty.png'} and {args.output / 'pointcloud.png'}")


if __name__ == "__main__":
    main()
