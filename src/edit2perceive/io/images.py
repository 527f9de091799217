"""Reading user images into the pipeline's input form, with clear errors.

Everything becomes a float tensor ``1 x 3 x H x W`` in [0, 1], channel order R, G, B:
- PIL images of any mode: greyscale (``L``, ``LA``) is replicated to RGB; alpha (``RGBA``,
  ``LA``, ``P`` with transparency) is dropped; 16-bit (``I;16``, ``I`` with values in
  0..65535) is scaled by its full range 65535 to 8-bit levels; 32-bit integer images (mode
  ``I``) with values outside 0..65535 are refused (no silent clipping); float (``F``) is
  taken as [0, 1]; ``CMYK``/``YCbCr`` are converted by PIL.
- EXIF orientation is applied (files and PIL images): the image is used as it is displayed,
  so matting points are given on the displayed image.
- numpy arrays: uint8 or uint16 ``H x W`` / ``H x W x 3`` / ``H x W x 4``.
- torch tensors: float ``3 x H x W`` or ``B x 3 x H x W`` in [0, 1].
- ``str`` / ``os.PathLike``: opened with PIL (unreadable or truncated files raise
  ``ValueError`` naming the file).
Images smaller than 16 px on a side are rejected (the model works on 16-px tokens). Files
declaring more than ``max_image_pixels()`` pixels (default 64 megapixels, environment
variable ``E2P_MAX_IMAGE_PIXELS``) are refused from their header, before any decoding: a
small file can declare a huge image (a decompression bomb).
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import PIL.Image
import PIL.ImageOps
import torch

MIN_SIDE = 16
#: default bound on decoded pixels (width x height) of an image file; see :func:`max_image_pixels`
DEFAULT_MAX_IMAGE_PIXELS = 64_000_000
#: largest value of a 32-bit integer (mode ``I``) image that is read as 16-bit data
MAX_INT_VALUE = 65535


def max_image_pixels() -> int:
    """Bound on width x height of image files: ``E2P_MAX_IMAGE_PIXELS`` or 64 megapixels."""
    text = os.environ.get("E2P_MAX_IMAGE_PIXELS", "")
    if not text:
        return DEFAULT_MAX_IMAGE_PIXELS
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"E2P_MAX_IMAGE_PIXELS must be a positive integer, got {text!r}")
    return value


def _upright(img: PIL.Image.Image) -> PIL.Image.Image:
    """The image as displayed: its EXIF orientation applied (the tag is then removed)."""
    try:
        orientation = img.getexif().get(0x0112, 1)
    except Exception:  # unreadable EXIF block: use the stored pixels
        return img
    return PIL.ImageOps.exif_transpose(img) if orientation not in (None, 1) else img


def open_image(path, max_pixels: int | None = None, *, name: str | None = None) -> PIL.Image.Image:
    """Open and fully decode an image file (a path or a binary file object, then ``name``
    names it in errors), upright (EXIF orientation applied).

    ``ValueError`` naming the file if it cannot be read or declares more than ``max_pixels``
    (default :func:`max_image_pixels`) pixels; the size check reads only the header.
    """
    limit = max_image_pixels() if max_pixels is None else int(max_pixels)
    name = name or (os.fspath(path) if isinstance(path, (str, os.PathLike)) else "image")
    try:
        with warnings.catch_warnings():  # PIL's own bomb warning: the limit below decides
            warnings.simplefilter("ignore", PIL.Image.DecompressionBombWarning)
            img = PIL.Image.open(path)
        with img:
            width, height = img.size
            if width * height > limit:
                raise ValueError(
                    f"{name}: image declares {width}x{height} = {width * height:,} pixels, over the limit of "
                    f"{limit:,} (set E2P_MAX_IMAGE_PIXELS to allow larger images, or downscale the file)")
            img.load()  # force decoding now: truncated files fail here, not later
            return _upright(img).copy()
    except FileNotFoundError:
        raise ValueError(f"{name}: no such file") from None
    except PIL.Image.DecompressionBombError as err:
        raise ValueError(f"{name}: refused by PIL as a decompression bomb, over the limit of {limit:,} pixels "
                         f"({err})") from err
    except (PIL.UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(f"{name}: not a readable image ({err})") from err


def _array_to_unit_rgb(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    elif arr.dtype == np.uint16:
        arr = np.round(arr.astype(np.float64) / 65535.0 * 255.0).astype(np.float32) / 255.0
    elif arr.dtype in (np.float32, np.float64):
        if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
            raise ValueError(f"{name}: float images must be finite and within [0, 1]")
        arr = arr.astype(np.float32)
    else:
        raise ValueError(f"{name}: unsupported pixel type {arr.dtype} (expected uint8, uint16 or float in [0, 1])")
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    elif arr.ndim == 3 and arr.shape[-1] in (1, 2):  # grey (+ alpha)
        arr = np.repeat(arr[..., :1], 3, axis=-1)
    elif arr.ndim == 3 and arr.shape[-1] == 4:
        arr = arr[..., :3]
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"{name}: expected an H x W x 3 image, got shape {arr.shape}")
    return arr


def pil_to_unit_rgb(img: PIL.Image.Image, name: str = "image") -> np.ndarray:
    """A PIL image of any mode -> float32 ``H x W x 3`` in [0, 1]."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img)
        if arr.size and (arr.min() < 0 or arr.max() > MAX_INT_VALUE):
            raise ValueError(
                f"{name}: {img.mode} image with values {int(arr.min())}..{int(arr.max())}; only 16-bit data "
                f"(0..{MAX_INT_VALUE}) is read from integer images: convert it to 8- or 16-bit first")
        return _array_to_unit_rgb(arr.astype(np.uint16), name)
    if img.mode == "F":
        return _array_to_unit_rgb(np.asarray(img, dtype=np.float32), name)
    return _array_to_unit_rgb(np.asarray(img.convert("RGB")), name)


