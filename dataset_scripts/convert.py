#!/usr/bin/env python
"""Convert a raw dataset release to Parquet shards for ``load_dataset(out, streaming=True)``.

    python dataset_scripts/convert.py hypersim /data/hypersim --out /data/shards/hypersim
    python dataset_scripts/convert.py composition1k /data/Combined_Dataset --background-dir /data/coco/train2014 --out ...
    python dataset_scripts/convert.py synthetic --num-samples 1000 --size 256 256 --out /data/shards/synthetic
    ... --push-to-hub user/name [--dry-run]

Resumable (rerun the same command), verified (row counts read back), tqdm progress bar.
"""

from __future__ import annotations

import argparse
import json
import sys


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="dataset", required=True)

    def add(name, help_text, root=True):
        p = sub.add_parser(name, help=help_text)
        if root:
            p.add_argument("root", help="dataset root in its released layout")
        p.add_argument("--out", required=True, help="output folder (created; rerun to resume)")
        p.add_argument("--split", default="train", help="split name in the shard file names")
        p.add_argument("--shard-size", type=int, default=500, help="examples per Parquet shard")
        p.add_argument("--limit", type=int, default=None, help="convert only the first N records")
        if root:
            p.add_argument("--split-file", default=None,
                           help="published split list (Marigold's / the paper's data_split/*.txt): convert only its samples")
        p.add_argument("--strict", action="store_true", help="stop at the first bad sample instead of skipping it")
        p.add_argument("--depth-scale", type=float, default=None, help="metres per 16-bit depth unit (default per source)")
        p.add_argument("--push-to-hub", metavar="REPO", default=None, help="upload the shards as dataset repo REPO")
        p.add_argument("--dry-run", action="store_true", help="with --push-to-hub: list what would be uploaded")
        p.add_argument("--public", action="store_true", help="with --push-to-hub: create a public repo")
        p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
        return p

    from edit2perceive.data import READERS

    for name, reader in READERS.items():  # one sub-command per training reader
        p = add(name, reader.__doc__.split("\n")[0].split(". ")[0])
        READER_OPTIONS.get(name, lambda p: None)(p)
    p = add("synthetic", "procedural synthetic scenes (no raw data needed)", root=False)
    p.add_argument("--num-samples", type=int, default=1000)
    p.add_argument("--size", type=int, nargs=2, default=[256, 256], metavar=("H", "W"))
    p.add_argument("--seed", type=int, default=0)
    return parser


def _targets(p) -> None:
    p.add_argument("--targets", nargs="+", default=None, choices=["depth", "normal"],
                   help="targets to read (default: the reader's)")


def _hypersim(p) -> None:
    p.add_argument("--layout", choices=["auto", "raw", "marigold"], default="auto")
    p.add_argument("--camera-csv", default=None,
                   help="Hypersim's metadata_camera_parameters.csv (default: ROOT/metadata_camera_parameters.csv)")
    _targets(p)


def _sintel(p) -> None:
    _targets(p)
    p.add_argument("--pass-name", choices=["final", "clean"], default="final")


def _source_split(p) -> None:
    p.add_argument("--source-split", default=None, help="dataset split to read (default: the reader's train split)")


def _composited(p) -> None:
    p.add_argument("--background-dir", required=True, help="background images (COCO train2014 / VOC2012)")
    p.add_argument("--backgrounds-per-foreground", type=int, default=None)
    _source_split(p)


def _coco(p) -> None:
    p.add_argument("--coco-dir", required=True, help="COCO train2017 image folder")


#: the options of the readers that take more than the common ones (keys: edit2perceive.data.READERS)
READER_OPTIONS = {"hypersim": _hypersim, "interiorverse": _targets, "sintel": _sintel,
                  "composition1k": _composited, "distinctions646": _composited, "am2k": _source_split,
                  "coco_matting": _coco}


def _reader(args):
    from edit2perceive import data
    from edit2perceive.data.doctor import open_reader

    if args.dataset == "synthetic":
        n = args.num_samples if args.limit is None else min(args.num_samples, args.limit)
        return data.SyntheticScenes(n, tuple(args.size), args.seed)
    options = {k: getattr(args, k, None) for k in ("targets", "layout", "camera_csv", "pass_name", "background_dir",
                                                   "backgrounds_per_foreground", "coco_dir")}
    return open_reader(args.dataset, args.root, strict=args.strict, limit=args.limit, split_file=args.split_file,
                       split=getattr(args, "source_split", None), **options)


def main(argv=None) -> int:
    args = _build_parser().parse_args(argv)
    if args.dry_run and not args.push_to_hub:
        raise SystemExit("--dry-run only applies to --push-to-hub")
    from edit2perceive.data.convert import convert, push_to_hub

    reader = _reader(args)
    summary = convert(reader, args.out, split=args.split, shard_size=args.shard_size, depth_scale=args.depth_scale,
                      progress=not args.no_progress)
    if summary["skipped"]:
        print(f"skipped {summary['skipped']} bad samples (see the warnings above)", file=sys.stderr)
    if hasattr(reader, "stats"):
        print(reader.stats.report(reader.name), file=sys.stderr)
    print(json.dumps(summary))
    if args.push_to_hub:
        files = push_to_hub(args.out, args.push_to_hub, dry_run=args.dry_run, private=not args.public)
        verb = "would upload" if args.dry_run else "uploaded"
        print(f"{verb} {len(files)} files to https://huggingface.co/datasets/{args.push_to_hub}:")
        for f in files:
            print(f"  {f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
