"""ComfyUI's side of the node protocol, as the tests need it (no ComfyUI runtime installs from
the package registries): input-spec validation as ComfyUI's ``execution.validate_inputs`` does
it (socket types, combo values, INT/FLOAT bounds, required inputs), the call itself
(``getattr(cls(), cls.FUNCTION)(**inputs)``, a tuple back), an API-format prompt executor
(``{"id": {"class_type", "inputs"}}``, links ``[node_id, output_slot]``, run in dependency
order) and stand-ins for the core nodes the example workflows use, with ComfyUI's
signatures: ``LoadImage`` (-> ``IMAGE``, ``MASK``), ``MaskToImage`` and ``SaveImage``
(``images``, ``filename_prefix``; an output node)."""

from __future__ import annotations

import inspect

import torch

from edit2perceive.comfyui import NODE_CLASS_MAPPINGS

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN"}


class LoadImage:
    """ComfyUI's LoadImage: an image from the input folder (here: a tensor registered by name)."""

    images: dict[str, torch.Tensor] = {}

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": (sorted(cls.images), {"image_upload": True})}}

    RETURN_TYPES = ("IMAGE", "MASK")
    FUNCTION = "load_image"
    CATEGORY = "image"

    def load_image(self, image):
        rgb = self.images[image]
        return rgb, torch.zeros(rgb.shape[:3], dtype=torch.float32)


class SaveImage:
    """ComfyUI's SaveImage (an output node): here it keeps what it was given."""

    saved: dict[str, torch.Tensor] = {}

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",), "filename_prefix": ("STRING", {"default": "ComfyUI"})}}

    RETURN_TYPES = ()
    FUNCTION = "save_images"
    OUTPUT_NODE = True
    CATEGORY = "image"

    def save_images(self, images, filename_prefix="ComfyUI"):
        self.saved[filename_prefix] = images
        return {"ui": {"images": []}}


class MaskToImage:
    """ComfyUI's MaskToImage ("Convert Mask to Image"): a MASK as a grey IMAGE."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"mask": ("MASK",)}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "mask_to_image"
    CATEGORY = "mask"

    def mask_to_image(self, mask):
        return (mask.reshape((-1, 1, mask.shape[-2], mask.shape[-1])).movedim(1, -1).expand(-1, -1, -1, 3),)


CORE_NODES = {"LoadImage": LoadImage, "SaveImage": SaveImage, "MaskToImage": MaskToImage}


def node_class(name: str):
    if name in NODE_CLASS_MAPPINGS:
        return NODE_CLASS_MAPPINGS[name]
    if name in CORE_NODES:
        return CORE_NODES[name]
    raise KeyError(f"unknown node type {name!r} (not in NODE_CLASS_MAPPINGS nor a core node)")


def input_specs(cls) -> dict[str, tuple]:
    """All declared inputs ``{name: (type_or_combo, options)}``, required first."""
    types = cls.INPUT_TYPES()
    specs = {}
    for section in ("required", "optional"):
        for name, spec in types.get(section, {}).items():
            specs[name] = (spec[0], spec[1] if len(spec) > 1 else {})
    return specs


def required_names(cls) -> list[str]:
    return list(cls.INPUT_TYPES().get("required", {}))


def is_widget(spec) -> bool:
    kind, options = spec
    return (isinstance(kind, list) or kind in WIDGET_TYPES) and not options.get("forceInput", False)


def validate_node_class(cls) -> None:
    """What ComfyUI needs from a node class to register and run it."""
    types = cls.INPUT_TYPES()
    assert set(types) <= {"required", "optional", "hidden"}, set(types)
    for name, (kind, options) in input_specs(cls).items():
        assert isinstance(options, dict), name
        if isinstance(kind, list):  # combo
            assert kind and all(isinstance(v, str) for v in kind), name
            assert options.get("default", kind[0]) in kind, name
        else:
            assert isinstance(kind, str) and kind == kind.upper(), name
        if kind in ("INT", "FLOAT"):
            assert options["min"] <= options["default"] <= options["max"], name
            if kind == "INT":
                assert all(isinstance(options[k], int) for k in ("min", "max", "default")), name
        if kind == "BOOLEAN":
            assert isinstance(options["default"], bool), name
        if kind == "STRING":
            assert isinstance(options.get("default", ""), str), name
    assert isinstance(cls.RETURN_TYPES, tuple) and all(isinstance(t, str) for t in cls.RETURN_TYPES)
    if hasattr(cls, "RETURN_NAMES"):
        assert len(cls.RETURN_NAMES) == len(cls.RETURN_TYPES)
    assert isinstance(cls.CATEGORY, str) and cls.CATEGORY
    method = getattr(cls, cls.FUNCTION)
    params = inspect.signature(method).parameters
    names = [p for p in params if p != "self"]
    optional = list(types.get("optional", {}))
    assert set(names) == set(required_names(cls)) | set(optional), (cls.__name__, names)
    for name in optional:
        assert params[name].default is not inspect.Parameter.empty, (cls.__name__, name)


def check_value(cls, name: str, value) -> None:
    """A widget value as ComfyUI's validation would accept it."""
    kind, options = input_specs(cls)[name]
    if isinstance(kind, list):
        assert value in kind, f"{cls.__name__}.{name}: {value!r} not in {kind}"
    elif kind == "INT":
        assert isinstance(value, int) and not isinstance(value, bool), (name, value)
        assert options["min"] <= value <= options["max"], (name, value)
    elif kind == "BOOLEAN":
        assert isinstance(value, bool), (name, value)
    elif kind == "STRING":
        assert isinstance(value, str), (name, value)


def call_node(name: str, **inputs):
    """Validate ``inputs`` against the class's ``INPUT_TYPES`` and call it as ComfyUI does."""
    cls = node_class(name)
    missing = set(required_names(cls)) - set(inputs)
    assert not missing, f"{name}: missing required inputs {sorted(missing)}"
    unknown = set(inputs) - set(input_specs(cls))
    assert not unknown, f"{name}: unknown inputs {sorted(unknown)}"
    for key, value in inputs.items():
        if is_widget(input_specs(cls)[key]):
            check_value(cls, key, value)
    obj = cls()
    result = getattr(obj, cls.FUNCTION)(**inputs)
    if isinstance(result, dict):  # output nodes may return {"ui": ..., "result": ...}
        result = result.get("result", ())
    assert isinstance(result, tuple) and len(result) == len(cls.RETURN_TYPES), (name, type(result))
    return result


def run_api_workflow(prompt: dict) -> dict[str, tuple]:
    """Execute an API-format prompt: each node once, after the nodes it links to."""
    outputs: dict[str, tuple] = {}

    def run(node_id: str, stack: tuple = ()) -> tuple:
        if node_id in outputs:
            return outputs[node_id]
        assert node_id not in stack, f"cycle through node {node_id}"
        node = prompt[node_id]
        cls = node_class(node["class_type"])
        inputs = {}
        for key, value in node["inputs"].items():
            if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
                source_id, slot = value
                source = node_class(prompt[source_id]["class_type"])
                expected = input_specs(cls)[key][0]
                assert source.RETURN_TYPES[slot] == expected, (node_id, key, source.RETURN_TYPES[slot], expected)
                inputs[key] = run(source_id, stack + (node_id,))[slot]
            else:
                inputs[key] = value
        outputs[node_id] = call_node(node["class_type"], **inputs)
        return outputs[node_id]

    for node_id in prompt:
        run(node_id)
    return outputs
