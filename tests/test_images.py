"""Reading user images: conversions and clear errors."""

import numpy as np
import pytest
import torch
from PIL import Image

from edit2perceive.images import load_rgb_inputs, open_image


def test_modes_are_converted_to_rgb(tmp_path):
    rgb = (np.arange(32 * 24 * 3) % 256).astype(np.uint8).reshape(32, 24, 3)
    (t,) = load_rgb_inputs(Image.fromarray(rgb))
    assert t.shape == (1, 3, 32, 24)
    np.testing.assert_allclose(t[0].permute(1, 2, 0).numpy(), rgb / 255.0, atol=1e-7)
    grey = Image.fromarray(rgb[..., 0])
    (g,) = load_rgb_inputs(grey)  # L -> replicated
    assert torch.equal(g[0, 0], g[0, 1]) and torch.equal(g[0, 0], g[0, 2])
    rgba = Image.fromarray(np.dstack([rgb, np.zeros((32, 24), np.uint8)]))
    (a,) = load_rgb_inputs(rgba)  # alpha dropped, colour kept
    assert torch.allclose(a, t)
    sixteen = Image.fromarray(rgb[..., 0].astype(np.uint16) * 257)  # 16-bit: x * 257 -> x / 255
    assert sixteen.mode.startswith("I")
    (s,) = load_rgb_inputs(sixteen)
    np.testing.assert_allclose(s[0, 0].numpy(), rgb[..., 0] / 255.0, atol=1e-6)
    path = tmp_path / "grey16.png"
    sixteen.save(path)
    (f,) = load_rgb_inputs(str(path))
    np.testing.assert_allclose(f[0, 0].numpy(), rgb[..., 0] / 255.0, atol=1e-6)


def test_tensor_and_list_inputs():
    batch = torch.rand(2, 3, 20, 30)
    out = load_rgb_inputs(batch)
    assert len(out) == 2 and torch.equal(out[1][0], batch[1])
    assert len(load_rgb_inputs([batch[0], np.zeros((20, 30, 3), np.uint8)])) == 2
    with pytest.raises(ValueError, match=r"within \[0, 1\]"):
        load_rgb_inputs(batch * 255)
    with pytest.raises(ValueError, match="3 x H x W"):
        load_rgb_inputs(torch.rand(1, 4, 20, 30))
    with pytest.raises(TypeError, match="unsupported image type"):
        load_rgb_inputs(42)
    with pytest.raises(ValueError, match="no images"):
        load_rgb_inputs([])


def test_small_images_rejected():
    with pytest.raises(ValueError, match="at least 16 px"):
        load_rgb_inputs(Image.new("RGB", (15, 40)))


def test_unreadable_and_truncated_files_name_the_file(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(ValueError, match="notes.png: not a readable image"):
        open_image(bad)
    good = tmp_path / "photo.jpg"
    Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)).save(good, quality=90)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(ValueError, match="cut.jpg"):
        open_image(cut)
    with pytest.raises(ValueError, match="missing.png: no such file"):
        open_image(tmp_path / "missing.png")
