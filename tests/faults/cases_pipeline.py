"""Fault cases of the pipeline API (`Edit2PerceivePipeline.__call__` arguments)."""

from __future__ import annotations

import io

import numpy as np
from harness import (
    FX,
    case,
    expect_raises,
)
from PIL import Image


def _pipe(task="depth"):
    from edit2perceive import Edit2PerceivePipeline

    pipe = Edit2PerceivePipeline.from_pretrained(FX.model(task))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _rgb(h=50, w=70):
    return Image.fromarray((np.random.default_rng(0).random((h, w, 3)) * 255).astype(np.uint8))


for _desc, _call, _exc, _words in [
    ("latents with the wrong spatial size", lambda p: p(_rgb(), processing_resolution=64, latents=_torch().randn(1, 16, 8, 6)),
     ValueError, ("latents must have shape (1, 16, 6, 8)",)),
    ("latents with the wrong channel count", lambda p: p(_rgb(), processing_resolution=64, latents=_torch().randn(1, 4, 6, 8)),
     ValueError, ("16 latent channels",)),
    ("latents holding NaN", lambda p: p(_rgb(), processing_resolution=64,
                                        latents=_torch().full((1, 16, 6, 8), float("nan"))), ValueError, ("non-finite",)),
    ("latents as a numpy array", lambda p: p(_rgb(), processing_resolution=64, latents=np.zeros((1, 16, 6, 8))),
     ValueError, ("float tensor",)),
    ("float image with NaN", lambda p: p(_torch().full((3, 32, 32), float("nan"))), ValueError, ("finite",)),
    ("tensor image with 4 channels", lambda p: p(_torch().rand(1, 4, 32, 32)), ValueError, ("3 x H x W",)),
    ("num_inference_steps=10**8", lambda p: p(_rgb(), num_inference_steps=10**8), ValueError, ("1..1000",)),
    ("num_inference_steps=0.5", lambda p: p(_rgb(), num_inference_steps=0.5), ValueError, ("integer",)),
    ("processing_resolution=100000", lambda p: p(_rgb(), processing_resolution=100000), ValueError, ("0..8192",)),
    ("image of 15 px", lambda p: p(_rgb(15, 40)), ValueError, ("at least 16 px",)),
    ("processing_resolution as the string '64'", lambda p: p(_rgb(), processing_resolution="64"), ValueError,
     ("processing_resolution must be within 0..8192 (0 = native) and an integer, got '64'",)),
    ("batch_size=None", lambda p: p(_rgb(), batch_size=None), ValueError, ("batch_size must be an integer >= 1, got None",)),
    ("batch_size=2.5", lambda p: p(_rgb(), batch_size=2.5), ValueError, ("batch_size must be an integer",)),
    ("image path that does not exist", lambda p: p("/no/such/file.png"), ValueError, ("no such file",)),
]:
    case("pipeline", _desc)(lambda call=_call, exc=_exc, words=_words: expect_raises(lambda: call(_pipe()), exc, *words))


def _torch():
    import torch

    return torch


@case("pipeline", "matting point (nan, nan)")
def _api_nan_point():
    return expect_raises(lambda: _pipe("matting")(_rgb(), points=[[(float("nan"), float("nan"))]],
                                                  processing_resolution=32), ValueError, "is not finite")


@case("pipeline", "PIL image with an EXIF orientation tag is used upright")
def _api_exif():
    img = _rgb(32, 64)
    exif = img.getexif()
    exif[0x0112] = 8
    buf = io.BytesIO()
    img.save(buf, format="PNG", exif=exif.tobytes())
    buf.seek(0)
    out = _pipe()(Image.open(buf), processing_resolution=32)
    return out.prediction.shape == (1, 64, 32), f"prediction {out.prediction.shape[1:]} for a stored 32 x 64 (H x W)"




@case("pipeline", "SAM-style (x, y, label) points: refused, not re-cut into wrong (x, y) pairs")
def _api_xyl_points():
    pipe = _pipe("matting")
    one = expect_raises(lambda: pipe(_rgb(), points=[(10, 20, 1), (30, 40, 1)], processing_resolution=32), ValueError,
                        "points must be (x, y) pairs", "(2, 3)")
    batch = expect_raises(lambda: pipe([_rgb(), _rgb()], points=[[(10, 20, 1)], [(5, 5, 1)]], processing_resolution=32),
                          ValueError, "image 0: points must be (x, y) pairs")
    return one[0] and batch[0], f"{one[1]} | {batch[1]}"
