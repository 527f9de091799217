"""``e2p evaluate``: score a model (or saved predictions) on a benchmark under a protocol.

Writes into --output-dir (default ``eval_results/<task>_<dataset>_<protocol>``):
``per_image.jsonl``, ``per_image.csv``, ``summary.json`` (dataset, resolved protocol,
predictor, counts, metrics) and ``results.md`` (the paper's table layout). Exactly one of
--model (a saved pipeline folder or Hub id; loaded lazily) or --predictions (a folder with
one ``<sample_id>.npy`` per sample, ids as the dataset reader lists them, e.g.
``test/kitchen_0004/rgb_0001.npy`` for NYUv2) is required.
Exit status: 0 on success, 2 for bad arguments or data layout, 1 when a sample fails.

Under ``accelerate launch`` (N processes, one or many machines) each process evaluates
every N-th sample; the metric accumulators are summed across processes, so the numbers are
the one-process numbers, printed and written by the main process only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edit2perceive.evaluation.protocols import DATASETS, PROTOCOL_NAMES
from edit2perceive.tasks import TASKS

from ._model_args import ModelOptions, add_model_arguments


def register(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="evaluate on a benchmark (depth / normal / matting)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True, choices=list(TASKS))
    p.add_argument("--dataset", required=True,
                   help="benchmark: " + "; ".join(f"{task} {'|'.join(names)}" for task, names in DATASETS.items()))
    p.add_argument("--data-dir", required=True, type=Path, help="the dataset folder in its distributed layout")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="saved pipeline folder or Hugging Face Hub id")
    src.add_argument("--predictions", type=Path, help="folder of saved predictions <sample_id>.npy")
    p.add_argument("--protocol", default=PROTOCOL_NAMES[0], choices=PROTOCOL_NAMES,
                   help="evaluation protocol (default: marigold; see docs/evaluation.md)")
    p.add_argument("--max-samples", type=int, default=None, help="evaluate only the first N listed samples")
    p.add_argument("--output-dir", type=Path, default=None, help="folder for the results (created)")
    p.add_argument("--split-file", type=Path, default=None, help="sample list to use instead of the default one")
    p.add_argument("--method", default=None, help="row name in the tables (default: model / folder name)")
    g = p.add_argument_group("protocol overrides (default: the protocol's value)")
    g.add_argument("--alignment", choices=["auto", "least_squares", "least_squares_disparity", "least_squares_sqrt",
                                           "none"], default=None,
                   help="depth: alignment space; auto = from the model's depth encoding (sqrt -> least_squares_sqrt)")
    g.add_argument("--depth-encoding", choices=["sqrt", "uniform", "disparity", "log"], default=None,
                   help="depth, --predictions: encoding of the saved predictions (for --alignment auto)")
    g.add_argument("--aggregation", choices=["pooled", "per_image"], default=None, help="normal: aggregation")
    g.add_argument("--region", choices=["image", "unknown"], default=None, help="matting: whole image or trimap band")
    g.add_argument("--conn-mode", choices=["matlab", "python_port"], default=None, help="matting: Conn definition")
    g.add_argument("--nonfinite", choices=["error", "mask"], default=None, help="NaN/inf predictions: stop or mask")
    g.add_argument("--processing-resolution", type=int, default=None,
                   help="--model: longest side seen by the model (default: the model's, 768; 0 = native)")
    p.add_argument("--device", default=None, help="--model: torch device (default: cuda if available, else cpu)")
    add_model_arguments(p, src)
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from edit2perceive.evaluation import (
        PipelinePredictor,
        SavedPredictions,
        evaluate_benchmark,
        make_protocol,
    )
    from edit2perceive.evaluation.report import paper_table
    from edit2perceive.evaluation.runner import SetupError
    from edit2perceive.inference_at_scale import end_processes, process_state

    state = process_state()
    accelerator = None
    if state.num_processes > 1:
        from accelerate import Accelerator

        accelerator = Accelerator(cpu=state.device.type == "cpu")
    device = args.device or (None if state.num_processes == 1 else
                             "cpu" if state.device.type == "cpu" else str(state.device))
    try:
        proto = make_protocol(args.task, args.dataset, args.protocol, alignment=args.alignment,
                              aggregation=args.aggregation, region=args.region, conn_mode=args.conn_mode,
                              nonfinite=args.nonfinite, processing_resolution=args.processing_resolution)
        if args.predictions is not None:
            predictor = SavedPredictions(args.predictions, depth_encoding=args.depth_encoding)
        else:
            predictor = PipelinePredictor(args.model, args.task, device=device,
                                          processing_resolution=args.processing_resolution, **ModelOptions.from_args(args).load_kwargs())
    except (ValueError, FileNotFoundError) as err:
        print(f"e2p evaluate: {err}", file=sys.stderr)
        return end_processes(state, 2)
    out = args.output_dir or Path("eval_results") / f"{args.task}_{proto.dataset}_{args.protocol}"
    try:
        result = evaluate_benchmark(args.task, proto.dataset, args.data_dir, predictor, protocol=proto,
                                    split_file=args.split_file, max_samples=args.max_samples, output_dir=out,
                                    method=args.method, progress=not args.no_progress, accelerator=accelerator)
    except SetupError as err:
        print(f"e2p evaluate: {err}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, OSError) as err:  # the library's keyword hint, as the flag
        print(f"e2p evaluate: {str(err).replace('nonfinite=' + repr('mask'), '--nonfinite mask')}", file=sys.stderr)
        return 1  # under accelerate launch the launcher stops the other processes
    if not state.is_main_process:
        return end_processes(state, 0)
    s = result.summary
    print(paper_table([s]), end="")
    print(f"e2p evaluate: {s['num_evaluated']} images evaluated ({s['num_skipped']} skipped, {s['num_nan']} empty) "
          f"under the {args.protocol} protocol; results in {out}", file=sys.stderr)
    return end_processes(state, 0)