def open_rgb8(path, *, name: str | None = None) -> PIL.Image.Image:
    """:func:`open_image`, then 8-bit RGB (greyscale / RGBA / 16-bit converted as above)."""
    img = open_image(path, name=name)
    if img.mode == "RGB":  # already 8-bit RGB: no float copies of a large photo
        return img
    label = name or (os.fspath(path) if isinstance(path, (str, os.PathLike)) else "image")
    return PIL.Image.fromarray(np.round(pil_to_unit_rgb(img, label) * 255).astype(np.uint8))


def _one(item, name: str) -> list[torch.Tensor]:
    if isinstance(item, (str, os.PathLike)):
        name = os.fspath(item)
        item = open_image(item)
    if isinstance(item, PIL.Image.Image):
        arrays = [pil_to_unit_rgb(_upright(item), name)]
    elif isinstance(item, np.ndarray):
        arrays = [_array_to_unit_rgb(item, name)]
    elif isinstance(item, torch.Tensor):
        t = item.detach().float().cpu()
        if t.ndim == 3:
            t = t[None]
        if t.ndim != 4 or t.shape[1] != 3:
            raise ValueError(f"{name}: tensor images must be 3 x H x W or B x 3 x H x W, got {tuple(item.shape)}")
        if not torch.isfinite(t).all() or t.min() < 0 or t.max() > 1:
            raise ValueError(f"{name}: tensor images must be finite and within [0, 1]")
        tensors = list(t.split(1))
        arrays = None
    else:
        raise TypeError(f"{name}: unsupported image type {type(item).__name__}")
    if arrays is not None:
        tensors = [torch.from_numpy(a).permute(2, 0, 1)[None].contiguous() for a in arrays]
    for t in tensors:
        h, w = t.shape[-2:]
        if min(h, w) < MIN_SIDE:
            raise ValueError(f"{name}: image is {w}x{h} px; both sides must be at least {MIN_SIDE} px")
    return tensors


def load_rgb_inputs(image) -> list[torch.Tensor]:
    """Pipeline input (one image, a list, a batch tensor) -> list of ``1 x 3 x H x W`` in [0, 1]."""
    items = list(image) if isinstance(image, (list, tuple)) else [image]
    if not items:
        raise ValueError("no images given")
    out: list[torch.Tensor] = []
    for i, item in enumerate(items):
        out.extend(_one(item, f"image {i}"))
    return out
