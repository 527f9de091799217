"""``Edit2PerceivePipeline``: a diffusers pipeline for single-step dense perception.

One pipeline serves one task (``depth``, ``normal`` or ``matting``); the task and its
options (e.g. the sqrt depth encoding) are part of the pipeline config and survive
``save_pretrained`` / ``from_pretrained``. The call follows Marigold's shape: images in,
an output dataclass with ``prediction`` (and ``latent``) out. Conventions: see
:mod:`edit2perceive.core.flow` (sigma = 1 is noise), :mod:`edit2perceive.core.modeling` (Kontext
tokens) and the task modules (value ranges, normal axes). Test-time ensembles
(``ensemble_size``, ``output_uncertainty``) run in the same batching loop as plain calls, over
``(image, member)`` rows (:mod:`edit2perceive.pipelines.ensemble`), each undone and combined by
the task's ``ensemble``. The sampling grid comes from the ``scheduler`` component.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import (
    AutoencoderKL,
    DiffusionPipeline,
    FlowMatchEulerDiscreteScheduler,
    FluxTransformer2DModel,
)
from diffusers.utils import BaseOutput

from ..core import flow, modeling
from ..core.prompts import DEFAULT_MAX_SEQUENCE_LENGTH, PromptCache, encode_prompt
from ..io.images import load_rgb_inputs
from ..tasks import Task, get_task
from ..tasks.matting import click_point_map, point_map_image, render_point_map, render_reference_point_map
from .conventions import LEGACY_KEYS, Conventions
from .ensemble import DEFAULT_AUGMENTATIONS, flip_points, member_resolution, plan_members

LATENT_MULTIPLE = 16  # FLUX.1: 8x VAE downsampling times 2x2 token packing
#: bounds of the call's arguments (beyond them every image would fail or run for hours)
MAX_INFERENCE_STEPS = 1000
MAX_PROCESSING_RESOLUTION = 8192


@dataclass
class Edit2PerceivePipelineOutput(BaseOutput):
    """Output of :class:`Edit2PerceivePipeline`.

    Args:
        prediction: depth ``N x H x W`` in [0, 1] (affine-invariant, in the task's encoding
            space); normal ``N x H x W x 3`` unit vectors (x right, y up, z toward the viewer);
            matting ``N x H x W`` alpha in [0, 1] (``output_type="np"``); ``"pt"`` gives torch
            tensors channels-first, as diffusers' Marigold: ``N x 1 x H x W`` / ``N x 3 x H x W``.
            When inputs of different sizes are matched back to their own resolution, a list.
        latent: ``N x C x h x w`` final latents before decoding (unpacked), at the
            processing resolution (a list when sizes differ). With an ensemble: those of
            member 0 (the plain prediction).
        uncertainty: with ``output_uncertainty=True`` (needs ``ensemble_size > 1``), the
            spread of the ensemble members, same shape as ``prediction``, ``>= 0`` (see each
            task's ``ensemble``); otherwise ``None``.
    """

    prediction: np.ndarray | torch.Tensor | list
    latent: torch.Tensor | list
    uncertainty: np.ndarray | torch.Tensor | list | None = None


def processing_size(height: int, width: int, processing_resolution: int, *,
                    multiple: int = LATENT_MULTIPLE) -> tuple[int, int]:
    """Size the model sees: longest side ``processing_resolution`` (0 = native), aspect kept,
    both sides rounded to the nearest ``multiple`` (the pipeline's latent multiple, 16 for
    FLUX.1; at least one multiple)."""
    if processing_resolution < 0:
        raise ValueError(f"processing_resolution must be >= 0, got {processing_resolution}")
    scale = 1.0 if processing_resolution == 0 else processing_resolution / max(height, width)

    def snap(side: float) -> int:
        return max(multiple, int(round(side / multiple)) * multiple)

    return snap(height * scale), snap(width * scale)


@dataclass(frozen=True)
class PointMap:
    """A ready matting point map for one image: ``values`` float32 ``H x W`` in [0, 1] at the
    input image's size (e.g. the reference benchmark protocol's); stretched to the processing size."""

    values: np.ndarray


def scale_points(points, src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> np.ndarray:
    """Map ``(x, y)`` pixel coordinates between image sizes (pixel centres stay centres)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    sy, sx = dst_hw[0] / src_hw[0], dst_hw[1] / src_hw[1]
    out = np.empty_like(pts)
    out[:, 0] = (pts[:, 0] + 0.5) * sx - 0.5
    out[:, 1] = (pts[:, 1] + 0.5) * sy - 0.5
    return np.clip(out, 0, [dst_hw[1] - 1, dst_hw[0] - 1])


