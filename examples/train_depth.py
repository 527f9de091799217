"""Train an Edit2Perceive depth model.

    accelerate launch examples/train_depth.py     # no arguments: settings that fit this machine, said in line 1
    accelerate launch examples/train_depth.py --model tiny --output_dir out/depth --max_steps 300   # offline demo
    accelerate launch --config_file examples/configs/single_gpu.yaml examples/train_depth.py \
        --model black-forest-labs/FLUX.1-Kontext-dev --data DATA_DIR --output_dir out/depth --bf16 \
        --gradient_checkpointing   # the paper's recipe: lr 3e-5, effective batch 16, 6000 steps (the defaults)
    # add --eval_strategy steps --eval_steps 500 to log eval_loss and the task metric on held-out scenes

All options: python examples/train_depth.py --help (Edit2PerceiveTrainingArguments + RecipeArguments).
See docs/training.md.
"""

import sys

from edit2perceive.training.recipe import main

if __name__ == "__main__":
    sys.exit(main("depth"))
