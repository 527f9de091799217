"""Train an Edit2Perceive normal model.

    accelerate launch examples/train_normal.py --model tiny --output_dir out/normal --max_steps 300   # offline demo
    accelerate launch --config_file examples/configs/single_gpu.yaml examples/train_normal.py \
        --model black-forest-labs/FLUX.1-Kontext-dev --data DATA_DIR --output_dir out/normal --bf16 \
        --per_device_train_batch_size 16 --learning_rate 3e-5 --max_steps 6000 --gradient_checkpointing

All options: python examples/train_normal.py --help (Edit2PerceiveTrainingArguments + RecipeArguments).
"""

import sys

from edit2perceive.training.recipe import main

if __name__ == "__main__":
    sys.exit(main("normal"))
