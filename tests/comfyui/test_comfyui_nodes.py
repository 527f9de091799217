"""The ComfyUI nodes called as ComfyUI calls them, against the pipeline's own outputs."""

import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from comfy_harness import call_node, validate_node_class

from edit2perceive import Edit2PerceivePipeline
from edit2perceive.comfyui import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS, convert
from edit2perceive.comfyui.nodes import TASK_NODES
from edit2perceive.outputs.visualize import normals_to_rgb
from edit2perceive.tasks import TASKS

sys.path.insert(0, str(Path(__file__).parents[1]))
from reference_fixtures import diffsynth_state_dict, write  # noqa: E402

H, W = 40, 56  # not square: a transposed map fails on shape, a mirrored one on values
RES = 32
PREDICT = dict(steps=1, processing_resolution=RES, ensemble_size=1, seed=0, output_uncertainty=False)


def comfy_image(batch=1, seed=0):
    """A ComfyUI IMAGE: B x H x W x 3 float32 in [0, 1] (8-bit levels, as LoadImage gives)."""
    levels = np.random.default_rng(seed).integers(0, 256, (batch, H, W, 3))
    return torch.from_numpy(levels.astype(np.float32) / 255.0)


def pipe_input(image):
    # the pipeline's B x 3 x H x W, in the standard memory layout (a channels-last layout takes other
    # convolution kernels, which differ in the last float32 bits)
    return image.permute(0, 3, 1, 2).contiguous()


def test_every_node_class_is_valid_for_comfyui():
    assert set(NODE_DISPLAY_NAME_MAPPINGS) == set(NODE_CLASS_MAPPINGS)
    for cls in NODE_CLASS_MAPPINGS.values():
        validate_node_class(cls)
    assert NODE_CLASS_MAPPINGS["Edit2PerceiveModelLoader"].RETURN_TYPES == ("E2P_PIPE",)
    assert set(TASK_NODES) == set(TASKS) and set(TASK_NODES.values()) <= set(NODE_CLASS_MAPPINGS)  # a node per task


def test_depth_node_matches_the_pipeline_near_is_white(pipes):
    image = comfy_image(batch=2)
    depth, raw, unc = call_node("Edit2PerceiveDepth", e2p_pipe=pipes["depth"], image=image, **PREDICT)
    for i in range(2):  # each batch item equals its own pipeline call
        ref = torch.from_numpy(pipes["depth"](pipe_input(image[i:i + 1]), processing_resolution=RES).prediction[0])
        torch.testing.assert_close(raw[i, ..., 0], ref, rtol=0, atol=1e-6)
        torch.testing.assert_close(depth[i, ..., 0], 1.0 - ref, rtol=0, atol=1e-6)  # near (low depth) = white
    for out in (depth, raw, unc):
        assert out.shape == (2, H, W, 3) and out.dtype == torch.float32 and out.device.type == "cpu"
        assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0
    assert torch.equal(depth[..., 0], depth[..., 1]) and torch.equal(depth[..., 0], depth[..., 2])  # grey
    assert float(unc.abs().max()) == 0.0  # not asked for: black


def test_depth_disparity_encoding_is_already_near_high():
    pred = torch.tensor([[[0.2, 0.9]]])
    assert convert.depth_to_image(pred, near_is_high=True)[0, 0, :, 0].tolist() == pytest.approx([0.2, 0.9])
    assert convert.depth_to_image(pred)[0, 0, :, 0].tolist() == pytest.approx([0.8, 0.1])


def test_seed_zero_is_the_fixed_noise_and_other_seeds_a_generator(pipes):
    image = comfy_image()
    _, raw, _ = call_node("Edit2PerceiveDepth", e2p_pipe=pipes["depth"], image=image, **{**PREDICT, "seed": 7})
    ref = pipes["depth"](pipe_input(image), processing_resolution=RES,
                         generator=torch.Generator("cpu").manual_seed(7)).prediction[0]
    torch.testing.assert_close(raw[0, ..., 0], torch.from_numpy(ref), rtol=0, atol=1e-6)
    _, fixed, _ = call_node("Edit2PerceiveDepth", e2p_pipe=pipes["depth"], image=image, **PREDICT)
    assert not torch.allclose(fixed, raw)


