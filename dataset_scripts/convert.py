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

    p = add("hypersim", "Hypersim (raw HDF5 or Marigold PNG layout)")
    p.add_argument("--layout", choices=["auto", "raw", "marigold"], default="auto")
    p.add_argument("--camera-csv", default=None,
                   help="Hypersim's metadata_camera_parameters.csv (default: ROOT/metadata_camera_parameters.csv)")
    p.add_argument("--targets", nargs="+", default=["depth", "normal"], choices=["depth", "normal"])
    add("vkitti2", "Virtual KITTI 2 (SceneXX/variant/frames/{rgb,depth}/Camera_K)")
    p = add("interiorverse", "InteriorVerse (dataset_85/<scene>/NNN_{im,normal,depth,mask}.exr)")
    p.add_argument("--targets", nargs="+", default=["normal"], choices=["depth", "normal"])
    p = add("sintel", "MPI Sintel (training/{final,depth,camdata_left} or Marigold normals)")
    p.add_argument("--targets", nargs="+", default=["normal"], choices=["depth", "normal"])
    p.add_argument("--pass-name", choices=["final", "clean"], default="final")
    for name in ("composition1k", "distinctions646"):
        p = add(name, f"{name} foreground + alpha composited on backgrounds")
        p.add_argument("--background-dir", required=True, help="background images (COCO train2014 / VOC2012)")
        p.add_argument("--backgrounds-per-foreground", type=int, default=None)
        p.add_argument("--source-split", default=None, help="dataset split to read (train / test)")
    p = add("am2k", "AM-2k (train/original + train/mask)")
    p.add_argument("--source-split", default=None, help="train / validation")
    p = add("coco_matting", "COCO-Matting (trimap_alpha/ or alpha/ + COCO train2017)")
    p.add_argument("--coco-dir", required=True, help="COCO train2017 image folder")
    p = add("synthetic", "procedural synthetic scenes (no raw data needed)", root=False)
    p.add_argument("--num-samples", type=int, default=1000)
    p.add_argument("--size", type=int, nargs=2, default=[256, 256], metavar=("H", "W"))
    p.add_argument("--seed", type=int, default=0)
    return parser


def _reader(args):
    from edit2perceive import data

    common = {"strict": args.strict, "limit": args.limit, "split_file": getattr(args, "split_file", None)}
    name = args.dataset
    if name == "synthetic":
        n = args.num_samples if args.limit is None else min(args.num_samples, args.limit)
        return data.SyntheticScenes(n, tuple(args.size), args.seed)
    if name == "hypersim":
        return data.HypersimReader(args.root, targets=args.targets, layout=args.layout, camera_csv=args.camera_csv,
                                   **common)
    if name == "vkitti2":
        return data.VirtualKitti2Reader(args.root, **common)
    if name == "interiorverse":
        return data.InteriorVerseReader(args.root, targets=args.targets, **common)
    if name == "sintel":
        return data.SintelReader(args.root, targets=args.targets, pass_name=args.pass_name, **common)
    if name in ("composition1k", "distinctions646"):
        cls = data.Composition1kReader if name == "composition1k" else data.Distinctions646Reader
        kw = {"split": args.source_split} if args.source_split else {}
        return cls(args.root, background_dir=args.background_dir,
                   backgrounds_per_foreground=args.backgrounds_per_foreground, **kw, **common)
    if name == "am2k":
        kw = {"split": args.source_split} if args.source_split else {}
        return data.AM2kReader(args.root, **kw, **common)
    if name == "coco_matting":
        return data.CocoMattingReader(args.root, coco_dir=args.coco_dir, **common)
    raise SystemExit(f"unknown dataset {name}")


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
