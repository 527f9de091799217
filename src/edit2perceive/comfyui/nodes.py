"""The ComfyUI nodes: load a model, predict depth, normals or a point-prompted matte.

Each class follows ComfyUI's node protocol: ``INPUT_TYPES()`` (widgets and sockets),
``RETURN_TYPES`` / ``RETURN_NAMES``, ``FUNCTION`` (the method ComfyUI calls with the inputs
as keywords, returning a tuple) and ``CATEGORY``. The model travels between nodes as the
custom type ``E2P_PIPE`` (an :class:`~edit2perceive.pipelines.pipeline.Edit2PerceivePipeline`).
Type conventions: :mod:`edit2perceive.comfyui.convert`; ComfyUI services (progress bar,
Cancel, device): :mod:`edit2perceive.comfyui.hooks`.
"""

from __future__ import annotations

import numpy as np
import torch

from ..core.base_model import DEFAULT_BASE_MODEL
from ..pipelines.pipeline import MAX_INFERENCE_STEPS, MAX_PROCESSING_RESOLUTION, scale_points
from ..tasks import TASKS
from . import convert, hooks

PIPE_TYPE = "E2P_PIPE"
CATEGORY = "Edit2Perceive"
#: the prediction node of each task (keys of NODE_CLASS_MAPPINGS)
TASK_NODES = {"depth": "Edit2PerceiveDepth", "normal": "Edit2PerceiveNormals", "matting": "Edit2PerceiveMatting"}
DTYPES = {"auto": None, "bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
#: the largest seed ComfyUI's seed widgets produce
MAX_SEED = 0xFFFFFFFFFFFFFFFF


class Edit2PerceiveModelLoader:
    """Load Edit2Perceive model: a saved pipeline folder, a Hub id, or a released checkpoint."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("STRING", {"default": "", "tooltip": (
                    "a saved pipeline folder (also a name under models/diffusers), a Hub id, or a released "
                    "checkpoint .safetensors (a file, a name under models/checkpoints, or "
                    "Seq2Tri/Edit2Perceive/<file>)")}),
                "base_model": ("STRING", {"default": "", "tooltip": (
                    "FLUX.1 Kontext in diffusers layout (folder or Hub id): fills the parts a model leaves out "
                    "(VAE, base transformer of a LoRA, text encoders); empty = the base the model records "
                    f"(released checkpoints: {DEFAULT_BASE_MODEL})")}),
                "task": (["auto", *TASKS], {"default": "auto", "tooltip": "auto: the model's own task"}),
                "dtype": (list(DTYPES), {"default": "auto", "tooltip": "auto: bfloat16 on CUDA, float32 on the CPU"}),
                "device": (["auto", "cuda", "cpu", "mps"], {"default": "auto",
                                                             "tooltip": "auto: the device ComfyUI computes on"}),
                "offload": ("BOOLEAN", {"default": False, "tooltip": "diffusers' model CPU offload"}),
                "quantize": (["none", "nf4", "int8"], {"default": "none",
                                                        "tooltip": "bitsandbytes transformer (needs CUDA)"}),
                "vae_tiling": ("BOOLEAN", {"default": False, "tooltip": "tiled VAE for large images"}),
            }
        }

    RETURN_TYPES = (PIPE_TYPE,)
    RETURN_NAMES = ("e2p_pipe",)
    FUNCTION = "load"
    CATEGORY = CATEGORY
    DESCRIPTION = "Loads an Edit2Perceive pipeline (FLUX.1 Kontext fine-tuned for depth, normals or matting)."

    def load(self, model, base_model, task, dtype, device, offload, quantize, vae_tiling):
        from ..pipelines.loading import load_pipeline

        if not model.strip():
            raise ValueError("Load Edit2Perceive model: give a model (folder, Hub id or released .safetensors)")
        path = hooks.resolve_model_path(model.strip())
        base = base_model.strip() or None
        reference = path.endswith(".safetensors")
        pipe = load_pipeline(
            None if reference else path, reference_checkpoint=path if reference else None,
            task=None if task == "auto" else task, device=hooks.default_device() if device == "auto" else device,
            base_model=base, offload=offload, quantize=None if quantize == "none" else quantize,
            vae_tiling=vae_tiling, dtype=DTYPES[dtype])
        missing = [name for name in ("transformer", "vae") if getattr(pipe, name, None) is None]
        if missing:
            raise ValueError(f"{model}: the model has no {' or '.join(missing)} and "
                             f"{'its recorded base did not fill it' if base is None else f'base_model {base!r} did not fill it'}"
                             f": set base_model to FLUX.1 Kontext in diffusers layout (e.g. {DEFAULT_BASE_MODEL})")
        return (pipe,)


def _common_inputs() -> dict:
    return {
        "e2p_pipe": (PIPE_TYPE,),
        "image": ("IMAGE",),
        "steps": ("INT", {"default": 1, "min": 1, "max": MAX_INFERENCE_STEPS,
                          "tooltip": "1 = the single-step estimate the models are trained for"}),
        "processing_resolution": ("INT", {"default": 768, "min": 0, "max": MAX_PROCESSING_RESOLUTION, "step": 16,
                                          "tooltip": "longest side the model sees (0 = native size)"}),
        "ensemble_size": ("INT", {"default": 1, "min": 1, "max": 64,
                                  "tooltip": "predictions per image combined (flip / resolution members)"}),
        # no control-after-generate widget (ComfyUI adds one to any "seed" unless told not to): its
        # default "randomize" would replace the fixed noise by fresh noise after the first run
        "seed": ("INT", {"default": 0, "min": 0, "max": MAX_SEED, "control_after_generate": False,
                         "tooltip": "0 = the model's fixed noise (as trained); otherwise the noise seed"}),
        "output_uncertainty": ("BOOLEAN", {"default": False, "tooltip": "ensemble spread (needs ensemble_size >= 2)"}),
    }


def check_pipe(pipe, task: str, node: str) -> None:
    """The node's model must be an Edit2Perceive pipeline trained for the node's task."""
    from ..pipelines.pipeline import Edit2PerceivePipeline

    if not isinstance(pipe, Edit2PerceivePipeline):
        raise TypeError(f"{node}: e2p_pipe must come from 'Load Edit2Perceive model', got {type(pipe).__name__}")
    if pipe.task.name != task:
        other = NODE_DISPLAY_NAME_MAPPINGS[TASK_NODES[pipe.task.name]]
        raise ValueError(f"{node}: the loaded model predicts {pipe.task.name!r}, not {task!r}; use the '{other}' node")


def predict(pipe, image, *, steps, processing_resolution, ensemble_size, seed, output_uncertainty, points=None):
    """Run the pipeline on each image of a ComfyUI ``IMAGE`` batch (ComfyUI's progress bar
    advances and Cancel is honoured between images): ``(predictions, uncertainties or None)``
    as float32 tensors with the batch first. ``seed`` 0 keeps the model's fixed noise; any
    other seeds a CPU generator, the same for every image of the batch."""
    rgb = convert.image_to_pipeline(image)
    bar = hooks.progress_bar(len(rgb))
    predictions, uncertainties = [], []
    for i in range(len(rgb)):
        hooks.check_interrupted()
        out = pipe(rgb[i:i + 1], num_inference_steps=int(steps), processing_resolution=int(processing_resolution),
                   points=None if points is None else [points[i]], ensemble_size=int(ensemble_size),
                   output_uncertainty=bool(output_uncertainty), output_type="np",
                   generator=None if int(seed) == 0 else torch.Generator("cpu").manual_seed(int(seed)))
        predictions.append(torch.from_numpy(np.asarray(out.prediction[0], dtype=np.float32)))
        if out.uncertainty is not None:
            uncertainties.append(torch.from_numpy(np.asarray(out.uncertainty[0], dtype=np.float32)))
        bar.update(1)
    hooks.free_memory()
    return torch.stack(predictions), (torch.stack(uncertainties) if uncertainties else None)


def _uncertainty_output(uncertainty, image):
    return convert.blank_image_like(image) if uncertainty is None else convert.uncertainty_to_image(uncertainty)


class Edit2PerceiveDepth:
    """Edit2Perceive depth: relative depth of each image."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": _common_inputs()}

    RETURN_TYPES = ("IMAGE", "IMAGE", "IMAGE")
    RETURN_NAMES = ("depth", "depth_raw", "uncertainty")
    FUNCTION = "estimate"
    CATEGORY = CATEGORY
    DESCRIPTION = ("depth: grey, near = white (for ControlNet depth); depth_raw: the model's affine-invariant "
                   "prediction in [0, 1]; uncertainty: the ensemble spread (black unless asked for).")

    def estimate(self, e2p_pipe, image, steps, processing_resolution, ensemble_size, seed, output_uncertainty):
        check_pipe(e2p_pipe, "depth", "Edit2Perceive depth")
        depth, unc = predict(e2p_pipe, image, steps=steps, processing_resolution=processing_resolution,
                             ensemble_size=ensemble_size, seed=seed, output_uncertainty=output_uncertainty)
        near_is_high = getattr(e2p_pipe.task, "encoding", "sqrt") == "disparity"
        return (convert.depth_to_image(depth, near_is_high=near_is_high), convert.depth_raw_to_image(depth),
                _uncertainty_output(unc, image))