class Edit2PerceivePipeline(DiffusionPipeline):
    """FLUX.1 Kontext fine-tuned to "edit" an image into a dense map, in one step.

    Components are those of ``FluxKontextPipeline`` plus ``prompt_cache`` (the task prompt's
    embeddings). With a prompt cache, the text encoders may be ``None``.

    Args:
        task: ``"depth"``, ``"normal"``, ``"matting"``, a task config dict or a ``Task``.
        guidance: embedded guidance value (Kontext-dev is guidance-distilled; 1.0 as trained).
        noise_seed: seed of the fixed base noise (same as in training).
        default_processing_resolution: longest side used when the call does not say.
        max_sequence_length: T5 tokens when the prompt has to be encoded.
        conventions: a :class:`~edit2perceive.pipelines.conventions.Conventions` (or its dict,
            or ``"reference"``): noise, N-step grid, point maps, resizing, timestep embedding,
            decoding. Default ``Conventions()`` (this project's models);
            ``from_reference_checkpoint`` sets ``Conventions.reference()``. Saved in the config
            under ``conventions``. The N-step grid is set by the ``scheduler`` component
            (FLUX.1's ``FlowMatchEulerDiscreteScheduler`` config when none is given).
        point_map_position_index, noise, single_step_final_sigma, point_map, point_map_sigma,
            resize_mode, timestep_embedding, sigma_schedule: single conventions given loosely
            (as configs saved before ``conventions`` hold them); those not None override
            ``conventions``.
        base_model: the FLUX.1 Kontext folder or Hub id this model was trained or converted
            from (and ``base_model_revision``, when known); ``from_pretrained`` fills the parts a
            saved folder leaves out (LoRA base transformer, text encoders, an absent VAE) from it.
    """

    model_cpu_offload_seq = "text_encoder->text_encoder_2->transformer->vae"
    _optional_components = [
        "text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2", "prompt_cache", "scheduler", "vae", "transformer",
    ]

    def __init__(
        self,
        transformer: FluxTransformer2DModel | None,
        vae: AutoencoderKL | None,
        scheduler: FlowMatchEulerDiscreteScheduler | None = None,
        text_encoder=None,
        tokenizer=None,
        text_encoder_2=None,
        tokenizer_2=None,
        prompt_cache: PromptCache | None = None,
        task: str | dict | Task = "depth",
        guidance: float = modeling.DEFAULT_GUIDANCE,
        noise_seed: int = flow.DEFAULT_NOISE_SEED,
        default_processing_resolution: int = 768,
        max_sequence_length: int = DEFAULT_MAX_SEQUENCE_LENGTH,
        conventions: Conventions | dict | str | None = None,
        point_map_position_index: int | None = None,
        noise: str | None = None,
        single_step_final_sigma: float | None = None,
        point_map: str | None = None,
        point_map_sigma: float | None = None,
        resize_mode: str | None = None,
        timestep_embedding: str | None = None,
        sigma_schedule: str | None = None,
        base_model: str | None = None,
        base_model_revision: str | None = None,
    ):
        super().__init__()
        task_obj = get_task(task)
        loose = dict(zip(LEGACY_KEYS, (point_map_position_index, noise, single_step_final_sigma, point_map,
                                       point_map_sigma, resize_mode, timestep_embedding, sigma_schedule)))
        conv = Conventions.from_config(conventions, **{k: v for k, v in loose.items() if v is not None})
        if prompt_cache is not None and prompt_cache.prompt != task_obj.prompt:
            raise ValueError(
                f"prompt cache holds {prompt_cache.prompt!r} but task {task_obj.name!r} uses {task_obj.prompt!r}"
            )
        if scheduler is None:  # the scheduler sets the sampling grid; FLUX.1's when none is given
            scheduler = FlowMatchEulerDiscreteScheduler(**flow.FLUX_SCHEDULER_CONFIG)
        self.register_modules(
            transformer=transformer,
            vae=vae,
            scheduler=scheduler,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            text_encoder_2=text_encoder_2,
            tokenizer_2=tokenizer_2,
            prompt_cache=prompt_cache,
        )
        self.register_to_config(
            task=task_obj.config(),
            guidance=float(guidance),
            noise_seed=int(noise_seed),
            default_processing_resolution=int(default_processing_resolution),
            max_sequence_length=int(max_sequence_length),
            conventions=conv.to_dict(),
            base_model=None if base_model is None else str(base_model),
            base_model_revision=None if base_model_revision is None else str(base_model_revision),
        )
        self.task = task_obj

    @property
    def conventions(self) -> Conventions:
        """The pipeline's conventions (frozen; from the config's ``conventions``)."""
        return Conventions.from_value(self.config.conventions)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *, base_model: str | None = None,
                        quantize: str | None = None, **kwargs):
        """diffusers' ``from_pretrained``, plus base-model completion and LoRA models.

        A full model folder is self-contained (transformer, VAE, prompt cache); a LoRA model
        holds only its adapter (``transformer_lora/``) and names its base. Whatever a folder
        leaves out and is not passed as a keyword comes from its base model: the one recorded
        in its config, or ``base_model`` (a folder or Hub id in ``FluxKontextPipeline`` layout,
        e.g. ``black-forest-labs/FLUX.1-Kontext-dev``), which overrides it: the VAE, the base
        transformer under a LoRA (the adapter is loaded onto it with peft), and the tokenizers
        / text encoders only when there is no prompt cache. A base that cannot be loaded is
        an ``OSError`` naming it. ``quantize`` (``"nf4"`` / ``"int8"``) loads the transformer
        through diffusers' bitsandbytes config.
        """
        from ..core.base_model import complete_from_base
        from .folders import check_model_folder, lora_folder

        if kwargs.setdefault("use_safetensors", True) is not True:
            raise ValueError("use_safetensors must be True: pickle weights are never loaded")
        if os.path.isdir(pretrained_model_name_or_path):
            check_model_folder(pretrained_model_name_or_path, given=kwargs, components=cls._optional_components)
        lora = lora_folder(pretrained_model_name_or_path, kwargs)
        kwargs = complete_from_base(pretrained_model_name_or_path, kwargs, base_model=base_model, quantize=quantize)
        pipe = super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        if lora is not None:
            if pipe.transformer is None:
                raise ValueError(
                    f"{pretrained_model_name_or_path} holds a LoRA adapter and records no base model: pass "
                    "base_model='black-forest-labs/FLUX.1-Kontext-dev' (or a local copy) or transformer="
                )
            pipe.transformer.load_lora_adapter(lora, adapter_name="default", use_safetensors=True, prefix=None)
        return pipe

    @classmethod
    def from_reference_checkpoint(cls, path, task: str | None = None, base_model: str | None = None, *,
                                  torch_dtype: torch.dtype | None = None, quantize: str | None = None,
                                  keep_text_encoders: bool = False, **components):
        """A pipeline from the authors' released checkpoint (REFERENCE.md), with their conventions.

        ``path``: a local ``.safetensors`` or a Hub file ``Seq2Tri/Edit2Perceive/<file>``. A full
        DiT state dict (DiffSynth key names) is converted to a ``FluxTransformer2DModel``; a
        kohya LoRA is split onto the base transformer as a peft adapter. ``task`` defaults to
        the one in the file name. ``base_model`` (default ``black-forest-labs/FLUX.1-Kontext-dev``)
        provides the VAE, the base transformer (LoRA) and the text encoders, which encode the
        task prompt once into a prompt cache and are then dropped (``keep_text_encoders``).
        Components passed as keywords override the base's. The pipeline config gets
        :data:`edit2perceive.reference.REFERENCE_CONVENTIONS` (override any by keyword).
        """
        from ..reference.loading import reference_pipeline

        return reference_pipeline(cls, path, task=task, base_model=base_model, torch_dtype=torch_dtype,
                                  quantize=quantize, keep_text_encoders=keep_text_encoders, **components)

    # -- prompt -----------------------------------------------------------------------
    def ensure_prompt_cache(self) -> PromptCache:
        """The task prompt's embeddings: the stored cache, or encode once and keep it."""
        if self.prompt_cache is None:
            missing = [n for n in ("tokenizer", "text_encoder", "tokenizer_2", "text_encoder_2") if getattr(self, n) is None]
            if missing:
                raise ValueError(
                    f"this pipeline has no prompt_cache and no {', '.join(missing)}: give the text encoders "
                    "once (the embeddings are then cached and saved with the pipeline) or load a saved pipeline"
                )
            cache = encode_prompt(
                self.task.prompt,
                tokenizer=self.tokenizer,
                text_encoder=self.text_encoder,
                tokenizer_2=self.tokenizer_2,
                text_encoder_2=self.text_encoder_2,
                max_sequence_length=self.config.max_sequence_length,
            )
            self.register_modules(prompt_cache=cache.to(self.transformer.device))
        return self.prompt_cache

    def save_pretrained(self, save_directory, *args, **kwargs):
        """Save like any diffusers pipeline, with the prompt cache computed first if needed."""
        if self.prompt_cache is None and self.text_encoder is not None:
            self.ensure_prompt_cache()
        return super().save_pretrained(save_directory, *args, **kwargs)

    def push_to_hub(self, repo_id: str, commit_message: str | None = None, private: bool | None = None,
                    token: str | None = None, create_pr: bool = False, safe_serialization: bool = True,
                    variant: str | None = None, *, card=None, dry_run_dir: str | None = None, **kwargs) -> str:
        """diffusers' ``push_to_hub`` (same keywords; others go to ``HfApi.upload_folder``):
        the model without its text encoders (the prompt cache replaces them), with a model
        card; see :func:`edit2perceive.hub.push_to_hub`. ``dry_run_dir`` writes the exact
        folder that would be uploaded instead."""
        from ..hub import push_to_hub

        return push_to_hub(self, repo_id, card=card, dry_run_dir=dry_run_dir, commit_message=commit_message,
                           private=private, token=token, create_pr=create_pr, safe_serialization=safe_serialization,
                           variant=variant, **kwargs)

    # -- inference: preparation ----------------------------------------------------------
    def prepare_points(self, points, images: list, point_maps=None) -> list:
        """Per image an ``n x 2`` array of ``(x, y)`` input-pixel points or a :class:`PointMap`
        (matting), else ``None``."""
        n_images = len(images)
        if self.task.num_context_images < 2:
            if points is not None or point_maps is not None:
                raise ValueError(f"points are only used by the matting task, not {self.task.name!r}")
            return [None] * n_images
        if point_maps is not None:
            if points is not None:
                raise ValueError("give points or point_maps, not both")
            return self.prepare_point_maps(point_maps, images)
        if points is None:
            raise ValueError("the matting task needs foreground points: points=[[(x, y), ...]] per image")
        if len(points) and isinstance(points[0], (int, float, np.integer, np.floating)):
            raise ValueError("points must be a list of (x, y) pairs per image, e.g. [[(10, 20), (30, 40)]]")
        if n_images == 1 and len(points) and np.ndim(points[0]) == 1:
            points = [points]  # a single image's list of (x, y)
        if len(points) != n_images:
            raise ValueError(f"got points for {len(points)} images but {n_images} images")
        out = []
        for i, pts in enumerate(points):
            arr = np.asarray(pts, dtype=np.float64) if len(pts) else np.zeros((0, 2))
            if arr.ndim == 1 and arr.size == 2:
                arr = arr[None]
            if arr.ndim != 2 or arr.shape[1] != 2:
                raise ValueError(f"image {i}: points must be (x, y) pairs, got an array of shape {arr.shape} "
                                 "(SAM-style (x, y, label) rows? pass only the foreground points' (x, y))")
            if len(arr) == 0:
                raise ValueError(f"image {i}: the matting task needs at least one foreground point")
            if not np.isfinite(arr).all():
                x, y = arr[np.argmax(~np.isfinite(arr).all(axis=1))]
                raise ValueError(f"image {i}: point (x={x:g}, y={y:g}) is not finite")
            h, w = images[i].shape[-2:]
            outside = (arr[:, 0] < 0) | (arr[:, 0] > w - 1) | (arr[:, 1] < 0) | (arr[:, 1] > h - 1)
            if outside.any():
                x, y = arr[np.argmax(outside)]
                raise ValueError(f"image {i}: point (x={x:g}, y={y:g}) lies outside the {w}x{h} image")
            out.append(arr)
        return out

    @staticmethod
    def prepare_point_maps(point_maps, images: list) -> list:
        """Per image a :class:`PointMap` from an ``H x W`` array in [0, 1] at the image's size."""
        if len(point_maps) != len(images):
            raise ValueError(f"got point_maps for {len(point_maps)} images but {len(images)} images")
        out = []
        for i, (values, img) in enumerate(zip(point_maps, images)):
            values = np.asarray(values.values if isinstance(values, PointMap) else values, dtype=np.float32)
            if values.shape != tuple(img.shape[-2:]):
                raise ValueError(f"image {i}: point map of shape {values.shape}, expected the image's "
                                 f"{tuple(img.shape[-2:])} (H x W)")
            if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
                raise ValueError(f"image {i}: point map values must be finite and within [0, 1]")
            out.append(PointMap(values))
        return out

    # -- inference: the call and its stages (Marigold's shape) ---------------------------
    def check_inputs(self, *, num_inference_steps, processing_resolution, batch_size, output_type) -> int:
        """Validate the arguments that do not depend on the images; returns the processing
        resolution to use (the config's default when ``None``)."""
        if self.transformer is None:
            raise ValueError("this pipeline has no transformer: load it with from_pretrained(model, base_model=...) "
                             "or pass transformer= (the base DiT for LoRA models)")
        if self.vae is None:
            raise ValueError(
                "this pipeline has no VAE and its folder records no base model to take it from: load it with "
                "from_pretrained(model, base_model='black-forest-labs/FLUX.1-Kontext-dev') or pass "
                "vae=AutoencoderKL.from_pretrained('black-forest-labs/FLUX.1-Kontext-dev', subfolder='vae')"
            )
        if output_type not in ("np", "pt"):
            raise ValueError(f"output_type must be 'np' or 'pt', got {output_type!r}")
        steps_ok = isinstance(num_inference_steps, (int, np.integer)) or (
            isinstance(num_inference_steps, float) and num_inference_steps.is_integer())
        if not steps_ok or not 1 <= num_inference_steps <= MAX_INFERENCE_STEPS:
            raise ValueError(f"num_inference_steps must be an integer within 1..{MAX_INFERENCE_STEPS}, "
                             f"got {num_inference_steps!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if processing_resolution is None:
            return int(self.config.default_processing_resolution)
        if (isinstance(processing_resolution, bool) or not isinstance(processing_resolution, (int, np.integer))
                or not 0 <= processing_resolution <= MAX_PROCESSING_RESOLUTION):
            raise ValueError(f"processing_resolution must be within 0..{MAX_PROCESSING_RESOLUTION} (0 = native) and "
                             f"an integer, got {processing_resolution!r}")
        return int(processing_resolution)

    def check_latents(self, latents: torch.Tensor | None, num_images: int, sizes: list) -> None:
        """Given initial noise must be a finite float tensor ``N x C x h x w``: ``N`` images of
        one processing size ``H x W``, ``C`` the VAE's latent channels, ``h, w = H / 8, W / 8``."""
        if latents is None:
            return
        if len(set(sizes)) > 1:
            raise ValueError("latents can only be given when all images share one processing size")
        (height, width), channels = sizes[0], int(self.vae.config.latent_channels)
        expected = (num_images, *self.latent_shape(sizes[0]))
        if not isinstance(latents, torch.Tensor) or not latents.is_floating_point():
            raise ValueError(f"latents must be a float tensor of shape {expected}, got {type(latents).__name__}"
                             f"{'' if not isinstance(latents, torch.Tensor) else ' of ' + str(latents.dtype)}")
        if tuple(latents.shape) != expected:
            raise ValueError(f"latents must have shape {expected} (N images, {channels} latent channels, processing "
                             f"size {height}x{width} / {self.vae_scale_factor}), got {tuple(latents.shape)}")
        if not torch.isfinite(latents).all():
            raise ValueError(f"latents hold {int((~torch.isfinite(latents)).sum())} non-finite values (NaN or inf)")

    @staticmethod
    def check_prediction(pred: torch.Tensor, index: int) -> None:
        """A prediction with NaN or inf values (NaN weights or noise, overflow) is an error, not an output."""
        bad = ~torch.isfinite(pred)
        if bad.any():
            raise ValueError(f"image {index}: the prediction holds {int(bad.sum())} non-finite values (NaN or inf) "
                             f"of {pred.numel()}; check the model weights and the noise")

    @property
    def vae_scale_factor(self) -> int:
        """Pixels per latent cell: ``2 ** (VAE blocks - 1)`` (8 for FLUX.1), as in diffusers' Flux pipelines."""
        vae = getattr(self, "vae", None)
        return 2 ** (len(vae.config.block_out_channels) - 1) if vae is not None else 8

    @property
    def latent_multiple(self) -> int:
        """Processing sizes are multiples of this: the VAE factor times the 2x2 token packing."""
        return self.vae_scale_factor * 2

    def processing_size_for(self, height: int, width: int, resolution: int) -> tuple[int, int]:
        """The one size function: the size the model sees for an ``height x width`` input at
        ``resolution`` (longest side, 0 = native): aspect kept (``processing_size``) or, with
        ``resize_mode="stretch"``, a square ``resolution x resolution`` (0 = native)."""
        multiple = self.latent_multiple
        if self.conventions.resize_mode == "stretch" and resolution > 0:
            side = processing_size(resolution, resolution, resolution, multiple=multiple)[0]
            return side, side
        return processing_size(height, width, resolution, multiple=multiple)

    @staticmethod
    def group_batches(sizes: list, batch_size: int) -> list[list[int]]:
        """Indices of images grouped into forward passes: equal processing sizes share a batch."""
        batches: list[list[int]] = []
        for i in sorted(range(len(sizes)), key=lambda i: sizes[i]):
            if batches and sizes[batches[-1][-1]] == sizes[i] and len(batches[-1]) < batch_size:
                batches[-1].append(i)
            else:
                batches.append([i])
        return batches

    def resize_image(self, image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """One input ``1 x 3 x H x W`` in [0, 1] at the processing ``size``: torch's antialiased
        bilinear on the float image, or (``resize_filter="pil"``, the reference's) PIL bilinear on
        the uint8 image."""
        if self.conventions.resize_filter == "pil":
            from PIL import Image

            pixels = (image[0].permute(1, 2, 0).float() * 255.0).round().clamp(0, 255).to(torch.uint8).cpu().numpy()
            out = np.asarray(Image.fromarray(pixels).resize((size[1], size[0]), Image.Resampling.BILINEAR))
            return torch.from_numpy(out.copy()).permute(2, 0, 1)[None].float() / 255.0
        return F.interpolate(image, size=size, mode="bilinear", antialias=True, align_corners=False)

    def prepare_contexts(self, images: list, points: list, size: tuple[int, int]) -> list[torch.Tensor]:
        """Context latents of one batch: the RGB images resized to ``size`` (and, for matting,
        the point maps at that size, :meth:`point_map`), VAE-encoded."""
        device = self._execution_device
        rgb = torch.cat([self.resize_image(img, size) for img in images])
        contexts = [modeling.encode_image(self.vae, (rgb * 2.0 - 1.0).to(device))]
        if self.task.num_context_images > 1:
            maps = [point_map_image(self.point_map(pts, tuple(img.shape[-2:]), size)) for img, pts in zip(images, points)]
            contexts.append(modeling.encode_image(self.vae, torch.stack(maps).to(device)))
        return contexts

    def point_map(self, points, image_size: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
        """The matting point map (``H x W`` in [0, 1]) at the processing ``size`` for one image of
        ``image_size``: a given map (:class:`PointMap`, drawn on the input) stretched bilinearly
        (no antialiasing, as cv2's ``INTER_LINEAR``); clicks (``point_map="click"``) through
        :func:`~edit2perceive.tasks.matting.click_point_map`; else the points' Gaussians."""
        h, w = size
        if isinstance(points, PointMap):
            values = torch.from_numpy(points.values)[None, None]
            return F.interpolate(values, size=size, mode="bilinear", align_corners=False)[0, 0].numpy()
        if self.conventions.point_map == "click":
            return click_point_map(points, image_size, h, w, sigma=self.conventions.point_map_sigma)[0]
        return self.render_point_map(scale_points(points, image_size, size), h, w)

    def render_point_map(self, points, height: int, width: int) -> np.ndarray:
        """Gaussians at ``points`` (processing-size pixels), ``"gaussian"`` or ``"reference"``."""
        sigma = self.conventions.point_map_sigma
        if self.conventions.point_map == "gaussian":
            return render_point_map(points, height, width, sigma=sigma)
        return render_reference_point_map(points, height, width, sigma=20.0 if sigma is None else sigma)

    def prepare_noise(self, batch: int, latent_shape: tuple, *, latents=None, generator=None) -> torch.Tensor:
        """Initial noise of one batch: the given ``latents``, a draw from ``generator``, or
        (default) the fixed-seed base noise used in training."""
        device, dtype = self._execution_device, self.transformer.dtype
        if latents is not None:
            return latents.to(device=device, dtype=dtype)
        if generator is not None:
            noise = torch.randn((batch, *latent_shape), generator=generator, device=generator.device)
            return noise.to(device=device, dtype=dtype)
        if self.conventions.noise == "reference":  # pipelines/base generate_noise: float32 draw, then cast
            gen = torch.Generator(device).manual_seed(int(self.config.noise_seed))
            noise = torch.randn((batch, *latent_shape), generator=gen, device=device, dtype=torch.float32)
            return noise.to(dtype=dtype)
        return flow.base_noise(latent_shape, seed=self.config.noise_seed, batch_size=batch, device=device, dtype=dtype)

    def denoise(self, noise: torch.Tensor, contexts: list, prompt: tuple, num_inference_steps: int) -> torch.Tensor:
        """The model step: Euler from ``noise`` (sigma 1) to the final latent (sigma 0)."""
        prompt_embeds, pooled = prompt
        conv = self.conventions
        indices = [1, conv.point_map_position_index][: len(contexts)]

        def velocity(x, sigma):
            return modeling.predict_velocity(
                self.transformer, x, sigma, contexts, prompt_embeds, pooled, guidance=self.config.guidance,
                context_indices=indices,
            )

        sigmas = self.sigmas(num_inference_steps)
        if conv.timestep_embedding == "reference":
            with modeling.reference_timestep_embedding(self.transformer):
                return flow.euler_sample(velocity, noise, sigmas)
        return flow.euler_sample(velocity, noise, sigmas)

    def sigmas(self, num_inference_steps: int) -> torch.Tensor:
        """The Euler grid: the one ``self.scheduler`` sets for the conventions' ``sigma_schedule``
        (:func:`edit2perceive.core.flow.scheduler_sigmas`; any flow-match scheduler gives
        ``[1, 0]`` for one step), with one step ending at ``single_step_final_sigma``."""
        if not isinstance(self.scheduler, FlowMatchEulerDiscreteScheduler):
            raise ValueError(f"the scheduler sets the sampling grid and must be a FlowMatchEulerDiscreteScheduler, "
                             f"got {type(self.scheduler).__name__}")
        conv = self.conventions
        sigmas = flow.scheduler_sigmas(self.scheduler, num_inference_steps, conv.sigma_schedule)
        if num_inference_steps == 1:  # one Euler step over [1, final sigma] (0 = exact estimate)
            sigmas = torch.tensor([float(sigmas[0]), conv.single_step_final_sigma], dtype=torch.float64)
        return sigmas

    def decode_prediction(self, latents: torch.Tensor) -> torch.Tensor:
        """Final latents -> the task's prediction at the processing size (float32)."""
        clip = self.conventions.decode_clip == "before_mean"
        return self.task.decode(modeling.decode_latents(self.vae, latents).float(), clip_channels=clip)

    def predict_batch(self, images: list, points: list, size: tuple[int, int], num_inference_steps: int, *,
                      latents=None, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
        """One forward batch at processing ``size``: (predictions, final latents)."""
        contexts = self.prepare_contexts(images, points, size)
        noise = self.prepare_noise(len(images), self.latent_shape(size), latents=latents, generator=generator)
        z1 = self.denoise(noise, contexts, self.ensure_prompt_cache().embeddings(), num_inference_steps)
        return self.decode_prediction(z1), z1

    def latent_shape(self, size: tuple[int, int]) -> tuple[int, int, int]:
        """Per-image latent shape ``C x h x w`` at processing ``size`` (``H x W``)."""
        f = self.vae_scale_factor
        return int(self.vae.config.latent_channels), size[0] // f, size[1] // f

    @torch.no_grad()
    def __call__(
        self,
        image,
        num_inference_steps: int = 1,
        processing_resolution: int | None = None,
        match_input_resolution: bool = True,
        points=None,
        batch_size: int = 1,
        latents: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        output_type: str = "np",
        ensemble_size: int = 1,
        ensemble_augmentations=DEFAULT_AUGMENTATIONS,
        output_uncertainty: bool = False,
        return_dict: bool = True,
        point_maps=None,
    ) -> Edit2PerceivePipelineOutput | tuple:
        """Predict the task's dense map for one image or a batch.

        Args:
            image: PIL image, list of PIL images, a uint8 ``H x W x 3`` array, or a float
                tensor ``B x 3 x H x W`` / ``3 x H x W`` in [0, 1]. Greyscale, RGBA (alpha
                dropped) and 16-bit images are converted to 8-bit RGB.
            num_inference_steps: 1 (default) is the single-step estimate; N > 1 runs Euler
                steps on the grid ``self.scheduler`` sets for the config's ``sigma_schedule``
                (:func:`edit2perceive.core.flow.scheduler_sigmas`; linear by default).
            processing_resolution: longest side the model sees (aspect kept, sides rounded
                to multiples of 16); 0 = native; default from the config (768).
            match_input_resolution: resize the prediction back to each input's size; else it
                stays at the processing size (:meth:`processing_size_for`).
            points: matting only: per image a list of ``(x, y)`` pixel coordinates in the
                input image, made into the point map by the ``point_map`` convention (the
                released models: clicks, each a disk of 10 sampled points).
            batch_size: rows (image, ensemble member) per forward pass; rows of equal
                processing size share one.
            latents: initial noise ``N x C x h x w`` (unpacked) at the processing size.
            generator: draw the initial noise from this generator instead of the fixed seed.
            output_type: ``"np"`` (depth / alpha ``N x H x W``, normals ``N x H x W x 3``) or
                ``"pt"`` (channels-first as diffusers' Marigold: ``N x 1 x H x W`` /
                ``N x 3 x H x W``).
            ensemble_size: predictions per image combined by the task (1 = no ensemble); the
                members differ by ``ensemble_augmentations`` (see :mod:`edit2perceive.pipelines.ensemble`).
            ensemble_augmentations: some of ``"flip"``, ``"reseed"`` (another noise draw), ``"resolution"``.
            output_uncertainty: also return the members' spread as ``uncertainty``.
            point_maps: matting only, instead of ``points``: per image a ready point map
                ``H x W`` in [0, 1] at the input's size (stretched bilinearly to the processing
                size), e.g. :func:`edit2perceive.evaluation.points.reference_point_map`; not
                with ensembles.
            return_dict: ``False`` returns the tuple ``(prediction, latent, uncertainty)``.

        Progress bars follow diffusers' ``set_progress_bar_config`` (``disable=True`` hides them).
        """
        resolution = self.check_inputs(num_inference_steps=num_inference_steps, processing_resolution=processing_resolution,
                                       batch_size=batch_size, output_type=output_type)
        if self.check_ensemble(ensemble_size, output_uncertainty) and point_maps is not None:
            raise ValueError("point_maps are not supported with ensembles (ensemble_size > 1): give points")
        members = plan_members(ensemble_size, ensemble_augmentations)
        images = load_rgb_inputs(image)
        points = self.prepare_points(points, images, point_maps)
        base_sizes = [self.processing_size_for(img.shape[-2], img.shape[-1], resolution) for img in images]
        self.check_latents(latents, len(images), base_sizes)

        # one batching loop over (image, member) rows, Marigold's shape
        rows = [(i, m) for i in range(len(images)) for m in range(len(members))]
        sizes = [self.processing_size_for(*images[i].shape[-2:], member_resolution(
            resolution, *images[i].shape[-2:], members[m].resolution_scale, step=self.latent_multiple)) for i, m in rows]
        targets = [tuple(img.shape[-2:]) if match_input_resolution else size for img, size in zip(images, base_sizes)]
        per_image: list[list] = [[None] * len(members) for _ in images]
        final_latents: list = [None] * len(images)
        for idx in self.progress_bar(self.group_batches(sizes, batch_size)):
            batch = [rows[r] for r in idx]
            flips = [members[m].flip for _, m in batch]
            imgs = [images[i].flip(-1) if flip else images[i] for (i, _), flip in zip(batch, flips)]
            pts = [flip_points(points[i], images[i].shape[-1]) if flip else points[i] for (i, _), flip in zip(batch, flips)]
            noise = self.rows_noise(batch, members, sizes[idx[0]], latents=latents, generator=generator)
            pred, z1 = self.predict_batch(imgs, pts, sizes[idx[0]], num_inference_steps, latents=noise)
            for j, (i, m) in enumerate(batch):
                self.check_prediction(pred[j], i)
                one = self.task.unflip(pred[j]) if flips[j] else pred[j]
                per_image[i][m] = self._resize_prediction(one, targets[i]).cpu()
                if m == 0:
                    final_latents[i] = z1[j].cpu()
        self.maybe_free_model_hooks()
        if ensemble_size > 1:
            predictions, uncertainty = self.ensemble_predictions(per_image, output_uncertainty)
        else:
            predictions, uncertainty = [p[0] for p in per_image], None
        out = self._pack_output(predictions, final_latents, output_type, uncertainty)
        return out if return_dict else (out.prediction, out.latent, out.uncertainty)

    def rows_noise(self, rows: list, members: list, size: tuple[int, int], *, latents=None, generator=None):
        """Initial noise of one batch of ``(image, member)`` rows at processing ``size``.

        Member noise index 0: the call's ``latents`` (at the base resolution), else the call's
        own noise (fixed seed, ``generator`` or the reference draw: :meth:`prepare_noise`, one
        draw for those rows of the batch). Index ``k > 0``: the fixed-seed noise of seed
        ``noise_seed + k`` (the same for every image), or the next draw of ``generator``."""
        shape = self.latent_shape(size)
        out: list = [None] * len(rows)
        for j, (i, m) in enumerate(rows):
            member = members[m]
            if member.noise_index == 0 and latents is not None and member.resolution_scale == 1.0:
                out[j] = latents[i]
            elif member.noise_index > 0 and generator is None:
                out[j] = flow.base_noise(shape, seed=int(self.config.noise_seed) + member.noise_index)
        rest = [j for j, n in enumerate(out) if n is None]
        if rest:
            drawn = self.prepare_noise(len(rest), shape, generator=generator)
            for j, n in zip(rest, drawn):
                out[j] = n
        device, dtype = self._execution_device, self.transformer.dtype
        return torch.stack([n.to(device=device, dtype=dtype) for n in out])

    # -- inference: test-time ensembles ------------------------------------------------------
    @staticmethod
    def check_ensemble(ensemble_size: int, output_uncertainty: bool) -> bool:
        """Validate the ensemble arguments; True when the call is an ensemble."""
        if int(ensemble_size) != ensemble_size or ensemble_size < 1:
            raise ValueError(f"ensemble_size must be a positive integer, got {ensemble_size!r}")
        if output_uncertainty and ensemble_size < 2:
            raise ValueError("output_uncertainty=True needs ensemble_size >= 2 (the spread of the ensemble members)")
        return ensemble_size > 1

    def ensemble_predictions(self, per_image: list[list[torch.Tensor]], output_uncertainty: bool):
        """Per image, the task's combination of its members (equal-size predictions):
        ``(predictions, uncertainties or None)``."""
        predictions, uncertainty = [], []
        for members in per_image:
            pred, unc = self.task.ensemble(torch.stack(members), output_uncertainty=output_uncertainty)
            predictions.append(pred.cpu())
            uncertainty.append(None if unc is None else unc.clamp_min(0.0).cpu())
        return predictions, (uncertainty if output_uncertainty else None)

    def _resize_prediction(self, pred: torch.Tensor, size) -> torch.Tensor:
        size = tuple(int(s) for s in size)
        if tuple(pred.shape[:2]) == size:
            return pred
        if pred.ndim == 3:  # normals H x W x 3: interpolate, then back to unit length
            out = F.interpolate(pred.permute(2, 0, 1)[None], size=size, mode="bilinear", align_corners=False)[0]
            return F.normalize(out, dim=0, eps=1e-6).permute(1, 2, 0)
        out = F.interpolate(pred[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]
        return out.clamp(0.0, 1.0)

    @staticmethod
    def _pack_output(predictions, latents, output_type, uncertainty=None) -> Edit2PerceivePipelineOutput:
        """Predictions (``H x W`` or ``H x W x 3`` each) into the output: stacked when sizes
        agree, else a list; ``"pt"`` channels-first (``1 x H x W`` / ``3 x H x W`` per image)."""
        def stack(items):
            if len({tuple(t.shape) for t in items}) == 1:
                return torch.stack(items)
            return items

        def to_output(items):
            if output_type == "pt":
                items = [p.permute(2, 0, 1) if p.ndim == 3 else p[None] for p in items]
            items = stack(items)
            if output_type == "np":
                return items.numpy() if isinstance(items, torch.Tensor) else [p.numpy() for p in items]
            return items

        unc = None if uncertainty is None else to_output(uncertainty)
        return Edit2PerceivePipelineOutput(prediction=to_output(predictions), latent=stack(latents), uncertainty=unc)
