"""``e2p convert``: turn a released Edit2Perceive checkpoint into our pipeline folder.

    e2p convert --task depth --reference-checkpoint Seq2Tri/Edit2Perceive/depth.safetensors \\
        --base-model black-forest-labs/FLUX.1-Kontext-dev --output-dir e2p-depth

The folder loads with ``Edit2PerceivePipeline.from_pretrained(DIR, base_model=...)`` (or
``e2p predict --model DIR``) and shares with ``e2p push``. Full checkpoints are converted
tensor by tensor into sharded safetensors (one shard in memory at a time); LoRA files
become a diffusers/peft adapter in ``transformer_lora/``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edit2perceive.core.base_model import DEFAULT_BASE_MODEL
from edit2perceive.tasks import TASKS


def register(subparsers) -> None:
    p = subparsers.add_parser("convert", help="convert a released reference checkpoint into a pipeline folder",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=list(TASKS), default=None,
                   help="task of the checkpoint (default: from its file name)")
    p.add_argument("--reference-checkpoint", required=True, metavar="FILE",
                   help="local .safetensors or Hub file Seq2Tri/Edit2Perceive/<task>[_lora].safetensors")
    p.add_argument("--base-model", default=DEFAULT_BASE_MODEL, metavar="DIR_OR_ID",
                   help=f"FLUX.1 Kontext base (text encoders for the prompt cache; default {DEFAULT_BASE_MODEL})")
    p.add_argument("--output-dir", required=True, type=Path, help="new (or empty) folder to write")
    p.add_argument("--repo-id", default=None, help="name used in the model card")
    p.add_argument("--max-shard-size", type=float, default=2.0, metavar="GB",
                   help="full checkpoints: size of each safetensors shard, the memory held while writing (default 2)")
    p.add_argument("--text-encoder-dtype", choices=["bfloat16", "float32"], default="bfloat16",
                   help="dtype of the base's text encoders while encoding the task prompt once (default bfloat16)")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from edit2perceive.pipelines.reference_export import convert_reference_checkpoint
    from edit2perceive.reference import CheckpointFormatError

    if args.max_shard_size <= 0:
        print("e2p convert: --max-shard-size must be > 0", file=sys.stderr)
        return 2
    try:
        out = convert_reference_checkpoint(args.reference_checkpoint, args.output_dir, task=args.task,
                                           base_model=args.base_model, repo_id=args.repo_id,
                                           max_shard_bytes=int(args.max_shard_size * 1024**3),
                                           text_encoder_dtype=getattr(torch, args.text_encoder_dtype))
    except (CheckpointFormatError, ValueError, FileExistsError, OSError) as err:
        print(f"e2p convert: {err}", file=sys.stderr)
        return 2
    print(out)
    return 0
