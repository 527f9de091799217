"""Worker for tests/test_training_fsdp.py (not collected: no test_ prefix).

    python tests/fsdp_worker.py single OUT            # one process, global batch 4
    torchrun --nproc_per_node 2 tests/fsdp_worker.py fsdp OUT   # FSDP2 over gloo, 2 examples per rank

Both take STEPS AdamW steps of the Edit2PerceiveTrainer's loss on the same global batches of the
tiny model (sigma = 1, no multi-resolution noise, lambda = 0: the loss is a mean over examples,
so averaging two half-batch gradients equals the full-batch gradient). The FSDP run also saves a
sharded checkpoint after STEPS // 2 steps, resumes from it in a fresh model and optimizer, and
exports a diffusers folder from rank 0. Weights are written as safetensors files.
"""

import os
import sys

import numpy as np
import torch

STEPS, GLOBAL_BATCH, SIZE = 4, 4, 32


def data():
    rng = np.random.default_rng(0)
    return [{"rgb": (rng.random((SIZE, SIZE, 3)) * 255).astype(np.uint8), "valid_mask": np.ones((SIZE, SIZE), bool),
             "depth": rng.uniform(1, 5, (SIZE, SIZE)).astype(np.float32), "meta": {"id": f"ex-{i}"}}
            for i in range(STEPS * GLOBAL_BATCH)]


def build(out):
    from edit2perceive.core.prompts import encode_prompt
    from edit2perceive.tasks import get_task
    from edit2perceive.testing import tiny_kontext_components
    from edit2perceive.training import Edit2PerceiveTrainer, Edit2PerceiveTrainingArguments

    c = tiny_kontext_components(seed=0)
    cache = encode_prompt(get_task("depth").prompt, **{k: c[k] for k in ("tokenizer", "text_encoder", "tokenizer_2",
                                                                        "text_encoder_2")})
    args = Edit2PerceiveTrainingArguments(
        output_dir=out, resolution=SIZE, use_cpu=True, report_to=[], effective_batch_size=0, sigma_sampling="one",
        multires_noise=False, steps_per_epoch=1000, per_device_train_batch_size=2, disable_tqdm=True)
    trainer = Edit2PerceiveTrainer(c["transformer"], args, vae=c["vae"], prompt_cache=cache, train_dataset=data())
    return trainer, c


def train(trainer, model, optimizer, steps, start=0, rank=0, world=1):
    examples = data()
    per_rank = GLOBAL_BATCH // world
    model.train()
    for step in range(start, start + steps):
        batch = examples[step * GLOBAL_BATCH:(step + 1) * GLOBAL_BATCH][rank * per_rank:(rank + 1) * per_rank]
        loss = trainer.compute_loss(model, trainer.data_collator(batch))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


def main(mode, out):
    from safetensors.torch import save_file

    os.makedirs(out, exist_ok=True)
    if mode == "single":
        trainer, c = build(out)
        model = c["transformer"]
        train(trainer, model, torch.optim.AdamW(model.parameters(), lr=1e-3), STEPS)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(out, "single.safetensors"))
        return 0

    from edit2perceive.training.fsdp import full_state_dict, load_sharded, save_sharded, shard_dit

    _, c = build(out)  # TrainingArguments set up the gloo process group under torchrun
    rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()

    def fresh():
        trainer_, c_ = build(out)
        model = shard_dit(c_["transformer"])
        return trainer_, model, torch.optim.AdamW(model.parameters(), lr=1e-3)

    # uninterrupted
    t, model, opt = fresh()
    train(t, model, opt, STEPS, rank=rank, world=world)
    full = full_state_dict(model)
    # interrupted at STEPS // 2, resumed from a sharded checkpoint into a fresh model and optimizer
    t, model, opt = fresh()
    train(t, model, opt, STEPS // 2, rank=rank, world=world)
    ckpt = os.path.join(out, "sharded-checkpoint")
    save_sharded(ckpt, model, opt)
    torch.distributed.barrier()
    t, model, opt = fresh()
    load_sharded(ckpt, model, opt)
    train(t, model, opt, STEPS - STEPS // 2, start=STEPS // 2, rank=rank, world=world)
    resumed = full_state_dict(model)
    if rank == 0:
        save_file({k: v.contiguous() for k, v in full.items()}, os.path.join(out, "fsdp.safetensors"))
        save_file({k: v.contiguous() for k, v in resumed.items()}, os.path.join(out, "fsdp_resumed.safetensors"))
        from diffusers import FluxTransformer2DModel

        export = FluxTransformer2DModel.from_config(c["transformer"].config)
        export.load_state_dict(full)
        export.save_pretrained(os.path.join(out, "transformer"))
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
