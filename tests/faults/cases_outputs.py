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


# -- video and file modes -------------------------------------------------------------------
def _clip(path, frames: int):
    from edit2perceive.outputs.video import VideoWriter

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = VideoWriter(path, 8.0)
    yy, xx = np.mgrid[0:32, 0:48]
    for k in range(frames):
        writer.append(np.stack([xx * 4 + 9 * k, yy * 6, 100 + 0 * xx], axis=-1).astype(np.uint8))
    writer.close()
    return path


def _frames(folder):
    return sorted(p.name for p in (folder / "depth_frames").iterdir()) if (folder / "depth_frames").is_dir() else []


@case("video", "a shorter clip re-run into the same folder: no frame of the longer one left")
def _video_shorter():
    out = FX.fresh("video-short")
    clip = _clip(FX.root / "inputs" / "video" / "clip.mp4", 4)
    assert predict("depth", clip, out=out)[0] == 0
    first = len(_frames(out / "clip.mp4"))
    _clip(clip, 2)
    code, err = predict("depth", clip, out=out)
    frames = _frames(out / "clip.mp4")
    return code == 0 and first == 8 and len(frames) == 4, f"{first} then {len(frames)} frame files: {frames[-2:]}"


@case("video", "an unreadable video: one FAILED line without ffmpeg's banner, no empty folder")
def _video_bad():
    out = FX.fresh("video-bad")
    bad = FX.root / "inputs" / "video" / "broken.mp4"
    bad.write_bytes(b"not a video at all")
    code, err = predict("depth", bad, FX.image("video/ok.png"), out=out)
    line = next((ln for ln in err.splitlines() if "FAILED" in ln), "")
    banner = "ffmpeg version" in err or "configuration:" in err or len(line) > 400
    return code == 1 and "broken.mp4" in line and not banner and not (out / "broken.mp4").exists(), line[:160]


@case("video", "--export / --metric-depth / --uncertainty with a video input: refused, not ignored")
def _video_extras():
    clip = _clip(FX.root / "inputs" / "video" / "x.mp4", 2)
    code, err = predict("depth", clip, out=FX.fresh("video-extras"), extra=["--export", "ply"])
    return expect_refused(code, err, "--export apply to images, not to video inputs")


@case("video", "SIGKILL while a video is written: the next run removes the staging, writes the set", slow=False)
def _video_kill():
    import subprocess
    import sys

    out = FX.fresh("video-kill")
    clip = _clip(FX.root / "inputs" / "video" / "k.mp4", 3)
    argv = ["predict", "--task", "depth", "--model", str(FX.model("depth")), str(clip), "--output-dir", str(out),
            "--processing-resolution", "32"]
    killer = ("import os, signal, sys\nfrom edit2perceive.outputs import video\nreal = video.VideoWriter.append\n"
              "def append(self, frame):\n    real(self, frame)\n    os.kill(os.getpid(), signal.SIGKILL)\n"
              "video.VideoWriter.append = append\nfrom edit2perceive.cli import main\nsys.exit(main(sys.argv[1:]))\n")
    res = subprocess.run([sys.executable, "-c", killer, *argv], capture_output=True, text=True, timeout=300)
    left = [p.name for p in out.iterdir()]
    code, err = cli(*argv)
    staging = [p.name for p in out.rglob(".e2p-staging-*")]
    whole = (out / "k.mp4" / "depth.mp4").is_file() and len(_frames(out / "k.mp4")) == 6
    return res.returncode == -9 and left and "k.mp4" not in left and code == 0 and not staging and whole, \
        f"killed {res.returncode}, left {left}; rerun {code}, staging {staging}, whole {whole}"


@case("outputs", "file modes: every output 0644, point clouds and video included")
def _modes():
    import stat

    out = FX.fresh("modes")
    code, err = predict("depth", FX.image("modes/a.png"), _clip(FX.root / "inputs" / "modes" / "v.mp4", 2), out=out)
    code2, err2 = predict("depth", FX.image("modes/a.png"), out=out, extra=["--export", "ply", "glb"])
    files = [p for p in out.rglob("*") if p.is_file()]
    modes = {oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
    clouds = [p.name for p in files if p.suffix in (".ply", ".glb", ".mp4")]
    return code == 0 and code2 == 0 and modes == {"0o644"} and len(clouds) == 3, f"modes {modes}; {clouds}"
