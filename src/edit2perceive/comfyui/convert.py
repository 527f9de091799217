"""Conversions between ComfyUI's types and the pipeline's.

ComfyUI's conventions: ``IMAGE`` is a float tensor ``B x H x W x C`` in [0, 1] (C = 3; 1 and 4
are accepted here, alpha dropped), ``MASK`` a float tensor ``B x H x W`` (or ``H x W``) in
[0, 1]. Outputs are float32 on the CPU, ComfyUI's intermediate device.

Map conventions of the outputs:

- depth ``IMAGE``: grey, near = white, far = black (what ControlNet depth models expect);
  ``depth_raw``: the prediction itself (``pipe(...).prediction``, affine-invariant, in the
  task's encoding space: near = low except for the ``disparity`` encoding) in all 3 channels.
- normal ``IMAGE``: ``"controlnet"``: the ControlNet 1.1 normal-map colours (red = left,
  green = up, blue = toward the viewer): ``RGB = ((1 - x) / 2, (1 + y) / 2, (1 + z) / 2)`` for
  the pipeline's unit normals (x right, y up, z toward the viewer); ``"marigold"``:
  ``RGB = (n + 1) / 2`` (red = right), the colours of ``e2p predict``'s ``normal.png``.
- matting: alpha as ``MASK`` (1 = foreground, as background-removal nodes give it) and the
  cut-out as an RGBA ``IMAGE`` (``B x H x W x 4``; ComfyUI's Save Image writes an RGBA PNG).
"""

from __future__ import annotations

import json

import numpy as np
import torch

NORMAL_CONVENTIONS = ("controlnet", "marigold")


def image_to_pipeline(image) -> torch.Tensor:
    """ComfyUI ``IMAGE`` (``B x H x W x C`` in [0, 1]) -> ``B x 3 x H x W`` float32 for the pipeline."""
    if not isinstance(image, torch.Tensor) or image.ndim != 4:
        shape = tuple(image.shape) if hasattr(image, "shape") else type(image).__name__
        raise ValueError(f"expected a ComfyUI IMAGE tensor B x H x W x C, got {shape}")
    channels = image.shape[-1]
    if channels not in (1, 3, 4):
        raise ValueError(f"expected an IMAGE with 1, 3 or 4 channels (B x H x W x C), got {tuple(image.shape)}")
    rgb = image.detach().to("cpu", torch.float32)
    rgb = rgb[..., :3] if channels == 4 else rgb.expand(-1, -1, -1, 3) if channels == 1 else rgb
    return rgb.permute(0, 3, 1, 2).clamp(0.0, 1.0).contiguous()


def _as_channels_last(maps: torch.Tensor) -> torch.Tensor:
    """``B x H x W`` -> ``B x H x W x 3`` (grey in all three channels)."""
    return maps.to("cpu", torch.float32)[..., None].expand(-1, -1, -1, 3).contiguous()


def depth_to_image(depth: torch.Tensor, *, near_is_high: bool = False) -> torch.Tensor:
    """Depth predictions ``B x H x W`` in [0, 1] -> grey ``IMAGE`` with near = white.
    ``near_is_high``: the model's encoding already puts near at 1 (``disparity``)."""
    depth = torch.as_tensor(depth).clamp(0.0, 1.0)
    return _as_channels_last(depth if near_is_high else 1.0 - depth)


def depth_raw_to_image(depth: torch.Tensor) -> torch.Tensor:
    """Depth predictions ``B x H x W`` -> ``IMAGE`` with the values unchanged in 3 channels."""
    return _as_channels_last(torch.as_tensor(depth))


def normals_to_image(normals: torch.Tensor, convention: str = "controlnet") -> torch.Tensor:
    """Unit normals ``B x H x W x 3`` (x right, y up, z toward the viewer) -> ``IMAGE`` colours
    in ``convention`` (see the module docstring)."""
    if convention not in NORMAL_CONVENTIONS:
        raise ValueError(f"normal convention must be one of {NORMAL_CONVENTIONS}, got {convention!r}")
    n = torch.as_tensor(normals).to("cpu", torch.float32).clamp(-1.0, 1.0)
    if convention == "controlnet":
        n = n * torch.tensor([-1.0, 1.0, 1.0])
    return ((n + 1.0) / 2.0).contiguous()


