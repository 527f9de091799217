"""LoRA target presets and the weight-decay rule, counted on the full-size FLUX.1 Kontext-dev
config on the meta device (no memory) against hand-computed layer sizes."""

import pytest
import torch
from diffusers import FluxTransformer2DModel
from peft import LoraConfig
from peft.tuners.tuners_utils import check_target_module_exists
from transformers import Trainer

from edit2perceive.testing import FLUX_KONTEXT_DEV_TRANSFORMER_CONFIG
from edit2perceive.training import Edit2PerceiveTrainingArguments
from edit2perceive.training.parameters import LORA_PRESETS, decay_parameter_names, lora_target_modules
from edit2perceive.training.trainer import Edit2PerceiveTrainer

D, MLP, RANK = 3072, 12288, 64  # hidden size, feed-forward width, the released LoRAs' rank


@pytest.fixture(scope="module")
def full_size():
    with torch.device("meta"):
        return FluxTransformer2DModel(**FLUX_KONTEXT_DEV_TRANSFORMER_CONFIG)


def lora(i, o):
    return RANK * (i + o)


def adapter_parameters(model, preset) -> int:
    config = LoraConfig(r=RANK, target_modules=lora_target_modules(preset))
    return sum(lora(m.in_features, m.out_features) for name, m in model.named_modules()
               if isinstance(m, torch.nn.Linear) and check_target_module_exists(config, name))


def test_released_lora_preset_counts(full_size):
    # double block: q k v + added q k v, two output projections, two feed-forwards (in, out),
    # two AdaLN modulations (6 x D); single block: q k v, proj_mlp, proj_out (linear2), modulation (3 x D)
    double = 6 * lora(D, D) + 2 * lora(D, D) + 2 * (lora(D, MLP) + lora(MLP, D)) + 2 * lora(D, 6 * D)
    single = 3 * lora(D, D) + lora(D, MLP) + lora(D + MLP, D) + lora(D, 3 * D)
    assert adapter_parameters(full_size, "released") == 19 * double + 38 * single == 343_670_784
    # the reference's LoRA on DiffSynth's fused layers (one A per fused layer): 306M
    fused = 19 * (2 * lora(D, 3 * D) + 2 * lora(D, D) + 2 * (lora(D, MLP) + lora(MLP, D)) + 2 * lora(D, 6 * D)) + \
        38 * (lora(D, 3 * D + MLP) + lora(D + MLP, D) + lora(D, 3 * D))
    assert fused == 306_315_264
    assert adapter_parameters(full_size, "attention") == 19 * 8 * lora(D, D) + 38 * 3 * lora(D, D) == 104_595_456
    assert Edit2PerceiveTrainingArguments(output_dir="/tmp/x").lora_target_modules == "released"


def test_released_preset_leaves_the_output_layers_frozen(tiny_components):
    model = FluxTransformer2DModel.from_config(tiny_components["transformer"].config)
    model.add_adapter(LoraConfig(r=2, lora_alpha=2, target_modules=LORA_PRESETS["released"]))
    adapted = {n.rsplit(".lora_A", 1)[0] for n, _ in model.named_modules() if n.endswith("lora_A")}
    assert "proj_out" not in adapted and "norm_out.linear" not in adapted and "x_embedder" not in adapted
    assert {"single_transformer_blocks.0.proj_out", "single_transformer_blocks.0.norm.linear",
            "transformer_blocks.0.ff.net.2", "transformer_blocks.0.norm1_context.linear"} <= adapted
    assert lora_target_modules("to_q, to_k") == ["to_q", "to_k"]
    with pytest.raises(ValueError, match="preset"):
        lora_target_modules(" , ")


def test_weight_decay_exempts_biases_and_norm_scales_only(full_size):
    total = sum(p.numel() for p in full_size.parameters())
    decay = set(decay_parameter_names(full_size))
    exempt = {n: p.numel() for n, p in full_size.named_parameters() if n not in decay}
    head = 128
    rms = {f"transformer_blocks.{i}.attn.{k}.weight" for i in range(19)
           for k in ("norm_q", "norm_k", "norm_added_q", "norm_added_k")}
    rms |= {f"single_transformer_blocks.{i}.attn.{k}.weight" for i in range(38) for k in ("norm_q", "norm_k")}
    assert set(exempt) == rms | {n for n, _ in full_size.named_parameters() if n.endswith(".bias")}
    assert sum(exempt[n] for n in rms) == (19 * 4 + 38 * 2) * head
    assert sum(exempt.values()) == 3_085_376 and total == 11_901_408_320
    # the AdaLN modulation Linear layers decay (a name rule with "norm" exempted them: 1.08B parameters)
    assert {"single_transformer_blocks.0.norm.linear.weight", "transformer_blocks.0.norm1.linear.weight",
            "norm_out.linear.weight"} <= decay
    by_name = set(Trainer.get_decay_parameter_names(None, full_size))
    assert sum(p.numel() for n, p in full_size.named_parameters() if n not in by_name) == 1_078_904_896
    assert Edit2PerceiveTrainer.get_decay_parameter_names(None, full_size) == decay_parameter_names(full_size)


def test_zero2_memory_accounting_and_shipped_config():
    """ZeRO-2 bf16 (the reference's numerics): 2P weights, 2P/N gradients, 12P/N fp32 master + moments."""
    from pathlib import Path

    import yaml

    from edit2perceive.training.memory import MemoryEstimate, zero2_estimate

    p = 1000
    bf16 = MemoryEstimate(weights=2 * p, gradients=2 * p, optimizer_states=2 * p, compensation=0, frozen=7,
                          activations=11)
    gpu, cpu = zero2_estimate(bf16, 4)
    assert (gpu.weights, gpu.gradients, gpu.optimizer_states, gpu.frozen, gpu.activations, cpu) == (
        2000, 500, 3000, 7, 11, 0)
    gpu, cpu = zero2_estimate(bf16, 1, offload=True)
    assert (gpu.gradients, gpu.optimizer_states, cpu) == (2000, 0, 12000)
    with pytest.raises(ValueError, match="num_gpus"):
        zero2_estimate(bf16, 0)
    config = yaml.safe_load((Path(__file__).parents[1] / "examples/configs/deepspeed_zero2_offload.yaml").read_text())
    ds = config["deepspeed_config"]
    # the authors' configs/accelerate_config_zero2offload.yaml: ZeRO-2, bf16, optimizer and parameters on the CPU
    assert (config["distributed_type"], config["mixed_precision"], ds["zero_stage"]) == ("DEEPSPEED", "bf16", 2)
    assert ds["offload_optimizer_device"] == ds["offload_param_device"] == "cpu"


def test_argument_help_cites_the_right_sources():
    """The paper gives no resolution; the reference trains matting at 512; its ConstantLR() starts at
    lr / 3; its bf16 keeps fp32 masters (DeepSpeed ZeRO-2): pure bf16 is this project's choice."""
    from dataclasses import fields

    helps = {f.name: f.metadata.get("help", "") for f in fields(Edit2PerceiveTrainingArguments)}
    assert "Paper: 768" not in helps["resolution"] and "512" in helps["resolution"]
    assert "lr / 3" in helps["lr_scheduler_type"] and "first 5 steps" in helps["lr_scheduler_type"]
    assert "ZeRO-2" in helps["master_weights"] and "as the reference trains" not in helps["master_weights"]
    assert "released" in helps["lora_target_modules"] and "'attention'" in helps["lora_target_modules"]
    assert Edit2PerceiveTrainingArguments(output_dir="/tmp/x").task_options()["hole_fill"] == "near"
