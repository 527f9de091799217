"""Every list comes from one registry: task names (``tasks.TASKS``), training datasets
(``data.READERS``), benchmarks (``evaluation.DATASETS`` / ``BENCHMARK_READERS``), the base
model id (``core.base_model.DEFAULT_BASE_MODEL``); "noise" names one thing per place."""

import ast
import importlib.util
from pathlib import Path

import pytest

import edit2perceive.evaluation as evaluation
from edit2perceive.cli import build_parser
from edit2perceive.core.base_model import DEFAULT_BASE_MODEL
from edit2perceive.data import READERS
from edit2perceive.tasks import TASKS

ROOT = Path(__file__).resolve().parents[1]
CODE = [p for d in ("src", "examples", "benchmarks", "dataset_scripts") for p in sorted((ROOT / d).rglob("*.py"))]


def _convert_script():
    spec = importlib.util.spec_from_file_location("e2p_convert_script", ROOT / "dataset_scripts" / "convert.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _subparser(parser, *names):
    for name in names:
        parser = next(a for a in parser._actions if a.dest in ("command", "data_command", "dataset")).choices[name]
    return parser


def _choices(parser, dest):
    return list(next(a for a in parser._actions if a.dest == dest).choices)


def _string_constants(tree):
    """String constants of the code, leaving out docstrings."""
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [n for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in docstrings]


def test_no_second_list_of_the_task_names():
    """A tuple / list / set literal naming exactly the tasks repeats ``TASKS``; per-task tables
    (dicts keyed by task) are allowed."""
    names = set(TASKS)
    found = []
    for path in CODE:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and node.elts and all(
                    isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
                if {e.value for e in node.elts} == names:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, found


def test_command_line_task_and_dataset_choices_come_from_the_registries():
    parser = build_parser()
    for command in ("predict", "evaluate", "convert"):
        assert _choices(_subparser(parser, command), "task") == list(TASKS), command
    assert _choices(_subparser(parser, "data", "check"), "dataset") == list(READERS)


def test_convert_script_has_one_sub_command_per_reader():
    script = _convert_script()
    parser = script._build_parser()
    commands = next(a for a in parser._actions if a.dest == "dataset").choices
    assert list(commands) == [*READERS, "synthetic"]
    assert set(script.READER_OPTIONS) <= set(READERS)


def test_convert_script_passes_each_option_to_its_reader(tmp_path):
    script = _convert_script()
    parser = script._build_parser()
    root, backgrounds = tmp_path / "root", tmp_path / "bg"
    root.mkdir()
    backgrounds.mkdir()
    out = ["--out", str(tmp_path / "out")]
    reader = script._reader(parser.parse_args(["hypersim", str(root), *out, "--targets", "depth", "--layout", "raw",
                                               "--limit", "3", "--strict"]))
    assert type(reader) is READERS["hypersim"]
    assert (reader.targets, reader.layout, reader.limit, reader.strict) == (("depth",), "raw", 3, True)
    assert script._reader(parser.parse_args(["hypersim", str(root), *out])).targets == ("depth", "normal")
    reader = script._reader(parser.parse_args(["sintel", str(root), *out, "--pass-name", "clean"]))
    assert (reader.targets, reader.pass_name) == (("normal",), "clean")
    reader = script._reader(parser.parse_args(["composition1k", str(root), *out, "--background-dir", str(backgrounds),
                                               "--backgrounds-per-foreground", "2", "--source-split", "test"]))
    assert (reader.split, reader.background_dir, reader.backgrounds_per_foreground) == ("test", backgrounds, 2)
    assert script._reader(parser.parse_args(["am2k", str(root), *out, "--source-split", "validation"])).split == \
        "validation"
    assert script._reader(parser.parse_args(["am2k", str(root), *out])).split == "train"
    assert script._reader(parser.parse_args(["synthetic", *out, "--num-samples", "5", "--limit", "2"])).num_samples == 2


def test_benchmarks_one_registry():
    assert set(evaluation.DATASETS) == set(TASKS)
    assert set(evaluation.BENCHMARK_READERS) == {(t, d) for t, names in evaluation.DATASETS.items() for d in names}
    assert not hasattr(evaluation, "READERS")  # one name, one registry: data.READERS are the training readers


@pytest.mark.parametrize("table", ["edit2perceive.hub:PIPELINE_TAGS", "edit2perceive.hub:TASK_TAGS",
                                   "edit2perceive.hub:TRAINING_DATASETS",
                                   "edit2perceive.evaluation.runner:METRIC_NAMES"])
def test_per_task_tables_cover_exactly_the_tasks(table):
    module, name = table.split(":")
    assert set(getattr(importlib.import_module(module), name)) == set(TASKS)


def test_the_base_model_id_is_written_once():
    found = [f"{p.relative_to(ROOT)}:{n.lineno}" for p in CODE for n in _string_constants(ast.parse(p.read_text()))
             if n.value == DEFAULT_BASE_MODEL]
    assert found == ["src/edit2perceive/core/base_model.py:17"]


def test_noise_names_one_thing_per_place():
    import edit2perceive.outputs.video as video

    assert video.FRAME_NOISE_MODES == ("fixed", "fresh") and not hasattr(video, "NOISE_MODES")
    predict = _subparser(build_parser(), "predict")
    assert _choices(predict, "frame_noise") == ["fixed", "fresh"]
    assert [a.option_strings for a in predict._actions if a.dest == "frame_noise"] == [["--frame-noise"], ["--noise"]]
