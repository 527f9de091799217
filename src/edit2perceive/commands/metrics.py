"""``e2p metrics``: the project's ``evaluate`` modules and result tables.

  e2p metrics install              seed evaluate's module cache: evaluate.load("e2p/absrel") works offline
  e2p metrics push --namespace NS  publish the modules as Hub Spaces NS/<name> (--dry-run DIR: only write folders)
  e2p metrics table SUMMARY.json…  one Markdown table in the paper's layout from e2p evaluate summaries
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("metrics", help="install / publish the evaluate metric modules; result tables",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="metrics_command", metavar="ACTION")
    inst = sub.add_parser("install", help="make evaluate.load('e2p/<name>') work offline")
    inst.add_argument("--source", type=Path, default=None, help="the metrics/ folder (default: this repository's)")
    inst.add_argument("--namespace", default="e2p", help="namespace of the names (default: e2p)")
    inst.add_argument("--modules-cache", type=Path, default=None,
                      help="evaluate's module cache (default: $HF_MODULES_CACHE or $HF_HOME/modules)")
    inst.set_defaults(func=run_install)
    push = sub.add_parser("push", help="publish each module as a Hub Space <namespace>/<name>")
    push.add_argument("--namespace", required=True, help="Hub user or organization")
    push.add_argument("--source", type=Path, default=None)
    push.add_argument("--dry-run", type=Path, default=None, metavar="DIR",
                      help="write the Space folders into DIR and upload nothing")
    push.add_argument("--private", action="store_true")
    push.set_defaults(func=run_push)
    table = sub.add_parser("table", help="Markdown table from summary.json files (one task)")
    table.add_argument("summaries", nargs="+", type=Path, metavar="SUMMARY")
    table.set_defaults(func=run_table)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_install(args) -> int:
    from edit2perceive.evaluation.metric_modules import install_metric_modules

    try:
        paths = install_metric_modules(source=args.source, namespace=args.namespace, modules_cache=args.modules_cache)
    except FileNotFoundError as err:
        print(f"e2p metrics install: {err}", file=sys.stderr)
        return 2
    for path in paths:
        name = path.stem
        print(f"installed {args.namespace}/{name} -> {path}")
    return 0


def run_push(args) -> int:
    from edit2perceive.evaluation.metric_modules import push_metric_modules

    try:
        done = push_metric_modules(args.namespace, source=args.source, dry_run_dir=args.dry_run, private=args.private)
    except FileNotFoundError as err:
        print(f"e2p metrics push: {err}", file=sys.stderr)
        return 2
    verb = "wrote" if args.dry_run is not None else "pushed"
    for item in done:
        print(f"{verb} {item}")
    return 0


def run_table(args) -> int:
    from edit2perceive.evaluation.report import paper_table

    summaries = []
    for p in args.summaries:
        try:
            summaries.append(json.loads(p.read_text(encoding="utf-8")))
        except (OSError, ValueError) as err:  # UnicodeDecodeError is a ValueError
            print(f"e2p metrics table: {p}: not a readable summary.json ({err})", file=sys.stderr)
            return 2
    try:
        print(paper_table(summaries), end="")
    except (ValueError, KeyError) as err:
        print(f"e2p metrics table: {err}", file=sys.stderr)
        return 2
    return 0
