"""Prediction encodings of a prediction dataset: hand-computed quantization and round trips."""

import io

import numpy as np
import PIL.Image
import pytest

from edit2perceive.inference_at_scale import decode_prediction, decode_row
from edit2perceive.inference_at_scale.encoding import encode_map


def test_png16_depth_quantizes_to_65535_levels_by_hand():
    values = np.array([[0.0, 1.0], [0.5, 1 / 65535 * 0.49]], dtype=np.float32)
    cell = encode_map(values, "depth", "png16")
    stored = np.asarray(PIL.Image.open(io.BytesIO(cell["bytes"])))
    assert stored.dtype == np.uint16
    np.testing.assert_array_equal(stored, [[0, 65535], [32768, 0]])  # round(0.5 * 65535) = 32768 (32767.5 -> even)
    decoded = decode_prediction(cell, "depth", "png16")
    assert decoded.dtype == np.float32 and decoded.shape == (2, 2)
    assert decoded[1, 0] == np.float32(32768 / 65535)


def test_png16_round_trip_error_bounds():
    rng = np.random.default_rng(0)
    depth = rng.random((17, 23)).astype(np.float32)
    got = decode_prediction(encode_map(depth, "depth", "png16"), "depth", "png16")
    assert np.abs(got - depth).max() <= 0.5 / 65535 + 1e-7
    n = rng.normal(size=(9, 11, 3))
    n = (n / np.linalg.norm(n, axis=-1, keepdims=True)).astype(np.float32)
    cells = encode_map(n, "normal", "png16")
    assert len(cells) == 3
    got = decode_prediction(cells, "normal", "png16")
    assert got.shape == (9, 11, 3) and np.abs(got - n).max() <= 1 / 65535 + 1e-7
    # as datasets returns Image cells: decoded PIL images
    pil = [PIL.Image.open(io.BytesIO(c["bytes"])) for c in cells]
    np.testing.assert_array_equal(decode_prediction(pil, "normal", "png16"), got)


def test_float32_is_exact_and_needs_the_shape():
    rng = np.random.default_rng(1)
    n = rng.normal(size=(5, 7, 3)).astype(np.float32)
    flat = encode_map(n, "normal", "float32")
    np.testing.assert_array_equal(decode_prediction(flat, "normal", "float32", 5, 7), n)
    with pytest.raises(ValueError, match="height and width"):
        decode_prediction(flat, "normal", "float32")
    with pytest.raises(ValueError, match="do not fill a 5 x 8 map"):
        decode_prediction(flat, "normal", "float32", 5, 8)


def test_decode_row_error_row_and_card_mapping():
    row = {"prediction": None, "status": "error", "error": "x.png: not a readable image", "height": None,
           "width": None}
    with pytest.raises(ValueError, match="status is 'error'"):
        decode_row(row, {"task": "depth", "encoding": "png16"})
    unc = np.full((3, 4), 0.25, np.float32)
    ok = {"prediction": encode_map(unc, "depth", "float32"), "uncertainty": encode_map(unc, "depth", "float32"),
          "height": 3, "width": 4}
    out = decode_row(ok, "matting", "float32")
    np.testing.assert_array_equal(out["prediction"], unc)
    np.testing.assert_array_equal(out["uncertainty"], unc)
