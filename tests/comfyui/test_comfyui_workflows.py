"""The example workflows (examples/comfyui/) against NODE_CLASS_MAPPINGS, run headless, and
the custom_nodes entry folder loaded the way ComfyUI loads a node pack."""

import copy
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from comfy_harness import (
    LoadImage,
    SaveImage,
    check_value,
    input_specs,
    is_widget,
    node_class,
    run_api_workflow,
)

from edit2perceive import Edit2PerceivePipeline
from edit2perceive.comfyui import NODE_CLASS_MAPPINGS

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "comfyui"
#: example (API file, UI file) -> our nodes in it
WORKFLOWS = {
    ("depth_normals_api.json", "depth_normals_workflow.json"): {
        "Edit2PerceiveModelLoader", "Edit2PerceiveDepth", "Edit2PerceiveNormals"},
    ("matting_api.json", "matting_workflow.json"): {"Edit2PerceiveModelLoader", "Edit2PerceiveMatting"},
}


def load(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text())


def test_every_example_is_listed():
    assert {p.name for p in EXAMPLES.glob("*.json")} == {name for pair in WORKFLOWS for name in pair}


@pytest.mark.parametrize("files", list(WORKFLOWS), ids=lambda f: f[0])
def test_api_workflow_names_and_links(files):
    API = load(files[0])
    ours = {node["class_type"] for node in API.values()} & set(NODE_CLASS_MAPPINGS)
    assert ours == WORKFLOWS[files]
    for node_id, node in API.items():
        cls = node_class(node["class_type"])  # ours or a ComfyUI core node
        specs = input_specs(cls)
        required = cls.INPUT_TYPES()["required"]
        assert set(required) <= set(node["inputs"]), (node_id, set(required) - set(node["inputs"]))
        for key, value in node["inputs"].items():
            assert key in specs, (node_id, key)
            if isinstance(value, list):  # a link [source id, output slot]
                source = node_class(API[value[0]]["class_type"])
                assert source.RETURN_TYPES[value[1]] == specs[key][0], (node_id, key)
            elif cls in NODE_CLASS_MAPPINGS.values():
                check_value(cls, key, value)
    for node in API.values():  # every saved image comes from one of our predictors
        if node["class_type"] == "SaveImage":
            source = API[node["inputs"]["images"][0]]
            source = API[source["inputs"]["mask"][0]] if source["class_type"] == "MaskToImage" else source
            assert source["class_type"] in WORKFLOWS[files] - {"Edit2PerceiveModelLoader"}


def ui_to_api(ui: dict) -> dict:
    """The API prompt a UI-format workflow stands for, as ComfyUI's frontend builds it: widget
    values in INPUT_TYPES order (a control-after-generate value after its number, where the
    input has one: ``control_after_generate``, or an INT named seed / noise_seed unless that
    option is False), links from the links table."""
    links = {link[0]: link for link in ui["links"]}
    prompt = {}
    for node in ui["nodes"]:
        cls = node_class(node["type"])
        inputs, values = {}, list(node["widgets_values"])
        for name, spec in input_specs(cls).items():
            if is_widget(spec) and not any(i["name"] == name and i.get("link") is not None for i in node["inputs"]):
                if node["type"] == "LoadImage":
                    inputs[name] = values.pop(0)
                    values.pop(0)  # the upload button's value
                    continue
                inputs[name] = values.pop(0)
                control = spec[1].get("control_after_generate")
                if control or (control is None and spec[0] == "INT" and name in ("seed", "noise_seed")):
                    assert values.pop(0) in ("fixed", "increment", "decrement", "randomize")
        assert not values, (node["id"], values)
        for slot in node["inputs"]:
            if slot.get("link") is not None:
                _, origin, origin_slot, target, target_slot, kind = links[slot["link"]]
                assert target == node["id"] and node["inputs"][target_slot] is slot
                assert kind == slot["type"] == input_specs(cls)[slot["name"]][0]
                inputs[slot["name"]] = [str(origin), origin_slot]
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return prompt


@pytest.mark.parametrize("files", list(WORKFLOWS), ids=lambda f: f[1])
def test_ui_workflow_is_the_api_workflow(files):
    API, UI = load(files[0]), load(files[1])
    ids = {node["id"] for node in UI["nodes"]}
    assert UI["last_node_id"] == max(ids) and UI["last_link_id"] == max(link[0] for link in UI["links"])
    for link_id, origin, origin_slot, target, target_slot, kind in UI["links"]:
        source = next(n for n in UI["nodes"] if n["id"] == origin)
        assert node_class(source["type"]).RETURN_TYPES[origin_slot] == kind
        assert link_id in source["outputs"][origin_slot]["links"]
        sink = next(n for n in UI["nodes"] if n["id"] == target)
        assert sink["inputs"][target_slot]["link"] == link_id and sink["inputs"][target_slot]["type"] == kind
    for node in UI["nodes"]:
        if node["type"] in NODE_CLASS_MAPPINGS:
            cls = NODE_CLASS_MAPPINGS[node["type"]]
            assert [o["name"] for o in node["outputs"]] == list(cls.RETURN_NAMES)
            assert [o["type"] for o in node["outputs"]] == list(cls.RETURN_TYPES)
    assert ui_to_api(UI) == {key: {"class_type": n["class_type"], "inputs": n["inputs"]} for key, n in API.items()}


