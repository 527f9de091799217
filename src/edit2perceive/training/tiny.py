"""The tiny-model recipe: settings of a run of CPU minutes on synthetic scenes, and the
images its VAE is fitted on. Used by the recipe's machine defaults (``examples/train_*.py``
with the tiny model) and by the demo's tiny runs (:mod:`edit2perceive.demo.tiny_run`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class TinyRunConfig:
    """One tiny run: task, image size, data sizes, VAE fitting and training steps, seeds;
    ``training_overrides`` go to the training arguments as given."""

    task: str = "depth"
    size: int = 64
    num_train: int = 256
    num_val: int = 24
    vae_steps: int = 400
    train_steps: int = 300
    batch_size: int = 8
    learning_rate: float = 2e-3
    seed: int = 0
    data_seed: int = 0
    training_overrides: dict = field(default_factory=dict)


#: the bare ``accelerate launch examples/train_*.py`` on a CPU: first training step within about 2
#: minutes and done within 10 on a shared 2-core machine (32 px: the VAE fit and the steps are
#: about 8x cheaper than at 64 px)
CPU_QUICK_RUN = TinyRunConfig(size=32, num_train=128, vae_steps=100, train_steps=300)


def target_images(task, examples: list[dict]) -> torch.Tensor:
    """RGB inputs and the task's encoded targets of ``examples`` as one batch (model range),
    the images a tiny VAE is fitted on."""
    from ..core.modeling import rgb_to_model_input

    imgs = [rgb_to_model_input(ex["rgb"])[0] for ex in examples]
    imgs += [task.encode_target(ex[task.target_key], ex.get("valid_mask")).image for ex in examples]
    return torch.stack(imgs)
