"""``e2p data check``: check a training dataset's files before a long run.

    e2p data check --dataset hypersim /data/hypersim --split-file filename_list_train_filtered.txt --samples 16

Finds the layout, counts the samples, reads ``--samples`` of them (evenly spaced, the same every
time) and checks value ranges and units, valid pixels, sizes, alignment of image and target,
unit normals facing the camera and alpha in [0, 1] (see ``edit2perceive.data.doctor``). Prints a
table, the reader's statistics and the first problems with their files.
Exit status: 0 when samples could be read (problems are listed), 1 when nothing usable was
found, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edit2perceive.data import READERS


def register(subparsers) -> None:
    p = subparsers.add_parser("data", help="check training data (e2p data check)", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    c = sub.add_parser("check", help="check a dataset's layout and values on a few samples",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("--dataset", required=True, choices=list(READERS), help="training dataset (reader) name")
    c.add_argument("root", type=Path, help="dataset folder in its released layout (docs/data.md)")
    c.add_argument("--split-file", type=Path, default=None,
                   help="published split list (Marigold's or the paper's data_split/*.txt) to check instead of all files")
    c.add_argument("--samples", type=int, default=8, help="samples to read and check (default 8)")
    c.add_argument("--targets", nargs="+", choices=["depth", "normal"], default=None,
                   help="hypersim / interiorverse / sintel: targets to read (default: the reader's)")
    c.add_argument("--layout", choices=["auto", "raw", "marigold"], default=None, help="hypersim: layout")
    c.add_argument("--camera-csv", type=Path, default=None,
                   help="hypersim: metadata_camera_parameters.csv (default: ROOT/metadata_camera_parameters.csv)")
    c.add_argument("--background-dir", type=Path, default=None,
                   help="composition1k / distinctions646 foreground+alpha layout: background images")
    c.add_argument("--coco-dir", type=Path, default=None, help="coco_matting: COCO train2017 image folder")
    c.add_argument("--split", default=None, help="composition1k / distinctions646 / am2k: dataset split to read")
    c.add_argument("--max-problems", type=int, default=10, help="problems to print (default 10)")
    c.set_defaults(func=run_check)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_check(args) -> int:
    from edit2perceive.data.doctor import check_reader, format_reports, open_reader

    if args.samples < 1:
        print("e2p data check: --samples must be >= 1", file=sys.stderr)
        return 2
    try:
        reader = open_reader(args.dataset, args.root, split_file=args.split_file, targets=args.targets,
                             layout=args.layout, camera_csv=args.camera_csv, background_dir=args.background_dir,
                             coco_dir=args.coco_dir, split=args.split)
    except (FileNotFoundError, ValueError) as err:
        print(f"e2p data check: {err}", file=sys.stderr)
        return 1 if isinstance(err, FileNotFoundError) else 2
    report = check_reader(reader, samples=args.samples)
    print(f"e2p data check: {args.dataset} at {args.root}"
          + (f", split file {args.split_file}" if args.split_file else ""))
    print(format_reports([report], max_problems=args.max_problems), end="")
    if not report.usable:
        print("e2p data check: nothing usable found", file=sys.stderr)
        return 1
    return 0
