"""The ``e2p`` command line.

Each sub-command lives in its own module ``edit2perceive.commands.<name>`` exposing
``register(subparsers)``; the module adds its parser and sets ``func`` (called with the
parsed args, returns an exit code). Modules load lazily so ``e2p --help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import re
import sys

import edit2perceive.commands as _commands

# bitsandbytes warns on import, on CPUs with AVX512-BF16, that an optional CPU 4-bit kernel
# package is missing; quantized models run on CUDA only here, so the line is noise on every run
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="e2p", description="Edit2Perceive: dense perception with FLUX.1 Kontext.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(_commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        importlib.import_module(f"edit2perceive.commands.{info.name}").register(sub)
    return parser


#: a minus sign, then numbers joined by commas (the point ``-5,10``): argparse takes such a word
#: for an option (it knows plain negative numbers only), so :func:`parse_args` marks it a value
NEGATIVE_LIST = re.compile(r"^-[\d.]*,[-+\d.eE,]*$")


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """``parser.parse_args`` where a comma-separated list starting with a minus sign is a value:
    it is given with a leading space, which argparse never reads as an option (the ``type=``
    parsers strip it)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args([" " + a if NEGATIVE_LIST.match(a) else a for a in argv])
    finish = getattr(args, "finish_parsing", None)  # a command's own step after argparse
    if finish is not None:
        finish(args)
    return args


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parse_args(parser, argv)
    except argparse.ArgumentTypeError as err:  # from a command's finish_parsing: a usage error
        print(err, file=sys.stderr)
        return 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
