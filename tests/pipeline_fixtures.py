"""Inputs shared by the pipeline tests."""

import numpy as np
from PIL import Image


def rgb_image(h=40, w=56, seed=0):
    """A random RGB PIL image (uniform noise, seeded)."""
    return Image.fromarray((np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8))
