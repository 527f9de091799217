"""The fault-injection harness: bad inputs and faults as data, one table of cases per area.

A case is ``(area, description, fn)``; ``fn()`` returns ``(handled, detail)`` or raises
``AssertionError`` (not handled, the message is the detail). "Handled" means what the case
checks: a clear error naming the file and the value, the others continuing, nothing partial
or stale left, bad data skipped, counted and named, no code run from a model folder.

``tests/faults/test_faults.py`` runs every case under pytest (parametrized);
``python -m benchmarks.fault_injection`` runs the same cases and prints the table
"inputs tried / handled" per area. Everything runs offline on tiny random components in a
temporary folder (:class:`Fixtures`).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import shutil
import struct
import sys
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
#: the case tables, one module per area group (imported by :func:`all_cases`)
TABLES = ("cases_predict", "cases_pipeline", "cases_evaluate", "cases_data", "cases_model", "cases_outputs")


@dataclass(frozen=True)
class Case:
    area: str
    description: str
    fn: object
    slow: bool = False

    def run(self) -> tuple[bool, str]:
        try:
            handled, detail = self.fn()
        except AssertionError as err:
            return False, f"not handled: {err}"[:300]
        except Exception as err:  # noqa: BLE001 - an unhandled crash is a finding
            return False, f"CRASH {type(err).__name__}: {str(err)[:250]}"
        return bool(handled), str(detail)


CASES: list[Case] = []


def case(area: str, description: str, slow: bool = False):
    """Register ``fn`` as one case of ``area``."""
    def register(fn):
        CASES.append(Case(area, description, fn, slow))
        return fn
    return register


def all_cases() -> list[Case]:
    """Every case of every table, in table order."""
    if str(Path(__file__).parent) not in sys.path:
        sys.path.insert(0, str(Path(__file__).parent))
    for name in TABLES:
        importlib.import_module(name)
    return list(CASES)


# -- fixtures ------------------------------------------------------------------------------
class Fixtures:
    """Tiny saved models, input images and fresh work folders under one root."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._models: dict = {}

    def model(self, task: str, nan: bool = False) -> Path:
        key = (task, nan)
        if key not in self._models:
            import torch

            from edit2perceive import Edit2PerceivePipeline
            from edit2perceive.testing import tiny_kontext_components

            pipe = Edit2PerceivePipeline(**tiny_kontext_components(seed=0), task=task)
            if nan:
                with torch.no_grad():
                    pipe.transformer.proj_out.weight.fill_(float("nan"))
            path = self.root / "models" / f"{task}{'-nan' if nan else ''}"
            pipe.save_pretrained(path)
            self._models[key] = path
        return self._models[key]

    def model_copy(self, name: str, task: str = "depth") -> Path:
        """A private copy of the tiny ``task`` model to damage."""
        path = self.root / "models" / name
        shutil.rmtree(path, ignore_errors=True)
        shutil.copytree(self.model(task), path)
        return path

    def image(self, rel: str, h: int = 32, w: int = 48, seed: int = 0, **save) -> Path:
        path = self.root / "inputs" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)).save(path, **save)
        return path

    def fresh(self, name: str) -> Path:
        path = self.root / "work" / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path


class _Current:
    """``FX``: the runner's :class:`Fixtures` (set by :func:`use`), importable before it exists."""

    fixtures: Fixtures | None = None

    def __getattr__(self, name):
        if _Current.fixtures is None:
            raise RuntimeError("call harness.use(folder) before running a case")
        return getattr(_Current.fixtures, name)


FX = _Current()


def use(root: Path) -> Fixtures:
    """Run the cases in ``root`` (a temporary folder)."""
    _Current.fixtures = Fixtures(root)
    return _Current.fixtures


def png_declaring(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header declares ``width x height`` (a decompression bomb)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (16, 16)).save(path, format="PNG")
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


def cli(*argv, stdout: bool = False) -> tuple[int, str]:
    """Run ``e2p`` in this process: (exit status, stderr) (stderr + stdout with ``stdout``)."""
    from edit2perceive.cli import main

    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 2
    return code, err.getvalue() + (out.getvalue() if stdout else "")


def predict(task: str, *inputs, out: Path, extra=(), model: Path | None = None) -> tuple[int, str]:
    return cli("predict", "--task", task, "--model", model or FX.model(task), *inputs, "--output-dir", out,
               "--processing-resolution", "32", *extra)


def visible_files(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*") if p.is_file() and not any(s.startswith(".") for s in p.relative_to(out).parts))


def sets_whole(out: Path, files=("depth.png", "depth_16bit.png", "depth.npy", "depth_panel.png")) -> bool:
    folders = {p.parent for p in visible_files(out)}
    return all(sorted(f.name for f in d.iterdir() if not f.name.startswith(".")) == sorted(files) for d in folders)


def last_line(err: str) -> str:
    return (err.strip().splitlines() or ["(no message)"])[-1][:160]


def expect_failure(code, err, name, *words) -> tuple[bool, str]:
    line = next((ln for ln in err.splitlines() if "FAILED" in ln and name in ln), "")
    ok = code == 1 and line and all(w in line for w in words)
    return bool(ok), (line.strip() or last_line(err))[:160]


def expect_refused(code, err, *words) -> tuple[bool, str]:
    ok = code == 2 and all(w in err for w in words)
    return ok, last_line(err)


def expect_raises(fn, exc, *words) -> tuple[bool, str]:
    try:
        fn()
    except exc as err:
        return all(w in str(err) for w in words), f"{type(err).__name__}: {str(err)[:150]}"
    except Exception as err:  # noqa: BLE001
        return False, f"wrong error {type(err).__name__}: {str(err)[:150]}"
    return False, "no error"


def tests_path(sub: str) -> None:
    """Make a tests/ sub-folder's fixture modules importable."""
    path = str(TESTS / sub)
    if path not in sys.path:
        sys.path.insert(0, path)