class Edit2PerceiveNormals:
    """Edit2Perceive normals: surface normals of each image as a normal-map image."""

    @classmethod
    def INPUT_TYPES(cls):
        inputs = _common_inputs()
        inputs["convention"] = (list(convert.NORMAL_CONVENTIONS), {"default": "controlnet", "tooltip": (
            "controlnet: red = left, green = up, blue = toward the viewer (ControlNet 1.1 normal maps); "
            "marigold: red = right, green = up, blue = toward the viewer")})
        return {"required": inputs}

    RETURN_TYPES = ("IMAGE", "IMAGE")
    RETURN_NAMES = ("normals", "uncertainty")
    FUNCTION = "estimate"
    CATEGORY = CATEGORY
    DESCRIPTION = "Surface normals as colours in the chosen convention; uncertainty: the ensemble's angular spread."

    def estimate(self, e2p_pipe, image, steps, processing_resolution, ensemble_size, seed, output_uncertainty,
                 convention):
        check_pipe(e2p_pipe, "normal", "Edit2Perceive normals")
        normals, unc = predict(e2p_pipe, image, steps=steps, processing_resolution=processing_resolution,
                               ensemble_size=ensemble_size, seed=seed, output_uncertainty=output_uncertainty)
        return convert.normals_to_image(normals, convention), _uncertainty_output(unc, image)


