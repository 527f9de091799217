"""Lazy package exports: a package's public names imported from their modules on first use,
so importing a light module of the package (the command line's option tables, the training
arguments) does not import diffusers or transformers."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_exports(package: str, table: dict[str, str]) -> Callable[[str], object]:
    """A module-level ``__getattr__`` for ``package``: ``name`` comes from the module
    ``table[name]`` (absolute, or relative to ``package``), imported when first asked for."""

    def __getattr__(name: str):
        if name in table:
            return getattr(importlib.import_module(table[name], package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