def test_controlnet_normal_colours_by_hand():
    # ControlNet 1.1 normal maps: red = left, green = up, blue = toward the viewer
    normals = torch.tensor([[[[-1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [1.0, 0, 0]]]])
    rgb = convert.normals_to_image(normals, "controlnet")[0, 0]
    expected = [[1.0, 0.5, 0.5], [0.5, 1.0, 0.5], [0.5, 0.5, 1.0], [0.0, 0.5, 0.5]]
    torch.testing.assert_close(rgb, torch.tensor(expected), rtol=0, atol=1e-7)
    marigold = convert.normals_to_image(normals, "marigold")[0, 0]
    torch.testing.assert_close(marigold[:, 0], torch.tensor([0.0, 0.5, 0.5, 1.0]), rtol=0, atol=1e-7)  # red = right


def test_normals_node_matches_the_pipeline(pipes):
    image = comfy_image(seed=1)
    ref = torch.from_numpy(pipes["normal"](pipe_input(image), processing_resolution=RES).prediction)  # 1 x H x W x 3
    (controlnet, unc) = call_node("Edit2PerceiveNormals", e2p_pipe=pipes["normal"], image=image, **PREDICT,
                                  convention="controlnet")
    assert controlnet.shape == (1, H, W, 3) and controlnet.dtype == torch.float32 and unc.shape == (1, H, W, 3)
    expected = torch.stack([(1 - ref[..., 0]) / 2, (1 + ref[..., 1]) / 2, (1 + ref[..., 2]) / 2], dim=-1)
    torch.testing.assert_close(controlnet, expected, rtol=0, atol=1e-6)
    (marigold, _) = call_node("Edit2PerceiveNormals", e2p_pipe=pipes["normal"], image=image, **PREDICT,
                              convention="marigold")
    # a second implementation: the e2p predict colours (diffusers' visualize_normals), 8-bit
    png = np.asarray(normals_to_rgb(ref[0].numpy()), dtype=np.float32) / 255.0
    np.testing.assert_allclose(marigold[0].numpy(), png, atol=1 / 255 + 1e-6)


def test_matting_node_points_json_matches_the_pipeline(pipes):
    image = comfy_image(seed=2)
    points = '[{"x": 30, "y": 12}, {"x": 10, "y": 33}]'  # KJNodes PointsEditor's coordinates output
    alpha, cutout, unc = call_node("Edit2PerceiveMatting", e2p_pipe=pipes["matting"], image=image, **PREDICT,
                                   points=points, normalized_points=False)
    ref = pipes["matting"](pipe_input(image), processing_resolution=RES, points=[[(30, 12), (10, 33)]]).prediction
    assert alpha.shape == (1, H, W) and alpha.dtype == torch.float32  # MASK
    torch.testing.assert_close(alpha, torch.from_numpy(ref), rtol=0, atol=1e-6)
    assert cutout.shape == (1, H, W, 4)
    torch.testing.assert_close(cutout[..., :3], image, rtol=0, atol=0)
    torch.testing.assert_close(cutout[..., 3], alpha, rtol=0, atol=0)
    assert unc.shape == (1, H, W, 3)


def test_matting_clicks_from_a_mask(pipes):
    image = comfy_image(seed=3)
    mask = torch.zeros(1, H, W)
    mask[0, 11:14, 19:22] = 1.0  # a dot centred on (x=20, y=12)
    mask[0, 30, 5:15] = 1.0  # a stroke: its centroid (9.5, 30) lies on it -> nearest pixel (9, 30)
    assert convert.mask_to_points(mask) == [[(20.0, 12.0), (9.0, 30.0)]]
    alpha, _, _ = call_node("Edit2PerceiveMatting", e2p_pipe=pipes["matting"], image=image, **PREDICT, points="",
                            normalized_points=False, points_mask=mask)
    ref = pipes["matting"](pipe_input(image), processing_resolution=RES, points=[[(20, 12), (9, 30)]]).prediction
    torch.testing.assert_close(alpha, torch.from_numpy(ref), rtol=0, atol=1e-6)


def test_points_editor_formats():
    assert convert.parse_points("[{'x': 3, 'y': 4}]", 10, 10) == [(3.0, 4.0)]  # Python-repr quotes
    assert convert.parse_points("[[1, 2], [5, 6]]", 10, 10) == [(1.0, 2.0), (5.0, 6.0)]
    assert convert.parse_points('[{"x": 0.5, "y": 1.0}]', 20, 10, normalized=True) == [(10.0, 9.0)]  # clipped to H-1
    assert convert.parse_points("  ", 10, 10) == []
    with pytest.raises(ValueError, match="JSON"):
        convert.parse_points("[{x: 1}", 10, 10)
    with pytest.raises(ValueError, match="x"):
        convert.parse_points('[{"x": 1}]', 10, 10)


def test_matting_without_clicks_is_a_clear_error(pipes):
    with pytest.raises(ValueError, match="points_mask"):
        call_node("Edit2PerceiveMatting", e2p_pipe=pipes["matting"], image=comfy_image(), **PREDICT, points="",
                  normalized_points=False)


def test_wrong_task_for_the_node_names_the_right_node(pipes):
    with pytest.raises(ValueError, match="Edit2Perceive normals"):
        call_node("Edit2PerceiveDepth", e2p_pipe=pipes["normal"], image=comfy_image(), **PREDICT)
    with pytest.raises(TypeError, match="Load Edit2Perceive model"):
        call_node("Edit2PerceiveDepth", e2p_pipe="not a pipeline", image=comfy_image(), **PREDICT)


def test_uncertainty_when_asked(pipes):
    image = comfy_image(seed=4)
    args = {**PREDICT, "ensemble_size": 2, "output_uncertainty": True}
    _, raw, unc = call_node("Edit2PerceiveDepth", e2p_pipe=pipes["depth"], image=image, **args)
    out = pipes["depth"](pipe_input(image), processing_resolution=RES, ensemble_size=2, output_uncertainty=True)
    torch.testing.assert_close(raw[0, ..., 0], torch.from_numpy(out.prediction[0]), rtol=0, atol=1e-6)
    assert unc.shape == (1, H, W, 3) and float(unc.max()) > 0.0
    with pytest.raises(ValueError, match="ensemble_size"):
        call_node("Edit2PerceiveDepth", e2p_pipe=pipes["depth"], image=image, **{**PREDICT, "output_uncertainty": True})


@pytest.fixture
def fake_comfy(monkeypatch):
    """ComfyUI's progress-bar and interruption hooks, as ``comfy.utils`` / ``comfy.model_management``."""
    state = {"updates": [], "checks": 0, "interrupt_after": None}

    class InterruptProcessingException(Exception):
        pass

    class ProgressBar:
        def __init__(self, total):
            state["total"] = total

        def update(self, value):
            state["updates"].append(value)

    def throw_exception_if_processing_interrupted():
        state["checks"] += 1
        if state["interrupt_after"] is not None and state["checks"] > state["interrupt_after"]:
            raise InterruptProcessingException()

    comfy = types.ModuleType("comfy")
    utils = types.ModuleType("comfy.utils")
    utils.ProgressBar = ProgressBar
    management = types.ModuleType("comfy.model_management")
    management.throw_exception_if_processing_interrupted = throw_exception_if_processing_interrupted
    management.InterruptProcessingException = InterruptProcessingException
    comfy.utils, comfy.model_management = utils, management
    for name, module in (("comfy", comfy), ("comfy.utils", utils), ("comfy.model_management", management)):
        monkeypatch.setitem(sys.modules, name, module)
    state["exception"] = InterruptProcessingException
    return state


def test_progress_bar_and_cancel_between_batch_items(pipes, fake_comfy):
    image = comfy_image(batch=3)
    call_node("Edit2PerceiveDepth", e2p_pipe=pipes["depth"], image=image, **PREDICT)
    assert fake_comfy["total"] == 3 and fake_comfy["updates"] == [1, 1, 1] and fake_comfy["checks"] == 3
    fake_comfy.update(updates=[], checks=0, interrupt_after=1)  # Cancel pressed while image 0 runs
    with pytest.raises(fake_comfy["exception"]):
        call_node("Edit2PerceiveDepth", e2p_pipe=pipes["depth"], image=image, **PREDICT)
    assert fake_comfy["updates"] == [1]  # image 0 finished, image 1 never started


LOADER = dict(base_model="", task="auto", dtype="float32", device="cpu", offload=False, quantize="none",
              vae_tiling=False)


def test_loader_node_on_a_saved_folder(pipes, tmp_path):
    pipes["depth"].save_pretrained(tmp_path / "depth")
    (pipe,) = call_node("Edit2PerceiveModelLoader", model=str(tmp_path / "depth"), **LOADER)
    assert isinstance(pipe, Edit2PerceivePipeline) and pipe.task.name == "depth"
    assert pipe.transformer.dtype == torch.float32
    image = comfy_image(seed=5)
    loaded = call_node("Edit2PerceiveDepth", e2p_pipe=pipe, image=image, **PREDICT)[1]
    original = call_node("Edit2PerceiveDepth", e2p_pipe=pipes["depth"], image=image, **PREDICT)[1]
    torch.testing.assert_close(loaded, original, rtol=0, atol=1e-5)  # a reloaded copy: float32 rounding
    with pytest.raises(ValueError, match="normal"):
        call_node("Edit2PerceiveModelLoader", model=str(tmp_path / "depth"), **{**LOADER, "task": "normal"})
    (bf16,) = call_node("Edit2PerceiveModelLoader", model=str(tmp_path / "depth"), **{**LOADER, "dtype": "bfloat16"})
    assert bf16.transformer.dtype == torch.bfloat16
    depth = call_node("Edit2PerceiveDepth", e2p_pipe=bf16, image=image, **PREDICT)[0]
    assert depth.dtype == torch.float32  # ComfyUI's IMAGE stays float32 whatever the model's dtype


def test_loader_finds_names_under_comfyui_models_folder(pipes, tmp_path, monkeypatch):
    pipes["depth"].save_pretrained(tmp_path / "diffusers" / "my-depth")
    folder_paths = types.ModuleType("folder_paths")
    folder_paths.get_folder_paths = lambda kind: [str(tmp_path / kind)]
    monkeypatch.setitem(sys.modules, "folder_paths", folder_paths)
    (pipe,) = call_node("Edit2PerceiveModelLoader", model="my-depth", **LOADER)
    assert pipe.task.name == "depth"


def test_loader_without_vae_or_base_model_is_a_clear_error(tiny_components, tmp_path):
    parts = {k: v for k, v in tiny_components.items() if k != "vae"}
    Edit2PerceivePipeline(**parts, vae=None, task="depth").save_pretrained(tmp_path / "no-vae")
    with pytest.raises(ValueError, match="base_model"):
        call_node("Edit2PerceiveModelLoader", model=str(tmp_path / "no-vae"), **LOADER)
    with pytest.raises(ValueError, match="give a model"):
        call_node("Edit2PerceiveModelLoader", model=" ", **LOADER)


def test_loader_node_on_a_released_checkpoint(tiny_components, tmp_path):
    """A file in the authors' format (DiffSynth keys) with a base model folder: the same
    pipeline as ``from_reference_checkpoint``, task from the file name."""
    from diffusers import FluxKontextPipeline

    base = tmp_path / "kontext"
    FluxKontextPipeline(**tiny_components).save_pretrained(base)
    ckpt = write(tmp_path / "depth.safetensors", diffsynth_state_dict(tiny_components["transformer"].state_dict()))
    (pipe,) = call_node("Edit2PerceiveModelLoader", model=str(ckpt), **{**LOADER, "base_model": str(base)})
    want = Edit2PerceivePipeline.from_reference_checkpoint(str(ckpt), base_model=str(base))
    assert pipe.task.name == "depth"
    assert {k: v for k, v in pipe.config.items() if not k.startswith("_")} == \
        {k: v for k, v in want.config.items() if not k.startswith("_")}  # the released models' conventions
    image = comfy_image(seed=6)
    got = call_node("Edit2PerceiveDepth", e2p_pipe=pipe, image=image, **PREDICT)[1]
    ref = want(pipe_input(image), processing_resolution=RES).prediction[0]
    torch.testing.assert_close(got[0, ..., 0], torch.from_numpy(ref), rtol=0, atol=1e-5)


def test_loader_fills_a_model_from_the_base_it_records(tiny_components, tmp_path):
    """An empty base_model box (the default) uses the base the model folder records, not a
    fixed Hub id that would override it."""
    from diffusers import FluxKontextPipeline

    from edit2perceive.comfyui.nodes import Edit2PerceiveModelLoader

    assert Edit2PerceiveModelLoader.INPUT_TYPES()["required"]["base_model"][1]["default"] == ""

    base = tmp_path / "base"
    FluxKontextPipeline(**tiny_components).save_pretrained(base)
    parts = {k: v for k, v in tiny_components.items() if k != "vae"}
    Edit2PerceivePipeline(**parts, vae=None, task="depth", base_model=str(base)).save_pretrained(tmp_path / "m")
    assert not (tmp_path / "m" / "vae").exists()
    (pipe,) = call_node("Edit2PerceiveModelLoader", model=str(tmp_path / "m"), **LOADER)
    for name, param in pipe.vae.state_dict().items():
        torch.testing.assert_close(param, tiny_components["vae"].state_dict()[name])