def run_example(name: str, model_dirs, image, monkeypatch) -> dict:
    """An API workflow as ComfyUI would queue it, with the tiny saved models in place of the
    released checkpoints (and a small processing resolution): what Save Image got."""
    monkeypatch.setattr(LoadImage, "images", {"example.png": image})
    monkeypatch.setattr(SaveImage, "saved", {})
    prompt = copy.deepcopy(load(name))
    for node in prompt.values():
        if node["class_type"] == "Edit2PerceiveModelLoader":
            node["inputs"].update(model=str(model_dirs / node["inputs"]["task"]), base_model="", device="cpu",
                                  dtype="float32")
        if "processing_resolution" in node["inputs"]:
            node["inputs"]["processing_resolution"] = 32
    run_api_workflow(prompt)
    return dict(SaveImage.saved)


def example_image() -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(0).integers(0, 256, (1, 36, 52, 3)).astype(np.float32) / 255)


def pipe_input(image: torch.Tensor) -> torch.Tensor:
    return image.permute(0, 3, 1, 2).contiguous()


def test_depth_normals_example_runs_headless(model_dirs, monkeypatch):
    image = example_image()
    saved = run_example("depth_normals_api.json", model_dirs, image, monkeypatch)
    depth, normals = saved["edit2perceive/depth"], saved["edit2perceive/normals"]
    for out in (depth, normals):
        assert out.shape == (1, 36, 52, 3) and out.dtype == torch.float32
        assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0
    pipe = Edit2PerceivePipeline.from_pretrained(model_dirs / "depth")
    ref = pipe(pipe_input(image), processing_resolution=32).prediction[0]
    torch.testing.assert_close(depth[0, ..., 0], 1.0 - torch.from_numpy(ref), rtol=0, atol=1e-5)


def test_matting_example_runs_headless(model_dirs, monkeypatch):
    image = example_image()
    saved = run_example("matting_api.json", model_dirs, image, monkeypatch)
    alpha, cutout = saved["edit2perceive/alpha"], saved["edit2perceive/cutout"]
    assert alpha.shape == (1, 36, 52, 3) and cutout.shape == (1, 36, 52, 4)
    pipe = Edit2PerceivePipeline.from_pretrained(model_dirs / "matting")
    # the example's click is the image centre given as fractions: (0.5 * 52, 0.5 * 36)
    ref = pipe(pipe_input(image), processing_resolution=32, points=[[(26.0, 18.0)]]).prediction[0]
    torch.testing.assert_close(alpha[0, ..., 0], torch.from_numpy(ref), rtol=0, atol=1e-5)
    torch.testing.assert_close(cutout[0, ..., 3], torch.from_numpy(ref), rtol=0, atol=1e-5)


def test_custom_nodes_entry_folder_loads_like_comfyui(monkeypatch):
    """ComfyUI imports ``custom_nodes/<name>/__init__.py`` as module ``<name>`` and reads its
    mappings; without the library installed, the entry folder falls back to the checkout's src/."""
    def load(name):
        spec = importlib.util.spec_from_file_location(name, ROOT / "comfyui" / "__init__.py",
                                                      submodule_search_locations=[str(ROOT / "comfyui")])
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, name, module)
        spec.loader.exec_module(module)
        return module

    assert load("edit2perceive_nodes").NODE_CLASS_MAPPINGS is NODE_CLASS_MAPPINGS
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "edit2perceive" else real_find_spec(name, *a))
    monkeypatch.setattr(sys, "path", list(sys.path))
    module = load("edit2perceive_nodes_checkout")
    assert Path(sys.path[0]) == ROOT / "src"
    assert set(module.NODE_DISPLAY_NAME_MAPPINGS) == set(NODE_CLASS_MAPPINGS)


def test_registry_metadata():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    meta = tomllib.loads((ROOT / "comfyui" / "pyproject.toml").read_text())
    assert set(meta["tool"]["comfy"]) >= {"PublisherId", "DisplayName", "Icon"}
    name = meta["project"]["name"]
    assert "comfyui" not in name.lower() and name[0].isalpha()  # the registry's node-id rules
    assert len(meta["project"]["version"].split(".")) == 3
