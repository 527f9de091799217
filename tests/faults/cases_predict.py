"""Fault cases of `e2p predict` (inputs, arguments, kills, model folders)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from harness import (
    FX,
    case,
    cli,
    expect_failure,
    expect_refused,
    last_line,
    png_declaring,
    predict,
    sets_whole,
    visible_files,
)
from PIL import Image


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
    ("tiny.png", lambda p: FX.image("bad/tiny.png", 15, 15), ("the image is 15x15 px", "at least 16 px")),
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
                                           model=FX.root / "missing-model"), "missing-model: no such folder"))
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



# -- re-runs into the same folder: exactly what the run produced, ownership by manifest -------
def _set_files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if not p.name.startswith(".")}


DEPTH_SET = {"depth.png", "depth_16bit.png", "depth.npy", "depth_panel.png"}


@case("predict", "re-run without the extras (and with another model): the first run's extras are removed")
def _rerun_extras():
    out = FX.fresh("rerun-extras")
    img = FX.image("rerun/a.png")
    (out.parent / "m.csv").write_text("x,y,depth\n5,5,2.0\n40,20,6.5\n20,10,3.0\n30,25,5.0\n")
    code, err = predict("depth", img, out=out, extra=["--ensemble-size", "2", "--uncertainty", "--export", "ply",
                                                      "--metric-depth", out.parent / "m.csv"])
    assert code == 0, last_line(err)
    predict("matting", img, out=out, extra=["--points", "10,10"])
    (out / "a.png" / "notes.txt").write_text("mine")
    first = _set_files(out / "a.png")
    assert {"depth_metric.npy", "depth_cloud.ply", "depth_uncertainty.npy", "alpha.npy"} <= first, first
    code, err = predict("depth", img, out=out, model=FX.model_copy("other-depth"))
    got = _set_files(out / "a.png")
    want = DEPTH_SET | {"alpha.png", "cutout.png", "alpha.npy", "matting_panel.png", "notes.txt"}
    return code == 0 and got == want, f"after the re-run: extra {sorted(got - want)}, missing {sorted(want - got)}"


@case("predict", "--skip-existing with a newly requested extra (--export ply): the image is predicted again")
def _skip_new_extra():
    out = FX.fresh("skip-extra")
    img = FX.image("skipx/a.png")
    assert predict("depth", img, out=out)[0] == 0
    code, err = predict("depth", img, out=out, extra=["--skip-existing", "--export", "ply"])
    ok = code == 0 and "1 of 1 images written" in err and (out / "a.png" / "depth_cloud.ply").is_file()
    code2, err2 = predict("depth", img, out=out, extra=["--skip-existing", "--export", "ply"])
    return ok and code2 == 0 and "already have" in err2, f"{last_line(err)} | {last_line(err2)}"


@case("predict", "a user's own file under an output name (depth.png) in the input's folder: not replaced")
def _foreign_output_name():
    out = FX.fresh("foreign-name")
    (out / "a.png").mkdir()
    (out / "a.png" / "depth.png").write_bytes(b"my own depth picture")
    code, err = predict("depth", FX.image("foreign/a.png"), out=out)
    ok, detail = expect_failure(code, err, "a.png", "depth.png: exists and was not written by e2p")
    return ok and (out / "a.png" / "depth.png").read_bytes() == b"my own depth picture", detail


@case("predict", "the README's matting command: --points 120,80 140,95 cat.jpg (input after the points)")
def _readme_points():
    img = FX.image("readme/cat.jpg", 100, 160)
    out = FX.fresh("readme-points")
    code, err = cli("predict", "--task", "matting", "--model", FX.model("matting"), "--output-dir", out,
                    "--processing-resolution", "32", "--points", "120,80", "140,95", img)
    return code == 0 and (out / "cat.jpg" / "alpha.npy").is_file(), last_line(err)


@case("predict", "too-small image in a batch of 2: named by its file, not as 'image 0'")
def _tiny_named():
    out = FX.fresh("tiny-named")
    code, err = predict("depth", FX.image("tn/small.png", 15, 40), FX.image("tn/good.png"), out=out,
                        extra=["--batch-size", "2"])
    ok, detail = expect_failure(code, err, "small.png", "the image is 40x15 px; both sides must be at least 16 px")
    return ok and "image 0" not in err, detail


@case("predict", "python -m edit2perceive.training.tiny_run --help (an old module path): usage, exit 0")
def _old_path_help():
    res = subprocess.run([sys.executable, "-m", "edit2perceive.training.tiny_run", "--help"], capture_output=True,
                         text=True, timeout=120)
    return res.returncode == 0 and "usage:" in res.stdout, (res.stdout + res.stderr).strip().splitlines()[-1][:160]


# -- odd folders, output folders, model and device arguments ------------------------------------
@case("predict", "a symlink loop (loop.png -> loop.png) in an input folder: that input fails, no traceback")
def _symlink_loop():
    import os

    root = FX.root / "inputs" / "loop"
    FX.image("loop/a.png")
    if not (root / "loop.png").is_symlink():
        os.symlink("loop.png", root / "loop.png")
    if not (root / "back").is_symlink():
        os.symlink("..", root / "back")  # a folder loop: not followed
    code, err = predict("depth", root, out=FX.fresh("loop"))
    ok, detail = expect_failure(code, err, "loop.png")
    return ok and "1 of 2 images written" in err and "Traceback" not in err, detail


@case("predict", "an unreadable subfolder: named and refused, not skipped silently")
def _unreadable_folder():
    import os
    from unittest import mock

    root = FX.root / "inputs" / "perm"
    FX.image("perm/a.png")
    FX.image("perm/private/b.png")
    real = os.scandir

    def scandir(path="."):  # the tests run as root, who reads every folder: deny one the way the OS does
        if os.fspath(path).endswith("private"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    with mock.patch("os.scandir", scandir):
        code, err = predict("depth", root, out=FX.fresh("perm"))
    return expect_refused(code, err, "private: cannot list the folder (Permission denied)")


@case("predict", "--output-dir inside the input folder, holding the user's own images: they are predicted")
def _output_inside_with_images():
    root = FX.root / "inputs" / "inside"
    FX.image("inside/a.png")
    FX.image("inside/out/mine.png", seed=3)
    code, err = predict("depth", root, out=root / "out")
    return code == 0 and "2 of 2 images written" in err and (root / "out" / "out" / "mine.png" / "depth.npy").is_file(), \
        last_line(err)


@case("predict", "earlier outputs in another folder inside the input folder: not predicted again as photos")
def _earlier_outputs_inside():
    root = FX.root / "inputs" / "earlier"
    FX.image("earlier/a.png")
    shutil.rmtree(root / "res1", ignore_errors=True)
    shutil.rmtree(root / "res2", ignore_errors=True)
    first, _ = predict("depth", root, out=root / "res1")
    code, err = predict("depth", root, out=root / "res2")
    sets = sorted(p.parent.relative_to(root / "res2").as_posix() for p in (root / "res2").rglob("depth.npy"))
    return first == 0 and code == 0 and sets == ["a.png"], f"{last_line(err)}; sets {sets}"


@case("predict", "an --output-dir that cannot be created (under a file): refused, no traceback")
def _output_uncreatable():
    blocker = FX.fresh("uncreatable") / "a-file"
    blocker.write_text("x")
    code, err = predict("depth", FX.image("uc/a.png"), out=blocker / "out")
    return expect_refused(code, err, "cannot be created", "a-file is a file")


@case("predict", "--device cuda with a CPU-only torch: refused before loading, no traceback")
def _device_cuda():
    import torch

    if torch.cuda.is_available():
        return True, "CUDA is available here: nothing to refuse"
    start = time.perf_counter()
    code, err = predict("depth", FX.image("dev/a.png"), out=FX.fresh("dev"), extra=["--device", "cuda"])
    ok, detail = expect_refused(code, err, "--device cuda:", "use --device cpu")
    return ok and "Traceback" not in err and time.perf_counter() - start < 10, detail


@case("predict", "--model ./tiny-dept (a typo of a folder): 'no such folder', not a Hub error")
def _model_typo():
    code, err = cli("predict", "--task", "depth", "--model", "./tiny-dept", FX.image("typo/a.png"), "--output-dir",
                    FX.fresh("typo"))
    return expect_refused(code, err, "--model ./tiny-dept: no such folder")


@case("predict", "a Hub id while offline and not cached: says so (HF_HUB_OFFLINE), not 'check your connection'")
def _model_offline():
    from unittest import mock

    from huggingface_hub import constants

    with mock.patch.object(constants, "HF_HUB_OFFLINE", True):
        code, err = cli("predict", "--task", "depth", "--model", "someone/not-cached-e2p", FX.image("off/a.png"),
                        "--output-dir", FX.fresh("off"))
    ok, detail = expect_refused(code, err, "not in the cache while the Hub is off (HF_HUB_OFFLINE=1)")
    return ok and "connection" not in err, detail


@case("predict", "a plain e2p predict run in a fresh process: no library noise on stderr (warnings, kernel notes)")
def _quiet_run():
    import os

    out = FX.fresh("quiet")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}  # a user's default warning filters
    res = subprocess.run([sys.executable, "-m", "edit2perceive.cli", "predict", "--task", "depth", "--model",
                          str(FX.model("depth")), str(FX.image("quiet/a.png")), "--output-dir", str(out),
                          "--processing-resolution", "32"], capture_output=True, text=True, timeout=300, env=env)
    lines = [ln for ln in res.stderr.replace("\r", "\n").splitlines() if ln.strip() and "it/s]" not in ln
             and "image/s]" not in ln and not ln.startswith(("predict:", "Loading"))]
    noise = [ln for ln in lines if not ln.startswith("e2p predict:")]
    return res.returncode == 0 and not noise, "; ".join(noise)[:160] or lines[-1][:160]
