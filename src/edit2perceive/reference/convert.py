"""Streaming conversion of the released checkpoints to diffusers (see :mod:`.formats`).

Files are read with safetensors' lazy ``safe_open``: headers first (keys, shapes, dtypes:
everything is validated before any weight is read), then tensor by tensor, fused layers
by row slices. Writing goes shard by shard, so converting holds at most one shard of
converted tensors, never two copies of the model. Nothing is unpickled.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import torch

from .formats import (
    CheckpointFormatError,
    Piece,
    check_pieces,
    detect_format,
    fused_sizes,
    infer_transformer_config,
    lora_layers,
    transformer_pieces,
)

#: The authors' Hub repository (REFERENCE.md) and its files.
REFERENCE_REPO = "Seq2Tri/Edit2Perceive"
REFERENCE_FILES = {
    ("depth", "full"): "depth.safetensors", ("normal", "full"): "normal.safetensors",
    ("matting", "full"): "matting.safetensors", ("depth", "lora"): "depth_lora.safetensors",
    ("normal", "lora"): "normal_lora.safetensors", ("matting", "lora"): "matting_lora.safetensors",
}
DEFAULT_MAX_SHARD_BYTES = 2 * 1024**3
WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
LORA_WEIGHTS_NAME = "pytorch_lora_weights.safetensors"  # diffusers' save_lora_adapter name


def resolve_checkpoint(path: str | os.PathLike, *, cache_dir=None, token=None, revision=None) -> str:
    """A local ``.safetensors`` file, or a Hub file ``owner/repo/filename`` (downloaded
    through huggingface_hub, e.g. ``Seq2Tri/Edit2Perceive/depth.safetensors``)."""
    text = os.fspath(path)
    if os.path.isfile(text):
        return text
    parts = text.split("/")
    if os.path.isabs(text) or len(parts) < 3 or os.path.exists(parts[0]):
        raise FileNotFoundError(f"{text}: no such checkpoint file (a Hub file is written owner/repo/filename)")
    from huggingface_hub import hf_hub_download

    return hf_hub_download("/".join(parts[:2]), "/".join(parts[2:]), cache_dir=cache_dir, token=token,
                           revision=revision)


def _open(path: str):
    from safetensors import safe_open

    if not str(path).endswith(".safetensors"):
        raise CheckpointFormatError(f"{path}: expected a .safetensors file (pickled checkpoints are never loaded)")
    try:
        return safe_open(path, framework="pt", device="cpu")
    except Exception as err:  # safetensors raises its own error types for bad headers
        raise CheckpointFormatError(f"{path}: not a readable safetensors file ({err})") from err


def read_header(path: str) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    """``(shapes, dtypes)`` of every tensor, from the header only."""
    with _open(path) as f:
        shapes, dtypes = {}, {}
        for key in f.keys():
            sl = f.get_slice(key)
            shapes[key], dtypes[key] = tuple(sl.get_shape()), sl.get_dtype()
    return shapes, dtypes


def checkpoint_format(path: str) -> str:
    """``"full"`` or ``"lora"`` (see :func:`.formats.detect_format`)."""
    with _open(path) as f:
        return detect_format(f.keys())


def _expected_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    from diffusers import FluxTransformer2DModel

    with torch.device("meta"):
        model = FluxTransformer2DModel.from_config(config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


#: safetensors dtypes of weights; anything else (BOOL, I8, U8, ...) is not a checkpoint of ours
FLOAT_DTYPES = frozenset({"BF16", "F16", "F32", "F64", "F8_E4M3", "F8_E5M2"})


def check_dtypes(path: str, dtypes: dict[str, str]) -> None:
    """Every tensor of a checkpoint is floating point (``CheckpointFormatError`` naming one that is not)."""
    bad = sorted(k for k, d in dtypes.items() if d not in FLOAT_DTYPES)
    if bad:
        raise CheckpointFormatError(f"{path}: tensor {bad[0]} is {dtypes[bad[0]]}, not floating-point weights "
                                    f"({len(bad)} such tensors; expected {', '.join(sorted(FLOAT_DTYPES))})")


def _check_finite(path: str, key: str, tensor: torch.Tensor) -> None:
    bad = ~torch.isfinite(tensor)
    if bad.any():
        raise CheckpointFormatError(f"{path}: tensor {key} holds {int(bad.sum())} non-finite values (NaN or inf) of "
                                    f"{tensor.numel()}; a model with them predicts nothing usable")


def transformer_plan(path: str, config: dict | None = None, *, axes_dims_rope=None) -> tuple[dict, list[Piece]]:
    """``(config, pieces)`` of a full checkpoint, validated against the config's model
    (floating-point tensors of the expected keys and shapes)."""
    shapes, dtypes = read_header(path)
    check_dtypes(path, dtypes)
    detect = detect_format(shapes)
    if detect != "full":
        raise CheckpointFormatError(f"{path}: a {detect} checkpoint, not a full DiT state dict")
    pieces = transformer_pieces(shapes)
    if config is None:
        config = infer_transformer_config(shapes, axes_dims_rope)
    else:
        config = {k: v for k, v in dict(config).items() if not k.startswith("_")}
    try:
        check_pieces(pieces, shapes, _expected_shapes(config))
    except CheckpointFormatError as err:
        raise CheckpointFormatError(f"{path}: {err}") from None
    return config, pieces


def iter_transformer_tensors(path: str, pieces: list[Piece], *, dtype: torch.dtype | None = None):
    """Yield ``(diffusers key, tensor)`` one at a time (fused layers read by row slices);
    ``CheckpointFormatError`` for a tensor holding NaN or inf."""
    with _open(path) as f:
        for p in pieces:
            tensor = f.get_tensor(p.source) if p.rows is None else f.get_slice(p.source)[p.rows[0]:p.rows[1]]
            tensor = tensor.contiguous()
            _check_finite(path, p.source, tensor)
            yield p.target, (tensor if dtype is None else tensor.to(dtype))


def load_reference_transformer(path: str, *, config: dict | None = None, torch_dtype: torch.dtype | None = None):
    """A diffusers ``FluxTransformer2DModel`` from a full reference checkpoint.

    Built on the meta device and filled tensor by tensor (``assign``) with the tensors
    safetensors reads, which are copy-on-write views of the memory-mapped file: no second
    copy is made (pages are read as weights are used; writes stay private). ``config``
    defaults to one inferred from the shapes; the file's dtype (bf16) is kept unless
    ``torch_dtype`` is given.
    """
    from diffusers import FluxTransformer2DModel

    config, pieces = transformer_plan(path, config)
    with torch.device("meta"):
        model = FluxTransformer2DModel.from_config(config)
    state = dict(iter_transformer_tensors(path, pieces, dtype=torch_dtype))
    model.load_state_dict(state, strict=True, assign=True)
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:
        raise CheckpointFormatError(f"{path}: no weights for {left[:3]}")
    return model.eval()


def _shards(sizes: list[tuple[str, int]], max_bytes: int) -> list[list[str]]:
    shards: list[list[str]] = [[]]
    used = 0
    for key, n in sizes:
        if shards[-1] and used + n > max_bytes:
            shards.append([])
            used = 0
        shards[-1].append(key)
        used += n
    return shards


def save_reference_transformer(path: str, folder: str | os.PathLike, *, config: dict | None = None,
                               max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES, progress: bool = True) -> Path:
    """Write a diffusers ``transformer`` folder (``config.json`` + safetensors shards and
    index) from a full reference checkpoint, one shard in memory at a time."""
    from safetensors.torch import save_file
    from tqdm.auto import tqdm

    config, pieces = transformer_plan(path, config)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    shapes, dtypes = read_header(path)
    itemsize = {"BF16": 2, "F16": 2, "F32": 4, "F64": 8, "I64": 8, "I32": 4, "U8": 1, "I8": 1}
    sizes = []
    for p in pieces:
        shape = shapes[p.source] if p.rows is None else (p.rows[1] - p.rows[0], *shapes[p.source][1:])
        n = 1
        for s in shape:
            n *= s
        sizes.append((p.target, n * itemsize.get(dtypes[p.source], 4)))
    groups = _shards(sizes, max_shard_bytes)
    by_target = {p.target: p for p in pieces}
    names = ([WEIGHTS_NAME] if len(groups) == 1 else
             [f"diffusion_pytorch_model-{i + 1:05d}-of-{len(groups):05d}.safetensors" for i in range(len(groups))])
    weight_map = {}
    bar = tqdm(total=len(pieces), desc="convert transformer", unit="tensor", disable=not progress)
    for name, group in zip(names, groups):
        tensors = dict(iter_transformer_tensors(path, [by_target[t] for t in group]))
        save_file(tensors, str(folder / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(tensors, name))
        bar.update(len(tensors))
        del tensors
    bar.close()
    if len(groups) > 1:
        index = {"metadata": {"total_size": sum(n for _, n in sizes)}, "weight_map": dict(sorted(weight_map.items()))}
        (folder / f"{WEIGHTS_NAME}.index.json").write_text(json.dumps(index, indent=2) + "\n")
    full_config = {"_class_name": "FluxTransformer2DModel", "_diffusers_version": _diffusers_version(),
                   **{k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}}
    (folder / "config.json").write_text(json.dumps(full_config, indent=2, sort_keys=True) + "\n")
    return folder


def _diffusers_version() -> str:
    import diffusers

    return diffusers.__version__


# -- LoRA ---------------------------------------------------------------------------------
def convert_reference_lora(path: str, *, transformer=None) -> tuple[dict[str, torch.Tensor], dict]:
    """``(state_dict, lora_config)`` in diffusers/peft form from a kohya reference LoRA.

    Keys are ``<diffusers module>.lora_A.weight`` / ``.lora_B.weight``; a fused layer's
    ``A`` is copied to every part and its ``B`` split by rows (exact). ``lora_config`` holds
    ``LoraConfig`` arguments with each layer's own rank and ``alpha`` (no scale is folded
    into the weights). With ``transformer`` every target is checked to be a ``Linear`` of
    matching shape.
    """
    lora: dict[str, torch.Tensor] = {}
    ranks: dict[str, int] = {}
    alphas: dict[str, float] = {}
    modules = dict(transformer.named_modules()) if transformer is not None else None
    check_dtypes(path, {k: d for k, d in read_header(path)[1].items() if k.endswith(".weight")})  # alpha: any number
    with _open(path) as f:
        layers = lora_layers(f.keys())
        for layer in layers:
            down = f.get_tensor(layer.stem + ".lora_down.weight")
            up = f.get_tensor(layer.stem + ".lora_up.weight")
            alpha = f.get_tensor(layer.stem + ".alpha")
            for suffix, t in ((".lora_down.weight", down), (".lora_up.weight", up), (".alpha", alpha)):
                _check_finite(path, layer.stem + suffix, t)
            if down.ndim != 2 or up.ndim != 2 or up.shape[1] != down.shape[0] or alpha.numel() != 1:
                raise CheckpointFormatError(
                    f"{path}: {layer.stem}: lora_down {tuple(down.shape)}, lora_up {tuple(up.shape)}, alpha "
                    f"{tuple(alpha.shape)} are not r x in, out x r and a scalar")
            rank = down.shape[0]
            if layer.fused:
                sizes = fused_sizes(layer.fused, up.shape[0], down.shape[1], layer.stem + ".lora_up.weight")
                ups = torch.split(up, sizes, dim=0)
            else:
                ups = (up,)
            for module, part in zip(layer.modules, ups):
                if modules is not None:
                    target = modules.get(module)
                    want = (getattr(target, "out_features", None), getattr(target, "in_features", None))
                    if want != (part.shape[0], down.shape[1]):
                        raise CheckpointFormatError(
                            f"{path}: {layer.stem}.lora_up.weight: {module} needs out x in {want}, the LoRA gives "
                            f"{(part.shape[0], down.shape[1])}")
                lora[f"{module}.lora_A.weight"] = down.clone()
                lora[f"{module}.lora_B.weight"] = part.contiguous().clone()
                ranks[module], alphas[module] = rank, float(alpha.item())
    return lora, _lora_config(ranks, alphas)


def _lora_config(ranks: dict[str, int], alphas: dict[str, float]) -> dict:
    r = Counter(ranks.values()).most_common(1)[0][0]
    a = Counter(alphas.values()).most_common(1)[0][0]
    return {
        "r": int(r), "lora_alpha": a, "target_modules": sorted(ranks), "lora_dropout": 0.0, "bias": "none",
        "rank_pattern": {m: v for m, v in ranks.items() if v != r},
        "alpha_pattern": {m: v for m, v in alphas.items() if v != a},
    }


def load_reference_lora(transformer, path: str, *, adapter_name: str = "default"):
    """Convert a reference LoRA and load it as a peft adapter onto ``transformer``."""
    state, config = convert_reference_lora(path, transformer=transformer)
    transformer.load_lora_adapter(state, adapter_name=adapter_name, prefix=None, metadata=config)
    return transformer


def save_reference_lora(path: str, folder: str | os.PathLike) -> Path:
    """Write the converted adapter as diffusers' ``save_lora_adapter`` does
    (``pytorch_lora_weights.safetensors`` with the LoRA config in its metadata)."""
    from diffusers.loaders.lora_base import LORA_ADAPTER_METADATA_KEY
    from safetensors.torch import save_file

    state, config = convert_reference_lora(path)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(state, str(folder / LORA_WEIGHTS_NAME),
              metadata={"format": "pt", LORA_ADAPTER_METADATA_KEY: json.dumps(config, indent=2, sort_keys=True)})
    return folder
