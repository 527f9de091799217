"""The ``e2p`` command line.

Each sub-command lives in its own module ``edit2perceive.commands.<name>`` exposing
``register(subparsers)``; the module adds its parser and sets ``func`` (called with the
parsed args, returns an exit code). Modules load lazily so ``e2p --help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import edit2perceive.commands as _commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="e2p", description="Edit2Perceive: dense perception with FLUX.1 Kontext.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(_commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        importlib.import_module(f"edit2perceive.commands.{info.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
