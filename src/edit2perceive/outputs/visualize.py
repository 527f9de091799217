"""Turning predictions into images and files people use.

Colour maps for depth and normals reuse diffusers' ``MarigoldImageProcessor``.
Inputs are single predictions (no batch axis) in the pipeline's ranges:
depth ``H x W`` in [0, 1], normals ``H x W x 3`` unit vectors, alpha ``H x W`` in [0, 1].

``write_outputs`` writes every file of one image, all or nothing on an error (flat names
``{stem}_{suffix}``). ``write_prediction_set`` writes one input's files as a folder that
appears by one rename, so that even a kill (SIGKILL, power loss) leaves either the whole
set or nothing under the final name, and after it the folder holds exactly this set plus
what the set's owner did not write (its manifest decides); ``clean_stale_partials``
removes what a killed run left in its staging folders.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageDraw
from diffusers.pipelines.marigold.marigold_image_processing import MarigoldImageProcessor

from ..io.atomic import FILE_MODE, atomic_files, atomic_folder, clean_stale_staging, write_bytes_atomic
from ..io.manifest import MANIFEST, owned, write_manifest


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


@functools.lru_cache(maxsize=8)
def _color_lut(color_map: str) -> np.ndarray:
    """``65536 x 3`` uint8: diffusers' colour map at every 16-bit depth level."""
    ramp = np.linspace(0, 1, 65536, dtype=np.float32)[None]
    return np.asarray(MarigoldImageProcessor.visualize_depth([ramp], color_map=color_map)[0])[0]


def depth_to_color(depth, color_map: str = "Spectral") -> PIL.Image.Image:
    """Depth in [0, 1] -> colour-mapped RGB (near = low end of the map).

    diffusers' ``MarigoldImageProcessor.visualize_depth`` colours a 16-bit ramp once; each
    pixel then looks its level up (at most 1 of 255 off the direct mapping, and a few bytes
    per pixel instead of float buffers: outputs are written at the input's size)."""
    levels = np.round(np.clip(_np(depth), 0, 1) * 65535).astype(np.uint16)
    return PIL.Image.fromarray(_color_lut(color_map)[levels])


def depth_to_png16(depth) -> PIL.Image.Image:
    """Depth in [0, 1] -> 16-bit greyscale image ``round(value * 65535)`` (mode ``I;16``).

    Not diffusers' ``export_depth_to_16bit_png``: it truncates instead of rounding and
    passes ``mode=`` to ``Image.fromarray``, which Pillow 13 rejects.
    """
    return PIL.Image.fromarray(np.round(np.clip(_np(depth), 0, 1) * 65535).astype(np.uint16))


def normals_to_rgb(normals) -> PIL.Image.Image:
    """Unit normals (x right, y up, z toward the viewer) -> RGB = (n + 1) / 2."""
    n = np.clip(_np(normals).astype(np.float32), -1, 1)
    return MarigoldImageProcessor.visualize_normals(n[None])[0]


def alpha_to_image(alpha) -> PIL.Image.Image:
    """Alpha in [0, 1] -> 8-bit greyscale."""
    return PIL.Image.fromarray(np.round(np.clip(_np(alpha), 0, 1) * 255).astype(np.uint8), mode="L")


def cutout(rgb: PIL.Image.Image, alpha) -> PIL.Image.Image:
    """The input with the predicted alpha as its alpha channel (RGBA)."""
    a = alpha_to_image(alpha)
    if a.size != rgb.size:
        a = a.resize(rgb.size, PIL.Image.BILINEAR)
    out = rgb.convert("RGB").copy()
    out.putalpha(a)
    return out


def draw_points(rgb: PIL.Image.Image, points, radius: int | None = None) -> PIL.Image.Image:
    """Copy of ``rgb`` with the ``(x, y)`` prompt points drawn as red dots."""
    out = rgb.convert("RGB").copy()
    draw = PIL.ImageDraw.Draw(out)
    r = radius or max(2, round(max(out.size) / 100))
    for x, y in np.asarray(points, dtype=float).reshape(-1, 2):
        draw.ellipse([x - r, y - r, x + r, y + r], fill=(255, 0, 0), outline=(255, 255, 255))
    return out


def side_by_side(images: list[PIL.Image.Image], gap: int = 4) -> PIL.Image.Image:
    """Panel of images in a row (each resized to the first one's height), on white."""
    height = images[0].height
    resized = [im.convert("RGB").resize((max(1, round(im.width * height / im.height)), height)) for im in images]
    panel = PIL.Image.new("RGB", (sum(im.width for im in resized) + gap * (len(resized) - 1), height), "white")
    x = 0
    for im in resized:
        panel.paste(im, (x, 0))
        x += im.width + gap
    return panel


def render_outputs(task: str, rgb: PIL.Image.Image, prediction, points=None) -> dict[str, object]:
    """All outputs of one prediction: ``{file suffix: PIL image or numpy array}``."""
    pred = _np(prediction)
    shown = draw_points(rgb, points) if points is not None else rgb.convert("RGB")
    if task == "depth":
        color = depth_to_color(pred)
        return {"depth.png": color, "depth_16bit.png": depth_to_png16(pred), "depth.npy": pred.astype(np.float32),
                "panel.png": side_by_side([shown, color])}
    if task == "normal":
        color = normals_to_rgb(pred)
        return {"normal.png": color, "normal.npy": pred.astype(np.float32), "panel.png": side_by_side([shown, color])}
    if task == "matting":
        matte = alpha_to_image(pred)
        return {"alpha.png": matte, "cutout.png": cutout(rgb, pred), "alpha.npy": pred.astype(np.float32),
                "panel.png": side_by_side([shown, matte])}
    raise ValueError(f"unknown task {task!r}")


