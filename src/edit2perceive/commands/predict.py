"""``e2p predict``: run a trained model on image files or folders and write usable outputs.

Inputs are image files and folders (searched recursively for files whose extension PIL can
read; hidden files and the folders e2p wrote, marked by their ``.e2p-manifest.json``, are
left out). Every input gets its own output folder named like the input file, at its path
relative to the inputs' common folder, so equal file names in different folders (or with
different extensions) never share one:

    e2p predict photos/ --output-dir out/   # photos/a/x.jpg -> out/a/x.jpg/depth.png ...

Files per input folder: depth ``depth.png`` (Spectral colour map), ``depth_16bit.png``,
``depth.npy``; normal ``normal.png``, ``normal.npy``; matting ``alpha.png`` (8-bit),
``cutout.png`` (RGBA), ``alpha.npy``; and ``<task>_panel.png`` (input | prediction).

Re-runs: after a run, an input's folder holds exactly the files this run wrote for the task
(extras included; an earlier run's extras that were not asked for again are removed), next
to other tasks' files and anything else that was there. Each folder's ``.e2p-manifest.json``
records what e2p wrote; a file e2p cannot prove it wrote is never deleted or replaced (the
input fails instead). Each folder appears complete or not at all (written aside, then one
rename), even if the run is killed; ``--skip-existing`` resumes an interrupted run by
skipping inputs whose folder already holds exactly this run's files for the task.

An input that fails (unreadable, too large, a point outside it, a non-finite prediction,
out of memory) is reported with its file name and leaves nothing; the others continue, and
the command exits with status 1 and a summary.
Arguments that would fail for every image are refused before the model loads.

Beyond one map (options below, :mod:`edit2perceive.commands._predict_extras`): ensembles
with ``--ensemble-size N --uncertainty``, metric depth from ``--metric-depth FILE``, point
clouds with ``--export ply glb``; video files given as inputs (``clip.mp4`` -> ``OUT/clip.mp4/``
with ``<task>.mp4`` and ``<task>_frames/``, written aside and moved into place together).

Whole ``datasets`` datasets instead of files: ``--dataset NAME_OR_PATH`` writes a prediction
dataset (parquet shards, manifest, card), also under ``accelerate launch`` on many
processes (:mod:`edit2perceive.commands._predict_dataset`, docs/inference-at-scale.md).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from edit2perceive.tasks import TASKS

from . import _predict_dataset, _predict_extras
from ._model_args import add_model_arguments, check_model_source, check_output_folder
from ._predict_options import PredictOptions

#: files each task writes into an input's folder (see edit2perceive.outputs.visualize.render_outputs)
TASK_FILES = {
    "depth": ("depth.png", "depth_16bit.png", "depth.npy", "depth_panel.png"),
    "normal": ("normal.png", "normal.npy", "normal_panel.png"),
    "matting": ("alpha.png", "cutout.png", "alpha.npy", "matting_panel.png"),
}


def parse_point(text: str) -> tuple[float, float]:
    """``"x,y"`` -> ``(x, y)``; surrounding spaces are ignored (see :func:`edit2perceive.cli.main`)."""
    text = text.strip()
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"point {text!r} is not 'x,y' (pixel column,row)") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise argparse.ArgumentTypeError(f"point {text!r}: coordinates must be finite numbers")
    return x, y


def split_points(points: list[str] | None, inputs: list[str]) -> tuple[list[tuple[float, float]] | None, list[str]]:
    """``--points`` values -> ``(points, inputs)``: argparse gives ``--points`` every value up
    to the next option, so ``--points 120,80 140,95 cat.jpg`` also holds the input. The values
    from the first existing path (or one that is not ``x,y``-shaped: no comma) on are inputs."""
    if points is None:
        return None, list(inputs)
    for k, text in enumerate(points):
        if os.path.exists(text) or "," not in text:
            return [parse_point(v) for v in points[:k]], [*points[k:], *inputs]
    return [parse_point(v) for v in points], list(inputs)


def register(subparsers) -> None:
    p = subparsers.add_parser("predict", help="predict depth / normals / alpha for image files and folders",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # "*": --dataset needs none, and `--points 1,2 3,4 cat.jpg` leaves none here (see split_points)
    p.add_argument("inputs", nargs="*", metavar="IMAGE_OR_DIR",
                   help="image files (any PIL format) and folders (or --dataset)")
    p.add_argument("--task", required=True, choices=list(TASKS),
                   help="task; must match the model's task")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="saved pipeline folder or Hugging Face Hub id")
    p.add_argument("--output-dir", required=True, type=Path, help="folder for the outputs (created)")
    p.add_argument("--points", nargs="+", default=None, metavar="X,Y",
                   help="matting: foreground points in pixel coordinates, used for every image")
    p.add_argument("--steps", type=int, default=1, help="Euler steps, 1..1000 (1 = single-step, the default)")
    p.add_argument("--processing-resolution", type=int, default=None,
                   help="longest side seen by the model, 0..8192 (default: the model's, 768; 0 = native)")
    p.add_argument("--batch-size", type=int, default=1, help="images per forward pass (default 1)")
    p.add_argument("--skip-existing", action="store_true",
                   help="skip inputs whose output files for this task exist (resume an interrupted run)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    add_model_arguments(p, source)
    _predict_extras.add_arguments(p)
    _predict_dataset.add_arguments(p)
    p.set_defaults(func=run, finish_parsing=finish_parsing)


# -- inputs -----------------------------------------------------------------------------
def image_extensions() -> frozenset[str]:
    """Lower-case file extensions PIL can open (with the dot)."""
    import PIL.Image

    PIL.Image.init()
    return frozenset(ext.lower() for ext, fmt in PIL.Image.registered_extensions().items() if fmt in PIL.Image.OPEN)


def list_inputs(paths) -> list[tuple[Path, str]]:
    """Input arguments -> sorted ``(image file, output name)`` pairs.

    Folders are searched recursively for image files (by extension; hidden entries and the
    folders e2p wrote, those holding its manifest ``.e2p-manifest.json``, are skipped, so earlier
    outputs are never taken for photos while the user's images beside them are found); files
    are taken as given (an output folder inside an input folder hides nothing). The output name is the file's path relative to the
    common folder of all inputs (POSIX separators), so two inputs never share one.
    ``ValueError`` for a path that does not exist, a folder without images, or a folder that
    cannot be listed (named; it is not skipped silently). A broken link or a symlink loop with
    an image name is kept as an input and fails as unreadable.
    """
    from edit2perceive.io.manifest import MANIFEST

    extensions = image_extensions()
    files: dict[str, Path] = {}  # real path -> as found (absolute)
    bases = []
    for arg in paths:
        path = Path(os.path.abspath(arg))
        if path.is_dir():
            bases.append(path)
            found = 0
            unreadable: list[OSError] = []
            for root, dirs, names in os.walk(path, onerror=unreadable.append):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                                 and not os.path.isfile(os.path.join(root, d, MANIFEST)))
                for n in sorted(names):
                    if not n.startswith(".") and os.path.splitext(n)[1].lower() in extensions:
                        files.setdefault(os.path.realpath(os.path.join(root, n)), Path(root, n))
                        found += 1
            if unreadable:
                err = unreadable[0]
                raise ValueError(f"{err.filename}: cannot list the folder ({err.strerror}); fix its permissions or "
                                 f"give the other folders instead ({len(unreadable)} such folder(s))")
            if not found:
                raise ValueError(f"{arg}: folder holds no image files ({', '.join(sorted(extensions)[:6])}, ...)")
        elif path.is_file():
            bases.append(path.parent)
            files.setdefault(os.path.realpath(path), path)
        else:
            raise ValueError(f"{arg}: no such file or folder")
    if not files:
        return []
    base = Path(os.path.commonpath([str(b) for b in bases]))
    pairs = [(p, p.relative_to(base).as_posix()) for p in files.values()]
    return sorted(pairs, key=lambda pair: pair[1])


# -- one set of outputs ---------------------------------------------------------------------
def prediction_files(task: str, rgb, prediction, points=None) -> dict:
    """The files of one input's folder: ``{file name: PIL image or numpy array}``."""
    from edit2perceive.outputs.visualize import render_outputs

    files = render_outputs(task, rgb, prediction, points=points)
    files[f"{task}_panel.png"] = files.pop("panel.png")  # one folder holds every task's files
    return files


def owner(task: str) -> str:
    """The owner label of a task's files in a set folder's manifest (:mod:`edit2perceive.io.manifest`)."""
    return f"e2p predict {task}"


def _is_done(output_dir: Path, name: str, opts: PredictOptions) -> bool:
    """Whether the folder holds exactly the files this run would write for the task, all
    proven written by e2p (a newly requested extra is missing: not done)."""
    from edit2perceive.io.manifest import owned

    mine = {n for n, who in owned(output_dir / name).items() if who == owner(opts.task)}
    return mine == set(TASK_FILES[opts.task]) | _predict_extras.extra_file_names(opts)


def check_arguments(opts: PredictOptions) -> str | None:
    """The reason the options would fail for every image, or ``None``."""
    from edit2perceive.pipelines.pipeline import MAX_INFERENCE_STEPS, MAX_PROCESSING_RESOLUTION

    if opts.task == "matting" and not opts.points:
        return "the matting task needs --points X,Y [X,Y ...]"
    if opts.task != "matting" and opts.points:
        return f"--points is only used by the matting task, not {opts.task!r}"
    if not 1 <= opts.steps <= MAX_INFERENCE_STEPS:
        return f"--steps must be within 1..{MAX_INFERENCE_STEPS}, got {opts.steps}"
    res = opts.processing_resolution
    if res is not None and not 0 <= res <= MAX_PROCESSING_RESOLUTION:
        return f"--processing-resolution must be within 0..{MAX_PROCESSING_RESOLUTION} (0 = native), got {res}"
    if opts.batch_size < 1:
        return f"--batch-size must be >= 1, got {opts.batch_size}"
    from edit2perceive.io.images import max_image_pixels

    try:
        max_image_pixels()
    except ValueError as err:
        return str(err)
    return check_output_folder(opts.output_dir)


def _load_rgb(path: Path):
    from edit2perceive.io.images import MIN_SIDE, open_rgb8

    # upright (EXIF), greyscale / RGBA / 16-bit files become 8-bit RGB (see edit2perceive.io.images)
    img = open_rgb8(path)
    if min(img.size) < MIN_SIDE:  # said here, by file, not as "image 0" of a batch
        raise ValueError(f"the image is {img.width}x{img.height} px; both sides must be at least {MIN_SIDE} px")
    return img


def _message(err: BaseException) -> str:
    from edit2perceive.inference_at_scale.runner import failure_message

    return failure_message(err)


def finish_parsing(args: argparse.Namespace) -> None:
    """After argparse: ``--points`` values become points and the inputs they swallowed
    (:func:`split_points`); ``argparse.ArgumentTypeError`` on a bad point."""
    try:
        args.points, args.inputs = split_points(args.points, args.inputs)
    except argparse.ArgumentTypeError as err:
        raise argparse.ArgumentTypeError(f"e2p predict: --points: {err}") from None


def run(args: argparse.Namespace) -> int:
    if args.dataset is not None:  # a whole datasets dataset: edit2perceive.inference_at_scale
        return _predict_dataset.run(PredictOptions.from_args(args), _predict_dataset.DatasetOptions.from_args(args),
                                    check_arguments)
    return predict(PredictOptions.from_args(args))


def predict(opts: PredictOptions) -> int:
    """Run ``e2p predict``; returns the exit status (module docstring)."""
    from edit2perceive.outputs.video import is_video

    problem = check_arguments(opts) or _predict_extras.check_arguments(opts)
    if problem is None and not opts.inputs:
        problem = "give image files / folders, or --dataset NAME_OR_PATH"
    problem = problem or check_model_source(opts.model, opts.device)
    if problem is None:
        try:
            inputs = list_inputs(opts.inputs)
        except ValueError as err:
            problem = str(err)
    if problem is None and any(is_video(p) for p, _ in inputs):
        problem = _predict_extras.check_video_options(opts)
    if problem is not None:
        return _fail(problem)
    todo = [(p, n) for p, n in inputs if not (opts.skip_existing and _has_outputs(opts, p, n))]
    if not todo:
        print(f"e2p predict: all {len(inputs)} inputs already have {opts.task} outputs in {opts.output_dir}",
              file=sys.stderr)
        return 0
    try:
        predictor = _Predictor(opts)
    except (ValueError, OSError, RuntimeError) as err:
        return _fail(f"cannot use model: {err}")
    try:
        predictor.prepare_output_dir()
    except OSError as err:
        return _fail(str(err))
    predictor.predict_videos([(p, n) for p, n in todo if is_video(p)])
    predictor.predict_images([(p, n) for p, n in todo if not is_video(p)])
    skipped = len(inputs) - len(todo)
    extra = f", {skipped} skipped (outputs exist)" if skipped else ""
    print(f"e2p predict: {predictor.written} of {len(inputs)} images written to {opts.output_dir}{extra}",
          file=sys.stderr)
    for path, why in predictor.failures:
        print(f"  FAILED {path}: {why}", file=sys.stderr)
    return 1 if predictor.failures else 0


def _fail(problem: str) -> int:
    print(f"e2p predict: {problem}", file=sys.stderr)
    return 2


def _has_outputs(opts: PredictOptions, path: Path, name: str) -> bool:
    from edit2perceive.outputs.video import is_video

    if is_video(path):
        return _predict_extras.video_done(opts, opts.output_dir / name)
    return _is_done(opts.output_dir, name, opts)


class _Predictor:
    """One run's model and tallies: inputs written, ``(path, reason)`` of those that failed."""

    def __init__(self, opts: PredictOptions):
        from edit2perceive.pipelines.loading import load_pipeline

        self.opts = opts
        self.pipe = load_pipeline(opts.model, task=opts.task, device=opts.device, **opts.loading.load_kwargs())
        self.helpers = _predict_extras.Helpers(opts, self.pipe)
        self.points = list(opts.points) if opts.points else None
        self.written = 0
        self.failures: list[tuple[str, str]] = []

    def prepare_output_dir(self) -> None:
        from edit2perceive.outputs.visualize import clean_stale_partials

        try:
            self.opts.output_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OSError(err.errno, f"--output-dir {self.opts.output_dir}: cannot be created ({err.strerror})") from None
        for stale in clean_stale_partials(self.opts.output_dir):
            print(f"e2p predict: removed {stale.name}, left by an interrupted run", file=sys.stderr)

    def predict(self, rgbs) -> list:
        """``[(prediction, uncertainty or None)]`` per image."""
        opts = self.opts
        out = self.pipe(rgbs, points=[self.points] * len(rgbs) if self.points else None,
                        num_inference_steps=opts.steps, processing_resolution=opts.processing_resolution,
                        batch_size=opts.batch_size,
                        **_predict_extras.call_kwargs(opts.extras))
        return list(zip(out.prediction, [None] * len(rgbs) if out.uncertainty is None else out.uncertainty))

    def predict_videos(self, videos) -> None:
        for path, name in videos:
            try:
                _predict_extras.run_video(self.opts, self.pipe, path, self.opts.output_dir, name, owner(self.opts.task))
                self.written += 1
            except Exception as err:  # noqa: BLE001 - any per-input failure is reported, the run goes on
                self.failures.append((str(path), _message(err)))

    def predict_images(self, images) -> None:
        from tqdm.auto import tqdm

        with tqdm(total=len(images), desc="predict", unit="image") as bar:
            for start in range(0, len(images), self.opts.batch_size):
                self._predict_batch(images[start:start + self.opts.batch_size], bar)

    def _predict_batch(self, items, bar) -> None:
        batch = []
        for path, name in items:
            try:
                batch.append((path, name, _load_rgb(path)))
            except Exception as err:  # noqa: BLE001 - any per-image failure is reported, the run goes on
                self.failures.append((str(path), _message(err)))
                bar.update()
        if not batch:
            return
        try:
            predictions = self.predict([rgb for _, _, rgb in batch])
        except Exception as err:  # noqa: BLE001
            if len(batch) == 1:
                self.failures.append((str(batch[0][0]), _message(err)))
                bar.update()
                return
            predictions = [None] * len(batch)  # find which image fails: predict them one at a time
        for (path, name, rgb), prediction in zip(batch, predictions):
            try:
                self._write(name, rgb, *(prediction if prediction is not None else self.predict([rgb])[0]))
                self.written += 1
            except Exception as err:  # noqa: BLE001
                self.failures.append((str(path), _message(err)))
            bar.update()

    def _write(self, name: str, rgb, prediction, uncertainty) -> None:
        from edit2perceive.outputs.visualize import write_prediction_set

        opts = self.opts
        files = prediction_files(opts.task, rgb, prediction, points=self.points)
        files.update(_predict_extras.extra_files(opts, self.helpers, rgb, prediction, uncertainty))
        write_prediction_set(files, opts.output_dir, name, owner=owner(opts.task))
