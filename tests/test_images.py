"""Reading user images: conversions and clear errors."""

import numpy as np
import pytest
import torch
from PIL import Image

from edit2perceive.io.images import load_rgb_inputs, open_image


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


def _png_declaring(path, width, height):
    """A tiny valid-looking PNG whose header declares ``width x height`` (a decompression bomb)."""
    import struct
    import zlib

    Image.new("L", (16, 16)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = 8 + 8  # signature, then length + type of the IHDR chunk
    data[ihdr:ihdr + 8] = struct.pack(">II", width, height)
    data[ihdr + 13:ihdr + 17] = struct.pack(">I", zlib.crc32(bytes(data[ihdr - 4:ihdr + 13])))
    path.write_bytes(bytes(data))
    return path


def test_exif_orientation_is_applied_for_files_and_pil_images(tmp_path):
    # stored 40 wide x 20 high with a white left band; orientation 6 = "rotate 90 deg clockwise to display"
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :10] = 255
    img = Image.fromarray(stored)
    exif = img.getexif()
    exif[0x0112] = 6
    path = tmp_path / "phone.png"
    img.save(path, exif=exif.tobytes())
    displayed = np.rot90(stored, k=-1)  # clockwise: the white left band becomes the top band
    assert displayed.shape == (40, 20, 3) and displayed[:10].min() == 255
    opened = open_image(path)
    assert opened.size == (20, 40)
    np.testing.assert_array_equal(np.asarray(opened.convert("RGB")), displayed)
    (t,) = load_rgb_inputs(str(path))
    assert t.shape == (1, 3, 40, 20)
    (u,) = load_rgb_inputs(Image.open(path))  # a PIL image opened by the user: same upright pixels
    assert torch.equal(t, u)
    np.testing.assert_allclose(t[0].permute(1, 2, 0).numpy(), displayed / 255.0, atol=1e-7)


def test_decompression_bomb_is_refused_from_the_header(tmp_path, monkeypatch):
    bomb = _png_declaring(tmp_path / "bomb.png", 10000, 10000)
    assert bomb.stat().st_size < 2000
    with pytest.raises(ValueError, match=r"bomb.png: image declares 10000x10000 = 100,000,000 pixels, over the limit"):
        open_image(bomb)
    with pytest.raises(ValueError, match="bomb.png"):
        load_rgb_inputs(str(bomb))
    small = tmp_path / "small.png"
    Image.new("RGB", (40, 30)).save(small)
    monkeypatch.setenv("E2P_MAX_IMAGE_PIXELS", "1000")
    with pytest.raises(ValueError, match=r"40x30 = 1,200 pixels, over the limit of 1,000 \(set E2P_MAX_IMAGE_PIXELS"):
        open_image(small)
    monkeypatch.setenv("E2P_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(ValueError, match="E2P_MAX_IMAGE_PIXELS must be a positive integer"):
        open_image(small)
    assert open_image(small, max_pixels=1200).size == (40, 30)


def test_32bit_integer_images_are_refused_not_clipped(tmp_path):
    big = (np.arange(20 * 30, dtype=np.int32).reshape(20, 30) * 1000)  # up to 599000 > 65535
    path = tmp_path / "wide.tif"
    Image.fromarray(big).save(path)
    with pytest.raises(ValueError, match=r"wide.tif: I image with values 0..599000; only 16-bit data"):
        load_rgb_inputs(str(path))
    ok = tmp_path / "fits.tif"
    Image.fromarray((big // 10).astype(np.int32)).save(ok)  # 0..59900 fits 16 bits: read as 16-bit data
    (t,) = load_rgb_inputs(str(ok))
    np.testing.assert_allclose(t[0, 0].numpy(), np.round(big // 10 / 65535 * 255) / 255, atol=1e-6)
