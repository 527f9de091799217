"""``e2p predict``: run a trained model on image files and write usable outputs.

For every image ``NAME.ext`` it writes, into ``--output-dir``:
depth ``NAME_depth.png`` (Spectral colour map), ``NAME_depth_16bit.png``, ``NAME_depth.npy``;
normal ``NAME_normal.png``, ``NAME_normal.npy``; matting ``NAME_alpha.png`` (8-bit),
``NAME_cutout.png`` (RGBA), ``NAME_alpha.npy``; and ``NAME_panel.png`` (input | prediction).
An image that fails leaves no file behind; the others continue, and the command exits
with status 1 and a summary of the failures.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._model_args import add_model_arguments, model_options


def parse_point(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"point {text!r} is not 'x,y' (pixel column,row)") from None
    return x, y


def register(subparsers) -> None:
    p = subparsers.add_parser("predict", help="predict depth / normals / alpha for image files",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (any PIL format)")
    p.add_argument("--task", required=True, choices=["depth", "normal", "matting"],
                   help="task; must match the model's task")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="saved pipeline folder or Hugging Face Hub id")
    p.add_argument("--output-dir", required=True, type=Path, help="folder for the outputs (created)")
    p.add_argument("--points", nargs="+", type=parse_point, default=None, metavar="X,Y",
                   help="matting: foreground points in pixel coordinates, used for every image")
    p.add_argument("--steps", type=int, default=1, help="Euler steps (1 = single-step, the default)")
    p.add_argument("--processing-resolution", type=int, default=None,
                   help="longest side seen by the model (default: the model's, 768; 0 = native)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    add_model_arguments(p, source)
    p.set_defaults(func=run)


def run(args) -> int:
    import numpy as np
    import PIL.Image
    from tqdm.auto import tqdm

    from edit2perceive.images import open_image, pil_to_unit_rgb
    from edit2perceive.visualize import render_outputs, write_outputs

    if args.task == "matting" and not args.points:
        print("e2p predict: the matting task needs --points X,Y [X,Y ...]", file=sys.stderr)
        return 2
    if args.task != "matting" and args.points:
        print(f"e2p predict: --points is only used by the matting task, not {args.task!r}", file=sys.stderr)
        return 2
    from edit2perceive.pipeline import load_pipeline

    try:
        pipe = load_pipeline(args.model, task=args.task, device=args.device, **model_options(args))
    except (ValueError, OSError, RuntimeError) as err:
        print(f"e2p predict: cannot use model: {err}", file=sys.stderr)
        return 2

    failures: list[tuple[str, str]] = []
    written = 0
    stems: dict[str, int] = {}
    for path in tqdm(args.images, desc="predict", unit="image"):
        stem = Path(path).stem
        stems[stem] = stems.get(stem, 0) + 1
        if stems[stem] > 1:  # same file name from another folder: keep both
            stem = f"{stem}-{stems[stem]}"
        try:
            # greyscale, RGBA and 16-bit files become 8-bit RGB (see edit2perceive.images)
            rgb = PIL.Image.fromarray(np.round(pil_to_unit_rgb(open_image(path), str(path)) * 255).astype(np.uint8))
            points = [list(args.points)] if args.points else None
            out = pipe(rgb, points=points, num_inference_steps=args.steps,
                       processing_resolution=args.processing_resolution, show_progress_bar=False)
            outputs = render_outputs(args.task, rgb, out.prediction[0], points=args.points)
            write_outputs(outputs, args.output_dir, stem)
            written += 1
        except (ValueError, OSError, TypeError) as err:
            failures.append((str(path), str(err)))
    print(f"e2p predict: {written} of {len(args.images)} images written to {args.output_dir}", file=sys.stderr)
    for path, why in failures:
        print(f"  FAILED {path}: {why}", file=sys.stderr)
    return 1 if failures else 0
