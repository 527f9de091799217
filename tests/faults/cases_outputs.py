"""Fault cases of the outputs: metric-depth files, points, video, point clouds."""

from __future__ import annotations

import time

import numpy as np
from harness import FX, case, cli, expect_refused, last_line, predict


# -- metric depth files (as spreadsheets and phones write them) -------------------------------
def _measure(text: bytes | str, name="m.csv"):
    path = FX.fresh("measure") / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def _read(text, name="m.csv"):
    from edit2perceive.outputs.metric_depth import read_measurements

    return read_measurements(_measure(text, name))


ROWS = np.array([[5, 6, 2.0], [40, 20, 6.5], [20, 10, 3.0]])

METRIC_FILES = [  # (description, file contents, expected rows)
    ("header in another column order (y,x,depth)", "y,x,depth\n6,5,2.0\n20,40,6.5\n10,20,3.0\n", ROWS),
    ("header with units and capitals (X,Y,Depth (m))", "X,Y,Depth (m)\n5,6,2.0\n40,20,6.5\n20,10,3.0\n", ROWS),
    ("UTF-8 byte-order mark (a spreadsheet's CSV UTF-8), no header", b"\xef\xbb\xbf5,6,2.0\n40,20,6.5\n20,10,3.0\n",
     ROWS),
    ("UTF-8 byte-order mark before a header", b"\xef\xbb\xbfx,y,depth\r\n5,6,2.0\r\n40,20,6.5\r\n20,10,3.0\r\n", ROWS),
]

for _desc, _text, _rows in METRIC_FILES:
    def _metric_case(text=_text, rows=_rows):
        got = _read(text)
        return got.shape == rows.shape and np.allclose(got, rows), f"read {got.tolist()}"
    case("metric depth", _desc)(_metric_case)


METRIC_ERRORS = [  # (description, file name, contents, words of the error)
    ("latin-1 CSV (a non-UTF-8 byte)", "m.csv", "x,y,depth\n5,6,2.0 # caf\xe9\n".encode("latin-1"),
     ("m.csv: not UTF-8 text",)),
    ("header naming other columns (u,v,depth)", "m.csv", "u,v,depth\n5,6,2\n", ("m.csv:1: header", "x, y and depth")),
    ("truncated .npy", "m.npy", b"\x93NUMPY\x01\x00v\x00{'descr'", ("m.npy: not a plain numpy array",)),
]

for _desc, _name, _text, _words in METRIC_ERRORS:
    def _metric_error(name=_name, text=_text, words=_words):
        try:
            _read(text, name)
        except ValueError as err:
            return all(w in str(err) for w in words), str(err)[:160]
        return False, "no error"
    case("metric depth", _desc)(_metric_error)


@case("metric depth", "malformed --metric-depth file: refused before the model loads")
def _metric_early():
    start = time.perf_counter()
    path = _measure("x,y,depth\n5,6,two metres\n")
    code, err = cli("predict", "--task", "depth", "--model", FX.root / "no-such-model", FX.image("md/a.png"),
                    "--output-dir", FX.fresh("md"), "--metric-depth", path)
    ok, detail = expect_refused(code, err, "m.csv:2: expected numbers x,y,depth")
    return ok and time.perf_counter() - start < 5, detail


@case("predict", "junk E2P_MAX_IMAGE_PIXELS: refused before the model loads")
def _junk_pixels():
    import os

    old = os.environ.get("E2P_MAX_IMAGE_PIXELS")
    os.environ["E2P_MAX_IMAGE_PIXELS"] = "lots"
    try:
        code, err = cli("predict", "--task", "depth", "--model", FX.root / "no-such-model", FX.image("px/a.png"),
                        "--output-dir", FX.fresh("px"))
    finally:
        os.environ.pop("E2P_MAX_IMAGE_PIXELS") if old is None else os.environ.__setitem__("E2P_MAX_IMAGE_PIXELS", old)
    return expect_refused(code, err, "E2P_MAX_IMAGE_PIXELS must be a positive integer, got 'lots'")


@case("metric depth", "a y,x,depth file through e2p predict: the fit uses the right pixels")
def _metric_cli_order():
    import json

    out = FX.fresh("md-order")
    path = _measure("y,x,depth\n6,5,2.0\n20,40,6.5\n10,20,3.0\n25,30,5.0\n")
    code, err = predict("depth", FX.image("mdo/a.png"), out=out, extra=["--metric-depth", path])
    if code != 0:
        return False, last_line(err)
    fit = json.loads((out / "a.png" / "depth_metric_fit.json").read_text())
    return fit["num_measurements"] == 4, str(fit)[:160]
