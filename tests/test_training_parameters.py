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
