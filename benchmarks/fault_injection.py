#!/usr/bin/env python
"""Bad inputs and faults against ``e2p predict``, the pipeline API, ``e2p evaluate``, the
data streams, the converter and ``e2p card``: each case states what "handled" means and is
checked here; prints a per-case list and the table "inputs tried / handled" per area.

    python -m benchmarks.fault_injection [--cases predict,pipeline,...] [--verbose]

Everything runs offline on tiny random components in a temporary folder (a few minutes on
a 2-core CPU). Exit status 1 when any case is not handled.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

CASES: list[tuple[str, str, object]] = []  # (area, description, fn() -> (handled, detail))


def case(area: str, description: str):
    def register(fn):
        CASES.append((area, description, fn))
        return fn
    return register


# -- fixtures ------------------------------------------------------------------------------
class Fixtures:
    def __init__(self, root: Path):
        self.root = root
        self._models: dict = {}

    def model(self, task: str, nan: bool = False) -> Path:
        key = (task, nan)
        if key not in self._models:
            import torch

            from edit2perceive import Edit2PerceivePipeline
            from edit2perceive.testing import tiny_kontext_components

            pipe = Edit2PerceivePipeline(**tiny_kontext_components(seed=0), task=task)
            if nan:
                with torch.no_grad():
                    pipe.transformer.proj_out.weight.fill_(float("nan"))
            path = self.root / "models" / f"{task}{'-nan' if nan else ''}"
            pipe.save_pretrained(path)
            self._models[key] = path
        return self._models[key]

    def image(self, rel: str, h: int = 32, w: int = 48, seed: int = 0, **save) -> Path:
        path = self.root / "inputs" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)).save(path, **save)
        return path

    def fresh(self, name: str) -> Path:
        path = self.root / "work" / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path


FX: Fixtures


def png_declaring(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header declares ``width x height`` (a decompression bomb)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (16, 16)).save(path, format="PNG")
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


def cli(*argv) -> tuple[int, str]:
    """Run ``e2p`` in this process: (exit status, stderr)."""
    from edit2perceive.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 2
    return code, err.getvalue()


def predict(task: str, *inputs, out: Path, extra=(), model: Path | None = None) -> tuple[int, str]:
    return cli("predict", "--task", task, "--model", model or FX.model(task), *inputs, "--output-dir", out,
               "--processing-resolution", "32", *extra)


def visible_files(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*") if p.is_file() and not any(s.startswith(".") for s in p.relative_to(out).parts))


def sets_whole(out: Path, files=("depth.png", "depth_16bit.png", "depth.npy", "depth_panel.png")) -> bool:
    folders = {p.parent for p in visible_files(out)}
    return all(sorted(f.name for f in d.iterdir()) == sorted(files) for d in folders)


def expect_failure(code, err, name, *words) -> tuple[bool, str]:
    line = next((ln for ln in err.splitlines() if "FAILED" in ln and name in ln), "")
    ok = code == 1 and line and all(w in line for w in words)
    fallback = (err.strip().splitlines() or ["(no message)"])[-1]
    return bool(ok), (line.strip() or fallback)[:160]


def expect_refused(code, err, *words) -> tuple[bool, str]:
    ok = code == 2 and all(w in err for w in words)
    return ok, (err.strip().splitlines() or ["(no message)"])[-1][:160]


def expect_raises(fn, exc, *words) -> tuple[bool, str]:
    try:
        fn()
    except exc as err:
        return all(w in str(err) for w in words), f"{type(err).__name__}: {str(err)[:150]}"
    except Exception as err:  # noqa: BLE001
        return False, f"wrong error {type(err).__name__}: {str(err)[:150]}"
    return False, "no error"


# -- e2p predict -------------------------------------------------------------------------------
def _one_bad_file(name: str, make, *words):
    def run():
        out = FX.fresh(f"bad-{name}")
        bad = make(FX.root / "inputs" / "bad" / name)
        good = FX.image("bad/good.png")
        code, err = predict("depth", good, bad, out=out)
        ok, detail = expect_failure(code, err, name, *words)
        ok = ok and "1 of 2 images written" in err and len(visible_files(out)) == 4 and sets_whole(out)
        return ok, detail
    return run


def _truncated(path):
    FX.image("tmp/full.png", 64, 64)
    data = (FX.root / "inputs/tmp/full.png").read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[: len(data) // 2])
    return path


def _write(data: bytes):
    def make(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path
    return make


def _tiff32(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.arange(32 * 48, dtype=np.int32).reshape(32, 48) * 1000).save(path)
    return path


for _name, _make, _words in [
    ("truncated.png", _truncated, ("not a readable image",)),
    ("text.png", _write(b"hello, not an image"), ("not a readable image",)),
    ("empty.jpg", _write(b""), ("not a readable image",)),
    ("bomb.png", lambda p: png_declaring(p, 10000, 10000), ("over the limit", "E2P_MAX_IMAGE_PIXELS")),
    ("huge-bomb.png", lambda p: png_declaring(p, 40000, 40000), ("over the limit",)),
    ("tiny.png", lambda p: FX.image("bad/tiny.png", 15, 15), ("at least 16 px",)),
    ("wide32.tif", _tiff32, ("only 16-bit data",)),
]:
    case("predict", f"one bad file in a batch: {_name}")(_one_bad_file(_name, _make, *_words))


@case("predict", "odd but valid formats: greyscale, RGBA, palette, 16-bit, CMYK JPEG, BMP, WebP, TIFF")
def _formats():
    out = FX.fresh("formats")
    rng = np.random.default_rng(1)
    rgb = (rng.random((32, 40, 3)) * 255).astype(np.uint8)
    d = FX.root / "inputs" / "formats"
    d.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb[..., 0]).save(d / "grey.png")
    Image.fromarray(np.dstack([rgb, rgb[..., :1]])).save(d / "rgba.png")
    Image.fromarray(rgb).convert("P").save(d / "palette.png")
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(d / "sixteen.png")
    Image.fromarray(rgb).convert("CMYK").save(d / "cmyk.jpg")
    Image.fromarray(rgb).save(d / "plain.bmp")
    Image.fromarray(rgb).save(d / "plain.webp")
    Image.fromarray(rgb).save(d / "plain.tif")
    code, err = predict("depth", d, out=out)
    shapes = {np.load(p).shape for p in out.rglob("depth.npy")}
    return code == 0 and len(list(out.rglob("depth.npy"))) == 8 and shapes == {(32, 40)}, err.strip().splitlines()[-1]


@case("predict", "EXIF-rotated phone photo: prediction in the displayed orientation")
def _exif():
    out = FX.fresh("exif")
    img = Image.fromarray((np.random.default_rng(2).random((32, 64, 3)) * 255).astype(np.uint8))
    exif = img.getexif()
    exif[0x0112] = 6
    path = FX.root / "inputs" / "exif" / "phone.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, exif=exif.tobytes())
    code, err = predict("depth", path, out=out)
    shape = np.load(out / "phone.jpg" / "depth.npy").shape if code == 0 else None
    return shape == (64, 32), f"stored 64x32 (W x H), prediction {shape} (H x W)"


@case("predict", "equal names in different folders: a/same.png b/same.png b/same-2.png a/same.jpg")
def _collisions():
    out = FX.fresh("collide")
    files = [FX.image(rel, 32, 32 + 8 * i, seed=i) for i, rel in
             enumerate(["col/a/same.png", "col/b/same.png", "col/b/same-2.png", "col/a/same.jpg"])]
    code, err = predict("depth", *files, out=out)
    sets = sorted(p.parent.relative_to(out).as_posix() for p in out.rglob("depth.npy"))
    return code == 0 and len(sets) == 4, f"{len(sets)} output sets: {sets}"


@case("predict", "a folder with non-images, hidden files, the output folder inside it (rerun)")
def _folder():
    root = FX.root / "inputs" / "folder"
    for rel in ("x.png", "sub/x.png", "sub/deeper/y.jpg", ".hidden/z.png"):
        FX.image(f"folder/{rel}")
    (root / "notes.txt").write_text("text")
    out = root / "out"
    shutil.rmtree(out, ignore_errors=True)
    first, _ = predict("depth", root, out=out)
    code, err = predict("depth", root, out=out)
    n = len(list(out.rglob("depth.npy")))
    return first == 0 and code == 0 and n == 3 and "3 of 3" in err, f"{n} sets after a rerun"


@case("predict", "SIGKILL after the 2nd rename of a run (fresh output): whole sets only; resume completes")
def _kill_fresh():
    return _kill(after=2, existing=False)


@case("predict", "SIGKILL between moving an old set aside and the new one in: nothing partial; resume completes")
def _kill_existing():
    return _kill(after=1, existing=True)


def _kill(after: int, existing: bool):
    out = FX.fresh(f"kill{after}")
    files = [FX.image(f"kill/img{i}.png", seed=i) for i in range(2)]
    argv = ["predict", "--task", "depth", "--model", str(FX.model("depth")), *map(str, files), "--output-dir", str(out),
            "--processing-resolution", "32"]
    if existing:
        cli(*argv)
    killer = ("import os, signal, sys\nreal, n = os.replace, [0]\n"
              "def replace(*a, **k):\n    real(*a, **k)\n    n[0] += 1\n"
              f"    if n[0] == {after}:\n        os.kill(os.getpid(), signal.SIGKILL)\n"
              "os.replace = replace\nfrom edit2perceive.cli import main\nsys.exit(main(sys.argv[1:]))\n")
    res = subprocess.run([sys.executable, "-c", killer, *argv], capture_output=True, text=True)
    whole = len(visible_files(out)) % 4 == 0 and sets_whole(out)
    code, _ = cli(*argv, "--skip-existing")
    done = len(visible_files(out)) == 8 and not [p for p in out.iterdir() if p.name.startswith(".")]
    return res.returncode == -signal.SIGKILL and whole and code == 0 and done, \
        f"killed ({res.returncode}); whole sets: {whole}; after resume complete, no staging: {done}"


@case("predict", "--skip-existing resumes: only missing sets are predicted")
def _skip():
    out = FX.fresh("skip")
    files = [FX.image(f"skip/i{i}.png", seed=i) for i in range(3)]
    predict("depth", *files, out=out)
    shutil.rmtree(out / "i1.png")
    code, err = predict("depth", *files, out=out, extra=["--skip-existing"])
    return code == 0 and "1 of 3 images written" in err and "2 skipped" in err, err.strip().splitlines()[-1]


@case("predict", "disk full while writing a set: failure names the output file; nothing partial")
def _disk_full():
    import errno

    from edit2perceive import visualize

    out = FX.fresh("full")
    real = visualize._save
    calls = [0]

    def save(value, path):
        calls[0] += 1
        if calls[0] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(value, path)

    visualize._save = save
    try:
        code, err = predict("depth", FX.image("full/a.png"), out=out)
    finally:
        visualize._save = real
    ok, detail = expect_failure(code, err, "a.png", "No space left on device", "a.png/depth")
    return ok and not visible_files(out) and not list(out.iterdir()), detail


for _desc, _extra, _words in [
    ("--steps 100000000", ["--steps", "100000000"], ("--steps must be within 1..1000",)),
    ("--steps 0", ["--steps", "0"], ("--steps",)),
    ("--processing-resolution 100000", ["--processing-resolution", "100000"], ("within 0..8192",)),
    ("--processing-resolution -1", ["--processing-resolution", "-1"], ("within 0..8192",)),
    ("--batch-size 0", ["--batch-size", "0"], ("--batch-size must be >= 1",)),
]:
    def _arg_case(extra=_extra, words=_words):
        out = FX.fresh("args")
        start = time.perf_counter()
        code, err = cli("predict", "--task", "depth", "--model", FX.root / "no-such-model", FX.image("args/a.png"),
                        "--output-dir", out, *extra)
        ok, detail = expect_refused(code, err, *words)
        return ok and time.perf_counter() - start < 5, detail  # refused before any model loads
    case("predict", f"argument that fails every image, refused before loading: {_desc}")(_arg_case)


@case("predict", "--points nan,nan")
def _points_nan():
    code, err = cli("predict", "--task", "matting", "--model", FX.model("matting"), FX.image("p/a.png"), "--output-dir",
                    FX.fresh("pn"), "--points", "nan,nan")
    return expect_refused(code, err, "coordinates must be finite")


@case("predict", "--points -5,10 (negative coordinate)")
def _points_negative():
    code, err = predict("matting", FX.image("p/a.png"), out=FX.fresh("pneg"), extra=["--points", "-5,10"])
    return expect_failure(code, err, "a.png", "point (x=-5, y=10) lies outside")


@case("predict", "--points outside one image of two (batch 2): only that one fails")
def _points_outside():
    big, small = FX.image("po/big.png", 64, 64), FX.image("po/small.png", 20, 20)
    code, err = predict("matting", big, small, out=FX.fresh("po"), extra=["--points", "30,30", "--batch-size", "2"])
    ok, detail = expect_failure(code, err, "small.png", "outside")
    return ok and "1 of 2" in err, detail


@case("predict", "matting without --points / --points for depth")
def _points_task():
    a = cli("predict", "--task", "matting", "--model", FX.model("matting"), FX.image("p/a.png"), "--output-dir",
            FX.fresh("pt"))
    b = cli("predict", "--task", "depth", "--model", FX.model("depth"), FX.image("p/a.png"), "--output-dir",
            FX.fresh("pt"), "--points", "1,1")
    return a[0] == 2 and b[0] == 2 and "needs --points" in a[1] and "only used by the matting" in b[1], \
        f"{a[1].strip()} / {b[1].strip()}"


@case("predict", "NaN model weights: a failure of each image, no all-black outputs")
def _nan_weights():
    out = FX.fresh("nan")
    code, err = predict("depth", FX.image("n/a.png"), out=out, model=FX.model("depth", nan=True))
    ok, detail = expect_failure(code, err, "a.png", "non-finite")
    return ok and not visible_files(out), detail


@case("predict", "model folder problems: missing, wrong task, no transformer weights, no vae/, pickle-only weights")
def _model_folders():
    base = FX.model("depth")
    results = []
    results.append(expect_refused(*predict("depth", FX.image("m/a.png"), out=FX.fresh("m"),
                                           model=FX.root / "missing-model"), "cannot use model"))
    results.append(expect_refused(*predict("depth", FX.image("m/a.png"), out=FX.fresh("m"),
                                           model=FX.model("matting")), "trained for task 'matting'"))
    nw = FX.root / "models" / "no-weights"
    shutil.rmtree(nw, ignore_errors=True)
    shutil.copytree(base, nw)
    (nw / "transformer" / "diffusion_pytorch_model.safetensors").unlink()
    results.append(expect_refused(*predict("depth", FX.image("m/a.png"), out=FX.fresh("m"), model=nw),
                                  "transformer: no weights; expected FluxTransformer2DModel weights as .safetensors"))
    (nw / "transformer" / "diffusion_pytorch_model.bin").write_bytes(b"not loaded")
    results.append(expect_refused(*predict("depth", FX.image("m/a.png"), out=FX.fresh("m"), model=nw),
                                  "only pickle weights"))
    nv = FX.root / "models" / "no-vae"
    shutil.rmtree(nv, ignore_errors=True)
    shutil.copytree(base, nv)
    shutil.rmtree(nv / "vae")
    results.append(expect_refused(*predict("depth", FX.image("m/a.png"), out=FX.fresh("m"), model=nv),
                                  "vae: missing"))
    return all(r[0] for r in results), " | ".join(r[1][-70:] for r in results)


@case("predict", "missing input path / folder without images / --output-dir is a file")
def _paths():
    empty = FX.root / "inputs" / "empty-folder"
    empty.mkdir(parents=True, exist_ok=True)
    afile = FX.root / "work" / "a-file"
    afile.parent.mkdir(parents=True, exist_ok=True)
    afile.write_text("x")
    a = predict("depth", FX.root / "inputs" / "nope.png", out=FX.fresh("pp"))
    b = predict("depth", empty, out=FX.fresh("pp"))
    c = predict("depth", FX.image("pp/a.png"), out=afile)
    return (expect_refused(*a, "nope.png: no such file or folder")[0] and
            expect_refused(*b, "folder holds no image files")[0] and expect_refused(*c, "is not a folder")[0],
            f"{a[1].strip()} | {b[1].strip()} | {c[1].strip()}")


# -- the pipeline API --------------------------------------------------------------------
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


# -- e2p evaluate --------------------------------------------------------------------------
def _nyu(folder: Path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "evaluation"))
    from e2p_dataset_fixtures import write_nyuv2

    return write_nyuv2(folder)


def _eval(preds: Path, data: Path, out: Path):
    return cli("evaluate", "--task", "depth", "--dataset", "nyuv2", "--data-dir", data, "--predictions", preds,
               "--output-dir", out, "--no-progress")


def _eval_case(mutate, *words, code_expected=1):
    def run():
        root = FX.fresh("eval")
        gts = _nyu(root / "nyu")
        for sid, gt in gts.items():
            p = root / "preds" / f"{sid}.npy"
            p.parent.mkdir(parents=True, exist_ok=True)
            np.save(p, np.sqrt(gt))
        sid = sorted(gts)[0]
        mutate(root / "preds" / f"{sid}.npy", gts[sid])
        code, err = _eval(root / "preds", root / "nyu", root / "out")
        return code == code_expected and all(w in err for w in words), (err.strip().splitlines() or [""])[-1][:160]
    return run


case("evaluate", "transposed prediction (640x480 for 480x640)")(
    _eval_case(lambda p, gt: np.save(p, np.sqrt(gt).T.copy()), ".npy: the prediction is 480x640"))
case("evaluate", "0x0 prediction")(_eval_case(lambda p, gt: np.save(p, np.zeros((0, 0))), "the prediction is empty"))
case("evaluate", "object (pickle) .npy prediction")(_eval_case(
    lambda p, gt: np.save(p, np.array([{}], dtype=object), allow_pickle=True), ".npy: not a readable numeric .npy"))
case("evaluate", "truncated .npy prediction")(_eval_case(
    lambda p, gt: p.write_bytes(p.read_bytes()[:100]), ".npy: not a readable numeric .npy"))
case("evaluate", "missing prediction file")(_eval_case(lambda p, gt: p.unlink(), "no saved prediction for sample"))
case("evaluate", "NaN prediction pixels")(_eval_case(
    lambda p, gt: np.save(p, np.full(gt.shape, np.nan, np.float32)), "non-finite"))


@case("evaluate", "a failing second run into the same --output-dir leaves the first run's results whole")
def _eval_stale():
    root = FX.fresh("eval-stale")
    gts = _nyu(root / "nyu")
    for sid, gt in gts.items():
        p = root / "preds" / f"{sid}.npy"
        p.parent.mkdir(parents=True, exist_ok=True)
        np.save(p, np.sqrt(gt))
    _eval(root / "preds", root / "nyu", root / "out")
    before = {p.name: p.read_bytes() for p in (root / "out").iterdir()}
    (root / "preds" / f"{sorted(gts)[0]}.npy").unlink()
    code, _ = _eval(root / "preds", root / "nyu", root / "out")
    after = {p.name: p.read_bytes() for p in (root / "out").iterdir()}
    return code == 1 and after == before, f"exit {code}; previous files unchanged: {after == before}"


# -- data: converted shards, streams, map-style, converter ----------------------------------------
def _converted(name: str, n=6):
    from edit2perceive.data import synthetic_scenes
    from edit2perceive.data.convert import convert

    out = FX.fresh(name) / "syn"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        convert(synthetic_scenes(n, (16, 24), seed=3), out, shard_size=2, progress=False)
    return out, sorted((out / "data").glob("*.parquet"))


def _corrupt_row(shard: Path, row: int) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(shard)
    rgb = table.column("rgb").to_pylist()
    rgb[row] = {**rgb[row], "bytes": rgb[row]["bytes"][: len(rgb[row]["bytes"]) // 2]}
    index = table.schema.get_field_index("rgb")
    pq.write_table(table.set_column(index, "rgb", pa.array(rgb, type=table.schema.field("rgb").type)), shard)
    return table.column("id")[row].as_py()


def _stream_ids(ds) -> tuple[list, list]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ids = [ex["meta"]["id"] for ex in ds]
    return ids, [str(w.message) for w in caught]


@case("data", "corrupt image in a converted row (streamed): skipped, counted, named")
def _row_stream():
    from edit2perceive.data.streaming import converted_dataset

    out, shards = _converted("row")
    bad = _corrupt_row(shards[1], 0)
    ids, msgs = _stream_ids(converted_dataset(out, max_bad_fraction=0.5))
    return len(ids) == 5 and any(bad in m and "1 of" in m for m in msgs), next((m for m in msgs if bad in m), "")[:160]


@case("data", "corrupt row in a task mixture")
def _row_mixture():
    from edit2perceive.data.streaming import converted_dataset, task_mixture

    out, shards = _converted("rowmix")
    bad = _corrupt_row(shards[2], 1)
    ids, msgs = _stream_ids(task_mixture("depth", {"hypersim": converted_dataset(out, decode=False,
                                                                                 max_bad_fraction=0.5)}))
    return len(ids) == 5 and any(bad in m for m in msgs), f"{len(ids)} examples; warned: {any(bad in m for m in msgs)}"


@case("data", "corrupt row, map-style access")
def _row_map():
    from edit2perceive.data.streaming import ConvertedRows

    os.environ["HF_DATASETS_CACHE"] = str(FX.root / "hf-cache")
    out, shards = _converted("rowmap")
    bad = _corrupt_row(shards[1], 0)
    rows = ConvertedRows(out, max_bad_fraction=0.5)
    ids, msgs = _stream_ids(rows[i] for i in range(len(rows)))
    return bad not in ids and len(rows.bad.skipped) == 1, f"skipped {rows.bad.skipped}"[:160]


@case("data", "damaged shard (no Parquet footer): left out and named")
def _shard_damaged():
    from edit2perceive.data.streaming import converted_dataset

    out, shards = _converted("shard", n=8)
    shards[1].write_bytes(shards[1].read_bytes()[:100])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = converted_dataset(out, max_bad_fraction=0.5)
    ids, msgs = _stream_ids(ds)
    msgs += [str(w.message) for w in caught]
    return len(ids) == 6 and any(shards[1].name in m for m in msgs), next((m for m in msgs if "shard" in m), "")[:160]


@case("data", "too many bad rows: the run stops with a clear message")
def _too_many():
    from edit2perceive.data.streaming import TooMuchBadData, converted_dataset

    out, shards = _converted("many")
    _corrupt_row(shards[0], 0)
    _corrupt_row(shards[2], 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return expect_raises(lambda: list(converted_dataset(out)), TooMuchBadData, "more than max_bad_fraction")


def _raw_vkitti(root: Path, n=4):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "data"))
    from test_data_convert import vkitti_tree

    vkitti_tree(root, n=n)
    return root


@case("converter", "truncated existing shard: rebuilt on rerun")
def _conv_truncated():
    from edit2perceive.data import VirtualKitti2Reader
    from edit2perceive.data.convert import convert

    raw = _raw_vkitti(FX.fresh("conv-trunc") / "raw")
    out = raw.parent / "out"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        convert(VirtualKitti2Reader(raw), out, shard_size=2, progress=False)
        shard = sorted((out / "data").glob("*.parquet"))[1]
        shard.write_bytes(shard.read_bytes()[:300])
        summary = convert(VirtualKitti2Reader(raw), out, shard_size=2, progress=False)
    return summary["rows"] == 4 and any("rebuilding" in str(w.message) for w in caught), str(summary)


@case("converter", "decompression-bomb source image: skipped and counted")
def _conv_bomb():
    from edit2perceive.data import VirtualKitti2Reader
    from edit2perceive.data.convert import convert

    raw = _raw_vkitti(FX.fresh("conv-bomb") / "raw")
    png_declaring(raw / "Scene02/clone/frames/rgb/Camera_0/rgb_00001.jpg", 20000, 20000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = convert(VirtualKitti2Reader(raw), raw.parent / "out", shard_size=2, progress=False)
    return summary["rows"] == 3 and summary["skipped"] == 1, str(summary)


@case("converter", "corrupt progress.json: named, conversion starts over")
def _conv_manifest():
    from edit2perceive.data import VirtualKitti2Reader
    from edit2perceive.data.convert import convert

    raw = _raw_vkitti(FX.fresh("conv-manifest") / "raw")
    out = raw.parent / "out"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        convert(VirtualKitti2Reader(raw), out, shard_size=2, progress=False)
        (out / "progress.json").write_text('{"shards": {"0": {')
        summary = convert(VirtualKitti2Reader(raw), out, shard_size=2, progress=False)
    msg = next((str(w.message) for w in caught if "progress.json" in str(w.message)), "")
    return summary["rows"] == 4 and "unreadable manifest" in msg, msg[:160]


# -- security ------------------------------------------------------------------------------------
class _Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@case("security", "crafted training_args.bin in a model folder: e2p card / push --dry-run run no code")
def _pickle():
    import torch

    model = FX.root / "models" / "crafted"
    shutil.rmtree(model, ignore_errors=True)
    shutil.copytree(FX.model("depth"), model)
    marker = FX.root / "pwned"
    torch.save(_Payload(marker), model / "training_args.bin")
    a, _ = cli("card", model, "--output", FX.root / "card.md")
    b, _ = cli("push", model, "--repo-id", "me/x", "--dry-run", FX.fresh("upload") / "up")
    return a == 0 and b == 0 and not marker.exists(), f"card {a}, push {b}, code ran: {marker.exists()}"


@case("security", "no torch.load / pickle / allow_pickle=True / trust_remote_code in the sources")
def _grep():
    root = Path(__file__).resolve().parents[1]
    hits = []
    for path in sorted((root / "src").rglob("*.py")) + sorted((root / "dataset_scripts").rglob("*.py")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if any(k in line for k in ("torch.load", "import pickle", "pickle.load", "allow_pickle=True",
                                       "trust_remote_code", "weights_only=False")):
                hits.append(f"{path.relative_to(root)}:{n}")
    return not hits, ", ".join(hits) or "none"


def main(argv=None) -> int:
    global FX
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=None, help="comma-separated areas (default: all)")
    parser.add_argument("--verbose", action="store_true", help="print each case's detail")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import datasets
    import diffusers

    datasets.disable_progress_bars()
    diffusers.utils.logging.disable_progress_bar()
    areas = set(args.cases.split(",")) if args.cases else None
    with tempfile.TemporaryDirectory(prefix="e2p-faults-") as tmp:
        FX = Fixtures(Path(tmp))
        results = []
        for area, description, fn in CASES:
            if areas and area not in areas:
                continue
            start = time.perf_counter()
            try:
                handled, detail = fn()
            except Exception as err:  # noqa: BLE001 - an unhandled crash is a finding, not a script error
                handled, detail = False, f"CRASH {type(err).__name__}: {str(err)[:150]}"
            results.append((area, description, bool(handled), detail, time.perf_counter() - start))
            mark = "ok  " if handled else "FAIL"
            print(f"{mark} [{area}] {description}" + (f"\n       {detail}" if args.verbose or not handled else ""),
                  flush=True)
    print("\n| area | inputs tried | handled |\n|---|---|---|")
    for area in dict.fromkeys(r[0] for r in results):
        rows = [r for r in results if r[0] == area]
        print(f"| {area} | {len(rows)} | {sum(r[2] for r in rows)} |")
    print(f"| **all** | **{len(results)}** | **{sum(r[2] for r in results)}** |")
    return 0 if all(r[2] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