def alpha_to_mask(alpha: torch.Tensor) -> torch.Tensor:
    """Alpha ``B x H x W`` in [0, 1] -> ComfyUI ``MASK`` (float32, CPU, 1 = foreground)."""
    return torch.as_tensor(alpha).to("cpu", torch.float32).clamp(0.0, 1.0).contiguous()


def cutout_image(image: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """The input ``IMAGE`` (its RGB) with ``alpha`` as a 4th channel: ``B x H x W x 4``."""
    rgb = image_to_pipeline(image).permute(0, 2, 3, 1)
    return torch.cat([rgb, alpha_to_mask(alpha)[..., None]], dim=-1).contiguous()


def uncertainty_to_image(uncertainty: torch.Tensor) -> torch.Tensor:
    """Uncertainty maps (``B x H x W`` or normals' ``B x H x W x 3``) -> grey ``IMAGE``, as
    :func:`edit2perceive.outputs.visualize.uncertainty_to_image` draws them (brighter = less
    certain, Marigold's 95th-percentile scaling)."""
    from ..outputs.visualize import uncertainty_to_image as draw

    frames = [torch.from_numpy(np.asarray(draw(u), dtype=np.float32) / 255.0) for u in torch.as_tensor(uncertainty)]
    frames = [f[..., None].expand(-1, -1, 3) if f.ndim == 2 else f[..., :3] for f in frames]
    return torch.stack(frames).contiguous()


def blank_image_like(image: torch.Tensor) -> torch.Tensor:
    """A black ``IMAGE`` of ``image``'s batch and size (the uncertainty output when not asked for)."""
    b, h, w = image.shape[:3]
    return torch.zeros((b, h, w, 3), dtype=torch.float32)


# -- matting prompts ---------------------------------------------------------------------------
def parse_points(text: str, width: int, height: int, *, normalized: bool = False) -> list[tuple[float, float]]:
    """Points from a points editor: JSON ``[{"x": .., "y": ..}, ...]`` (what KJNodes'
    PointsEditor and similar nodes emit; single quotes as in Python reprs are accepted) or
    ``[[x, y], ...]``; ``(x, y)`` pixels of a ``width x height`` image, origin top-left.
    ``normalized``: the editor gave fractions of the image size (its ``normalize`` option).
    An empty string gives no points."""
    text = (text or "").strip()
    if not text:
        return []
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        try:
            data = json.loads(text.replace("'", '"'))
        except json.JSONDecodeError as err:
            raise ValueError(f"points must be JSON like [{{\"x\": 120, \"y\": 80}}], got {text[:80]!r} ({err})") from err
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise ValueError(f"points must be a JSON list of {{\"x\", \"y\"}} objects, got {type(data).__name__}")
    points = []
    for item in data:
        if isinstance(item, dict) and "x" in item and "y" in item:
            x, y = item["x"], item["y"]
        elif isinstance(item, (list, tuple)) and len(item) == 2:
            x, y = item
        else:
            raise ValueError(f"each point must be {{\"x\": .., \"y\": ..}} or [x, y], got {item!r}")
        try:
            x, y = float(x), float(y)
        except (TypeError, ValueError) as err:
            raise ValueError(f"point {item!r}: x and y must be numbers") from err
        if normalized:
            x, y = x * width, y * height
        points.append((min(max(x, 0.0), width - 1.0), min(max(y, 0.0), height - 1.0)) if normalized else (x, y))
    return points


def mask_to_points(mask: torch.Tensor) -> list[list[tuple[float, float]]]:
    """A ``MASK`` of clicks (``B x H x W`` or ``H x W``; dots or strokes painted > 0.5) -> per
    image one ``(x, y)`` point per connected blob: the blob's pixel nearest its centroid (so a
    curved stroke still gives a point on it)."""
    from scipy import ndimage

    m = torch.as_tensor(mask).detach().to("cpu", torch.float32)
    if m.ndim == 2:
        m = m[None]
    if m.ndim != 3:
        raise ValueError(f"expected a MASK B x H x W, got shape {tuple(m.shape)}")
    out = []
    for frame in (m > 0.5).numpy():
        labels, count = ndimage.label(frame)
        points = []
        for index, (cy, cx) in enumerate(ndimage.center_of_mass(frame, labels, range(1, count + 1)), start=1):
            ys, xs = np.nonzero(labels == index)
            k = int(np.argmin((ys - cy) ** 2 + (xs - cx) ** 2))
            points.append((float(xs[k]), float(ys[k])))
        out.append(points)
    return out
