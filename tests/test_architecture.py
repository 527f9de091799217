"""docs/architecture.md matches the code: imports run only downward, and never in a circle.

Every import in ``src/edit2perceive`` (module level or inside a function) is read with ``ast``
and resolved to the module it loads; the layer of each package comes from the table in
docs/architecture.md.
"""

import ast
import re
from pathlib import Path

import pytest

import edit2perceive

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "edit2perceive"
DOC = ROOT / "docs" / "architecture.md"


def layers_from_doc(text: str) -> dict[str, int]:
    """``{package: layer}`` from the rows ``| N | `package` | ... |`` of the table."""
    return {pkg: int(n) for n, pkg in re.findall(r"^\| (\d+) \| `(\w+)` \|", text, re.M)}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str, name: str, modules: set[str], *, is_package: bool = False) -> set[str]:
    """The package modules that module ``name`` (its ``source``) imports, anywhere in the file.
    ``from a import b`` resolves to ``a.b`` when that is a module, else to ``a``; names the
    package root loads lazily resolve to the module that holds them."""
    package = name if is_package else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "edit2perceive")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source.split(".")[0] != "edit2perceive":
                continue
            for alias in node.names:
                full = f"{source}.{alias.name}"
                if source == "edit2perceive" and alias.name in edit2perceive._LAZY:
                    found.add(edit2perceive._LAZY[alias.name])
                else:
                    found.add(full if full in modules else source)
    return found


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "edit2perceive"


MODULES = {module_name(p): p for p in SRC.rglob("*.py")}
GRAPH = {m: imports_of(p.read_text(), m, set(MODULES), is_package=p.name == "__init__.py")
         for m, p in MODULES.items()}
LAYERS = layers_from_doc(DOC.read_text())


def test_every_package_has_a_layer_in_the_doc():
    packages = {package_of(m) for m in MODULES} - {"edit2perceive"}
    assert packages == set(LAYERS), (
        f"docs/architecture.md lists {sorted(LAYERS)}, src/edit2perceive holds {sorted(packages)}")


def test_every_import_resolves_to_a_module_that_exists():
    missing = {(m, t) for m, targets in GRAPH.items() for t in targets if t not in MODULES}
    assert not missing, sorted(missing)


def test_imports_only_run_downward():
    upward = []
    for module, targets in sorted(GRAPH.items()):
        here = package_of(module)
        for target in sorted(targets):
            there = package_of(target)
            if here == there or here == "edit2perceive":
                continue
            if there == "edit2perceive":  # the package root: only __version__ is taken from it
                continue
            if LAYERS[there] >= LAYERS[here]:
                upward.append(f"{module} (layer {LAYERS[here]}) imports {target} (layer {LAYERS[there]})")
    assert not upward, "\n".join(upward)


def test_only_version_is_taken_from_the_package_root():
    offenders = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and module != "edit2perceive":
                absolute = node.level == 0 and node.module == "edit2perceive"
                relative = node.level == len(module.split(".")) - (path.name != "__init__.py") and not node.module
                if absolute or relative:
                    offenders += [f"{module}: {a.name}" for a in node.names if a.name != "__version__"]
    assert not offenders, offenders


def test_old_module_paths_are_not_used_inside_the_package():
    old = [(m, t) for m, targets in GRAPH.items() for t in targets if t in edit2perceive.MOVED_MODULES]
    assert not old, old


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A circle of imports as ``[a, b, ..., a]``, or ``None`` (depth-first search)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycles_among_modules():
    assert find_cycle(GRAPH) is None, " -> ".join(find_cycle(GRAPH))


@pytest.mark.parametrize(("graph", "expected"), [
    ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
    ({"x": {"y"}, "y": {"y"}}, ["y", "y"]),
])
def test_cycle_finder(graph, expected):
    assert find_cycle(graph) == expected


def test_the_checker_sees_function_level_and_relative_imports():
    source = ("import numpy\nfrom .. import Edit2PerceivePipeline, __version__\n"
              "def f():\n    from ..tasks import get_task\n    from .video import predict_frames\n")
    found = imports_of(source, "edit2perceive.outputs.probe", set(MODULES))
    assert found == {"edit2perceive.pipelines.pipeline", "edit2perceive", "edit2perceive.tasks",
                     "edit2perceive.outputs.video"}