class Edit2PerceiveMatting:
    """Edit2Perceive matting: the alpha matte of the object marked by clicks."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                **_common_inputs(),
                "points": ("STRING", {"default": "", "multiline": False, "tooltip": (
                    "foreground clicks as points-editor JSON [{\"x\": 120, \"y\": 80}, ...] in image pixels")}),
                "normalized_points": ("BOOLEAN", {"default": False,
                                                  "tooltip": "points are fractions of the image size (0..1)"}),
            },
            "optional": {
                "points_mask": ("MASK", {"tooltip": "clicks painted on a mask: one point per blob"}),
            },
        }

    RETURN_TYPES = ("MASK", "IMAGE", "IMAGE")
    RETURN_NAMES = ("alpha", "cutout", "uncertainty")
    FUNCTION = "matte"
    CATEGORY = CATEGORY
    DESCRIPTION = ("alpha: the matte as a MASK (1 = foreground); cutout: the image with the matte as its alpha "
                   "channel (RGBA); the model turns the clicks into its point prompt.")

    def matte(self, e2p_pipe, image, steps, processing_resolution, ensemble_size, seed, output_uncertainty, points,
              normalized_points, points_mask=None):
        check_pipe(e2p_pipe, "matting", "Edit2Perceive matting")
        per_image = click_points(image, points, normalized_points, points_mask)
        alpha, unc = predict(e2p_pipe, image, steps=steps, processing_resolution=processing_resolution,
                             ensemble_size=ensemble_size, seed=seed, output_uncertainty=output_uncertainty,
                             points=per_image)
        return convert.alpha_to_mask(alpha), convert.cutout_image(image, alpha), _uncertainty_output(unc, image)


def click_points(image, points: str, normalized: bool, points_mask=None) -> list[list[tuple[float, float]]]:
    """Per image of the batch, the ``(x, y)`` clicks: the JSON points (the same for every
    image) plus the blobs of ``points_mask`` (one mask for all images or one per image; a
    mask of another size is mapped onto the image's pixels)."""
    batch, height, width = image.shape[:3]
    shared = convert.parse_points(points, width, height, normalized=normalized)
    per_image = [list(shared) for _ in range(batch)]
    if points_mask is not None:
        mask = points_mask if points_mask.ndim == 3 else points_mask[None]
        if mask.shape[0] not in (1, batch):
            raise ValueError(f"points_mask holds {mask.shape[0]} masks for {batch} images (give 1 or {batch})")
        from_mask = convert.mask_to_points(mask)
        for i in range(batch):
            pts = from_mask[i if len(from_mask) == batch else 0]
            if pts and tuple(mask.shape[1:]) != (height, width):
                pts = [tuple(p) for p in scale_points(pts, tuple(mask.shape[1:]), (height, width))]
            per_image[i] += pts
    for i, pts in enumerate(per_image):
        if not pts:
            raise ValueError(f"Edit2Perceive matting: image {i} has no click: connect a points editor's JSON to "
                             "'points' (e.g. [{\"x\": 120, \"y\": 80}]) or a MASK of clicks to 'points_mask'")
    return per_image


NODE_CLASS_MAPPINGS = {
    "Edit2PerceiveModelLoader": Edit2PerceiveModelLoader,
    "Edit2PerceiveDepth": Edit2PerceiveDepth,
    "Edit2PerceiveNormals": Edit2PerceiveNormals,
    "Edit2PerceiveMatting": Edit2PerceiveMatting,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "Edit2PerceiveModelLoader": "Load Edit2Perceive model",
    "Edit2PerceiveDepth": "Edit2Perceive depth",
    "Edit2PerceiveNormals": "Edit2Perceive normals",
    "Edit2PerceiveMatting": "Edit2Perceive matting",
}