def write_outputs(outputs: dict[str, object], output_dir: str | os.PathLike, stem: str) -> list[Path]:
    """Write ``{stem}_{suffix}`` files for every output, all or nothing
    (:func:`edit2perceive.io.atomic.atomic_files`)."""
    names = [f"{stem}_{suffix}" for suffix in outputs]
    with atomic_files(output_dir, names) as staged:
        for value, name in zip(outputs.values(), names):
            _save(value, staged[name])
    return [Path(output_dir) / name for name in names]


def _save(value, path: Path) -> None:
    if isinstance(value, np.ndarray):
        np.save(path, value, allow_pickle=False)
    else:
        value.save(path)


def write_prediction_set(outputs: dict[str, object], output_dir: str | os.PathLike, name: str,
                         owner: str = "e2p predict") -> Path:
    """Write ``outputs`` (``{file name: PIL image or numpy array}``) as the folder
    ``output_dir / name`` (``name`` may hold ``/``), crash-safely, recording them in the
    folder's manifest under ``owner`` (see :func:`prediction_set`)."""
    target = Path(output_dir) / name
    with prediction_set(output_dir, name, list(outputs), owner=owner) as staging:
        for file_name, value in outputs.items():
            try:
                _save(value, staging / file_name)
            except OSError as err:  # e.g. disk full: say which file of which set
                raise OSError(err.errno, f"cannot write {target / file_name}: {err.strerror or err}") from err
    return target


@contextlib.contextmanager
def prediction_set(output_dir: str | os.PathLike, name: str, names: list[str], owner: str) -> Iterator[Path]:
    """Yield a staging folder to write the entries ``names`` (files or folders) of the set
    ``output_dir / name`` into; on success it replaces that folder in one rename
    (:func:`edit2perceive.io.atomic.atomic_folder`), so the final name shows either the old or
    the new complete set, even after a kill; on an error nothing changes.

    The new folder holds the new entries, recorded in its manifest under ``owner``
    (:mod:`edit2perceive.io.manifest`), and the old folder's other entries (hard links) except
    those the manifest proves written under the same ``owner``: after a re-run of a task its
    files are exactly this run's (extras included), beside other tasks' files and the user's.
    A new entry whose name is taken by an entry not proven ours is an error
    (``FileExistsError``) raised before anything is written.
    """
    target = Path(output_dir) / name
    before = owned(target) if target.is_dir() else {}
    if target.is_dir():
        taken = sorted(n for n in names if (target / n).exists() and n not in before)
        if taken:
            raise FileExistsError(f"{target / taken[0]}: exists and was not written by e2p (not in {MANIFEST}); "
                                  "move it away or choose another --output-dir")
    with atomic_folder(target) as staging:
        yield staging
        for root, _dirs, files in os.walk(staging):  # the new files: 0644 whatever wrote them
            for f in files:
                os.chmod(os.path.join(root, f), FILE_MODE)
        owners = dict.fromkeys(names, owner)
        if target.is_dir():
            for kept in target.iterdir():
                if kept.name in names or kept.name == MANIFEST or before.get(kept.name) == owner:
                    continue
                _link(kept, staging / kept.name)
                if kept.name in before:
                    owners[kept.name] = before[kept.name]
        write_manifest(staging, owners)


def _link(src: Path, dst: Path) -> None:
    """``dst`` as a hard-linked (else copied) twin of the file or folder ``src``."""
    def link(a, b):
        try:
            os.link(a, b)
        except OSError:  # file system without hard links
            shutil.copy2(a, b)
    if src.is_dir() and not src.is_symlink():
        shutil.copytree(src, dst, copy_function=link, symlinks=True)
    elif src.is_symlink():
        os.symlink(os.readlink(src), dst)
    else:
        link(src, dst)


def clean_stale_partials(output_dir: str | os.PathLike) -> list[Path]:
    """Remove what killed runs left in ``output_dir``: staging entries of
    :mod:`edit2perceive.io.atomic`, and the ``.e2p-partial-`` / ``.e2p-replaced-`` folders of
    0.2. Those of running processes are left alone."""
    return clean_stale_staging(output_dir, legacy_prefixes=LEGACY_STAGING_PREFIXES, recursive=True)


#: staging folders written by edit2perceive 0.2 (``.e2p-partial-<pid>-<token>``, ``.e2p-replaced-...``)
LEGACY_STAGING_PREFIXES = (".e2p-partial-", ".e2p-replaced-")


class EncodedFile:
    """File contents already encoded (a point cloud, JSON): written as they are by the
    file writers here, which call ``value.save(path)`` like for a PIL image."""

    def __init__(self, data: bytes):
        self.data = bytes(data)

    def save(self, path) -> None:
        write_bytes_atomic(path, self.data)  # synced, 0644 like every output


def uncertainty_to_image(uncertainty) -> PIL.Image.Image:
    """An uncertainty map (``H x W``, or ``H x W x 3`` normals' repeated spread) as diffusers'
    Marigold uncertainty visualization (grey, brighter = less certain, 95th percentile saturated)."""
    u = _np(uncertainty).astype(np.float32)
    if u.ndim == 3:
        u = u[..., 0]
    return MarigoldImageProcessor.visualize_uncertainty(u[None, :, :, None])[0]
