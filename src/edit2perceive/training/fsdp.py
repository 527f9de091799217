"""FSDP2 (``torch.distributed.fsdp.fully_shard``) for the Kontext DiT, and sharded checkpoints.

The wrapping policy is the one ``examples/configs/fsdp.yaml`` gives accelerate: every
``FluxTransformerBlock`` (19 in FLUX.1) and ``FluxSingleTransformerBlock`` (38) is its own FSDP
unit, then the root (embedders, final norm and projection). Parameters, gradients and
optimizer states are sharded across the mesh; gradients are averaged across ranks by the
reduce-scatter, so N ranks on N slices of a global batch take the step one process takes on
the whole batch.

accelerate's FSDP plugin needs GPUs; this module is what runs FSDP on CPUs (gloo), e.g.
``torchrun --nproc_per_node 2`` (see tests/fsdp_worker.py), and the same calls run on GPUs.

Sharded checkpoints use ``torch.distributed.checkpoint`` (each rank writes its shards, no
pickles of the model); :func:`full_state_dict` gathers the full weights for a diffusers
``save_pretrained`` folder.
"""

from __future__ import annotations

import torch


def flux_block_classes() -> tuple[type, ...]:
    from diffusers.models.transformers.transformer_flux import (
        FluxSingleTransformerBlock,
        FluxTransformerBlock,
    )

    return FluxTransformerBlock, FluxSingleTransformerBlock


def shard_dit(model: torch.nn.Module, mesh=None, *, reshard_after_forward: bool = True) -> torch.nn.Module:
    """Apply ``fully_shard`` to every Flux block, then to ``model`` itself (in place; returned).

    ``mesh``: a 1-D ``DeviceMesh``; default: all ranks of the default process group on the
    current device type (``cpu`` without CUDA)."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    if mesh is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
        mesh = init_device_mesh(device, (torch.distributed.get_world_size(),))
    blocks = flux_block_classes()
    units = [m for m in model.modules() if isinstance(m, blocks)]
    if not units:
        raise ValueError(f"{type(model).__name__} has no Flux blocks to shard (expected {[c.__name__ for c in blocks]})")
    for module in units:
        fully_shard(module, mesh=mesh, reshard_after_forward=reshard_after_forward)
    fully_shard(model, mesh=mesh, reshard_after_forward=reshard_after_forward)
    return model


def save_sharded(directory: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Every rank writes its shards of the model and optimizer state to ``directory`` (DCP)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    model_state, optim_state = get_state_dict(model, optimizer)
    dcp.save({"model": model_state, "optimizer": optim_state}, checkpoint_id=directory)


def load_sharded(directory: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Load what :func:`save_sharded` wrote into an identically sharded model and optimizer."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    model_state, optim_state = get_state_dict(model, optimizer)
    state = {"model": model_state, "optimizer": optim_state}
    dcp.load(state, checkpoint_id=directory)
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"])


def full_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The full (unsharded) weights on the CPU, on every rank (for ``save_pretrained`` on rank 0)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


__all__ = ["flux_block_classes", "full_state_dict", "load_sharded", "save_sharded", "shard_dit"]
