#!/usr/bin/env python
"""Data throughput: examples per second (one process, one worker) for each reader, the synthetic
scenes, the datasets streams and a mixed stream, on fixtures written at the datasets' native
resolutions in a temporary folder.

    .venv/bin/python benchmarks/bench_data.py [--frames 8] [--synthetic-size 256]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from PIL import Image


def _png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _jpg(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, quality=90)


def _h5(path, array):
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.create_dataset("dataset", data=array, compression="gzip")


def _exr(path, channels):
    import OpenEXR

    path.parent.mkdir(parents=True, exist_ok=True)
    with OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}, channels) as f:
        f.write(str(path))


def write_fixtures(root: Path, n: int, rng) -> dict:
    """n frames per dataset at native size; returns name -> reader factory."""
    from edit2perceive import data

    def img(h, w):
        return rng.integers(0, 255, (h, w, 3), dtype=np.uint8)

    for k in range(n):  # Hypersim raw, 768 x 1024
        s = root / "hypersim" / "ai_001_001" / "images"
        _h5(s / "scene_cam_00_final_hdf5" / f"frame.{k:04d}.color.hdf5", rng.random((768, 1024, 3)).astype(np.float16))
        g = s / "scene_cam_00_geometry_hdf5"
        _h5(g / f"frame.{k:04d}.depth_meters.hdf5", rng.uniform(1, 10, (768, 1024)).astype(np.float16))
        _h5(g / f"frame.{k:04d}.render_entity_id.hdf5", np.ones((768, 1024), np.int32))
        n_cam = np.zeros((768, 1024, 3), np.float16)
        n_cam[..., 2] = 1
        _h5(g / f"frame.{k:04d}.normal_cam.hdf5", n_cam)
    for k in range(n):  # VKITTI2, 375 x 1242
        v = root / "vkitti2" / "Scene01" / "clone" / "frames"
        _jpg(v / "rgb" / "Camera_0" / f"rgb_{k:05d}.jpg", img(375, 1242))
        _png(v / "depth" / "Camera_0" / f"depth_{k:05d}.png", rng.integers(100, 8000, (375, 1242)).astype(np.uint16))
    for k in range(n):  # InteriorVerse, 480 x 640
        s = root / "interiorverse" / "dataset_85" / "scene0"
        _exr(s / f"{k:03d}_im.exr", {"RGB": rng.random((480, 640, 3)).astype(np.float32)})
        nrm = np.zeros((480, 640, 3), np.float32)
        nrm[..., 2] = 1
        _exr(s / f"{k:03d}_normal.exr", {"RGB": nrm})
        _exr(s / f"{k:03d}_mask.exr", {"Y": np.ones((480, 640), np.float32)})
    for k in range(n):  # Sintel official, 436 x 1024
        t = root / "sintel" / "training"
        _png(t / "final" / "alley_1" / f"frame_{k + 1:04d}.png", img(436, 1024))
        (t / "depth" / "alley_1").mkdir(parents=True, exist_ok=True)
        with open(t / "depth" / "alley_1" / f"frame_{k + 1:04d}.dpt", "wb") as f:
            np.array([202021.25], "<f4").tofile(f)
            np.array([1024, 436], "<i4").tofile(f)
            rng.uniform(5, 6, (436, 1024)).astype("<f4").tofile(f)
        (t / "camdata_left" / "alley_1").mkdir(parents=True, exist_ok=True)
        with open(t / "camdata_left" / "alley_1" / f"frame_{k + 1:04d}.cam", "wb") as f:
            np.array([202021.25], "<f4").tofile(f)
            np.array([[1120, 0, 511.5], [0, 1120, 217.5], [0, 0, 1]], "<f8").tofile(f)
            np.hstack([np.eye(3), np.zeros((3, 1))]).astype("<f8").tofile(f)
    alpha = np.zeros((800, 600), np.uint8)
    alpha[200:600, 150:450] = 255
    for k in range(n):  # matting, ~800 x 600
        c = root / "comp1k" / "Training_set" / "Adobe-licensed images"
        _png(c / "fg" / f"fg{k}.png", img(800, 600))
        _png(c / "alpha" / f"fg{k}.png", alpha)
        _png(root / "d646" / "Train" / "FG" / f"fg{k}.png", img(800, 600))
        _png(root / "d646" / "Train" / "GT" / f"fg{k}.png", alpha)
        _jpg(root / "bg" / f"bg{k}.jpg", img(480, 640))
        _jpg(root / "am2k" / "train" / "original" / f"m_{k:08x}.jpg", img(800, 600))
        _png(root / "am2k" / "train" / "mask" / f"m_{k:08x}.png", alpha)
        _jpg(root / "coco" / f"{k:012d}.jpg", img(800, 600))
        _png(root / "cocomat" / "trimap_alpha" / f"{k:012d}_person_00.png", np.concatenate([alpha, alpha], 1))
    return {
        "hypersim": lambda: data.HypersimReader(root / "hypersim"),
        "vkitti2": lambda: data.VirtualKitti2Reader(root / "vkitti2"),
        "interiorverse": lambda: data.InteriorVerseReader(root / "interiorverse"),
        "sintel": lambda: data.SintelReader(root / "sintel"),
        "composition1k": lambda: data.Composition1kReader(root / "comp1k", background_dir=root / "bg"),
        "distinctions646": lambda: data.Distinctions646Reader(root / "d646", background_dir=root / "bg"),
        "am2k": lambda: data.AM2kReader(root / "am2k"),
        "coco_matting": lambda: data.CocoMattingReader(root / "cocomat", coco_dir=root / "coco"),
    }


def rate(iterable, limit=None) -> tuple[float, int]:
    start, count = time.perf_counter(), 0
    for _ in iterable:
        count += 1
        if limit and count >= limit:
            break
    return count / (time.perf_counter() - start), count


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=8, help="fixture frames per dataset")
    parser.add_argument("--synthetic-size", type=int, default=256)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    from edit2perceive.data import TrainTransform, source_dataset, synthetic_scenes, task_mixture

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        readers = write_fixtures(Path(tmp), args.frames, np.random.default_rng(0))
        for name, make in readers.items():
            first = next(iter(make()))
            shape = "x".join(map(str, first["rgb"].shape[:2]))
            reader_rate, n = rate(make())
            stream_rate, _ = rate(source_dataset(make(), num_shards=4))
            rows.append((name, shape, reader_rate, stream_rate, n))
        tf = TrainTransform(512, jitter={}, seed=0)
        hyp_tf = rate(tf(e) for e in readers["hypersim"]())[0]
        mixes = {}
        for task, names in (("depth", ("hypersim", "vkitti2")), ("normal", ("hypersim", "interiorverse", "sintel")),
                            ("matting", ("composition1k", "distinctions646", "am2k", "coco_matting"))):
            mixes[task] = rate(task_mixture(task, {n: readers[n]() for n in names}, seed=0, num_shards=4), limit=4 * args.frames)[0]
    s = args.synthetic_size
    syn = rate(synthetic_scenes(60, (s, s), seed=0))[0]
    syn_stream = rate(source_dataset(synthetic_scenes(60, (s, s), seed=0), num_shards=4))[0]

    print(f"{'source':<18}{'native HxW':>12}{'reader ex/s':>14}{'datasets stream ex/s':>22}")
    for name, shape, r, st, _ in rows:
        print(f"{name:<18}{shape:>12}{r:>14.1f}{st:>22.1f}")
    print(f"{'synthetic':<18}{f'{s}x{s}':>12}{syn:>14.1f}{syn_stream:>22.1f}")
    print()
    print(f"{'mixed stream':<18}{'ex/s':>12}")
    for task, r in mixes.items():
        print(f"{task:<18}{r:>12.1f}")
    print(f"\nhypersim + TrainTransform(512, jitter): {hyp_tf:.1f} ex/s;  synthetic {s}x{s}: {syn * 60:.0f} scenes/min")
    print("(one process, one worker; fixtures hold random content at native resolution)")


if __name__ == "__main__":
    main()
