"""Tiny benchmark datasets written in each set's real on-disk format (see the readers'
docstrings and PROTOCOLS.md). Every writer returns what a test needs to check decoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def _rgb(h, w, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=(h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    return np.kron(base, np.ones((8, 8, 1), dtype=np.uint8))[:h, :w]


def _save_rgb(path: Path, h, w, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_rgb(h, w, seed)).save(path)


def _save_u16(path: Path, arr: np.ndarray):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr.astype(np.uint16)).save(path)


def depth_field(h, w, lo=1.0, hi=5.0, seed=0):
    """Smooth positive depth (metres) with a little texture."""
    yy, xx = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(seed)
    return (lo + (hi - lo) * (0.6 * xx / w + 0.4 * yy / h) + rng.uniform(0, 0.05, size=(h, w))).astype(np.float32)


def write_nyuv2(root: Path, with_split: bool = True) -> dict[str, np.ndarray]:
    """test/<scene>/rgb_XXXX.png (480 x 640) + depth_XXXX.png (uint16 mm) + filled_XXXX.png."""
    gts, lines = {}, []
    for i, (scene, idx) in enumerate([("kitchen_0004", "0001"), ("office_0005", "0009")]):
        depth_mm = np.round(depth_field(480, 640, 0.5, 9.0, seed=i) * 1000).astype(np.uint16)
        depth_mm[:5, :5] = 0  # missing measurements
        depth_mm[100, 100] = 12000  # beyond 10 m: invalid
        d = root / "test" / scene
        _save_rgb(d / f"rgb_{idx}.png", 480, 640, seed=i)
        _save_u16(d / f"depth_{idx}.png", depth_mm)
        _save_u16(d / f"filled_{idx}.png", np.maximum(depth_mm, 500))
        sid = f"test/{scene}/rgb_{idx}"
        gts[sid] = depth_mm.astype(np.float32) / 1000
        lines.append(f"{sid}.png test/{scene}/depth_{idx}.png test/{scene}/filled_{idx}.png")
    if with_split:
        (root / "filename_list_test.txt").write_text("\n".join(lines) + "\n")
    return gts


def kitti_line(i: int, with_gt: bool) -> tuple[str, str]:
    drive = "2011_09_26_drive_0002_sync"
    rgb = f"2011_09_26/{drive}/image_02/data/{i:010d}.png"
    depth = f"{drive}/proj_depth/groundtruth/image_02/{i:010d}.png" if with_gt else "None"
    return rgb, depth


def write_kitti(root: Path, n: int = 3, without_gt=(1,), size=(375, 1242)) -> dict[str, np.ndarray]:
    """Eigen split file (rgb depth|None focal) + RGB PNGs + uint16/256 depth PNGs."""
    h, w = size
    gts, lines = {}, []
    for i in range(n):
        rgb, depth = kitti_line(i, i not in without_gt)
        _save_rgb(root / rgb, h, w, seed=i)
        lines.append(f"{rgb} {depth} 721.5377")
        if depth != "None":
            d = np.zeros((h, w), np.float32)
            d[h // 3:, :] = depth_field(h - h // 3, w, 3.0, 60.0, seed=i)  # sparse-ish: top third empty
            d[-1, -1] = 90.0  # beyond 80 m: invalid
            _save_u16(root / depth, np.round(d * 256))
            gts[rgb[:-4]] = np.round(d * 256).astype(np.float32) / 256
    (root / "eigen_test_files_with_gt.txt").write_text("\n".join(lines) + "\n")
    return gts


def write_eth3d(root: Path, size=(40, 60)) -> dict[str, np.ndarray]:
    """rgb/<scene>/images/dslr_images/*.JPG + raw float32 depth with the same (.JPG) name."""
    h, w = size
    gts = {}
    for i, scene in enumerate(["courtyard", "office"]):
        name = f"DSC_{286 + i:04d}.JPG"
        _save_rgb(root / f"rgb/{scene}/images/dslr_images/{name}", h, w, seed=i)
        depth = depth_field(h, w, 2.0, 30.0, seed=i)
        depth[0, :10] = np.inf  # no measurement
        p = root / f"depth/{scene}_dslr_depth/{scene}/ground_truth_depth/dslr_images/{name}"
        p.parent.mkdir(parents=True, exist_ok=True)
        depth.astype("<f4").tofile(p)
        gts[f"rgb/{scene}/images/dslr_images/{name[:-4]}"] = np.where(np.isinf(depth), 0, depth)
    return gts


def write_scannet(root: Path, with_split: bool = True, size=(48, 64)) -> dict[str, np.ndarray]:
    """<scene>/color/NNNNNN.jpg + <scene>/depth/NNNNNN.png (uint16 mm) + sampled list."""
    h, w = size
    gts, lines = {}, []
    for i, scene in enumerate(["scene0011_00", "scene0015_00"]):
        _save_rgb(root / scene / "color" / f"{i * 100:06d}.jpg", h, w, seed=i)
        mm = np.round(depth_field(h, w, 0.5, 4.0, seed=i) * 1000).astype(np.uint16)
        _save_u16(root / scene / "depth" / f"{i * 100:06d}.png", mm)
        gts[f"{scene}/color/{i * 100:06d}"] = mm / 1000.0
        lines.append(f"{scene}/color/{i * 100:06d}.jpg {scene}/depth/{i * 100:06d}.png")
    if with_split:
        (root / "scannet_val_sampled_list_800_1.txt").write_text("\n".join(lines) + "\n")
    return gts


def write_diode(root: Path, size=(48, 64)) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{indoors,outdoor}/scene_*/scan_*/<name>.png + _depth.npy (H x W x 1) + _depth_mask.npy."""
    h, w = size
    out = {}
    for i, (split, hi) in enumerate([("indoors", 8.0), ("outdoor", 150.0)]):
        stem = f"{split}/scene_{19 + i:05d}/scan_{183 + i:05d}/{19 + i:05d}_{183 + i:05d}_{split}_000_010"
        _save_rgb(root / f"{stem}.png", h, w, seed=i)
        depth = depth_field(h, w, 0.7, hi, seed=i)
        mask = np.ones((h, w), bool)
        mask[:, :4] = False
        np.save(root / f"{stem}_depth.npy", depth[..., None])
        np.save(root / f"{stem}_depth_mask.npy", mask.astype(np.float32))
        out[stem] = (depth, mask)
    return out


def random_normals(h, w, seed=0):
    rng = np.random.default_rng(seed)
    n = rng.normal(size=(h, w, 3))
    n[..., 2] = np.abs(n[..., 2]) + 0.5
    return (n / np.linalg.norm(n, axis=-1, keepdims=True)).astype(np.float32)


def write_normals(root: Path, split_name: str | None, size=(24, 32)) -> dict[str, np.ndarray]:
    """<name>_img.png + <name>_normal.npy (H x W x 3); optional Marigold split file."""
    h, w = size
    gts, lines = {}, []
    for i in range(2):
        stem = f"scene_{i}/{i:06d}"
        _save_rgb(root / f"{stem}_img.png", h, w, seed=i)
        n = random_normals(h, w, seed=i)
        n[0, 0] = 0.0  # invalid pixel
        n[0, 1] = [5e-4, 0, 0]  # tiny vector: valid for Marigold (> 0), invalid for Edit2Perceive (> 1e-3)
        np.save(root / f"{stem}_normal.npy", n)
        gts[stem] = n
        lines.append(f"{stem}_img.png {stem}_normal.npy")
    if split_name:
        (root / split_name).write_text("\n".join(lines) + "\n")
    return gts


def matte(h, w, seed=0):
    """Alpha with an opaque core, a soft border and background."""
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(yy - h / 2, xx - w / 2)
    a = np.clip((0.35 * min(h, w) - r) / 4.0, 0, 1)
    return np.round(a * 255).astype(np.uint8)


def trimap_from(alpha_u8):
    t = np.full(alpha_u8.shape, 128, np.uint8)
    t[alpha_u8 == 0] = 0
    t[alpha_u8 == 255] = 255
    return t


MATTING_DIRS = {
    "aim500": ("AIM-500", "original"),
    "p3m500np": ("P3M-10k/validation/P3M-500-NP", "original_image"),
    "am2k": ("AM-2k/validation", "original"),
}


def write_matting(root: Path, dataset: str, size=(40, 52), with_trimap=True) -> dict[str, np.ndarray]:
    """The set's folders (original[_image]/*.jpg, mask/*.png, trimap/*.png) under ``root``."""
    sub, image_dir = MATTING_DIRS[dataset]
    base = root / sub
    h, w = size
    out = {}
    for i, stem in enumerate(["o_0a1b2c", "p_3d4e5f"]):
        _save_rgb(base / image_dir / f"{stem}.jpg", h, w, seed=i)
        a = matte(h, w, seed=i)
        (base / "mask").mkdir(parents=True, exist_ok=True)
        Image.fromarray(a).save(base / "mask" / f"{stem}.png")
        if with_trimap:
            (base / "trimap").mkdir(parents=True, exist_ok=True)
            Image.fromarray(trimap_from(a)).save(base / "trimap" / f"{stem}.png")
        out[stem] = a.astype(np.float32) / 255
    return out
