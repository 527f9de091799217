"""How close this project is to the authors' code, item by item (docs/training.md, "Faithful to
the authors"): each measured against values recorded from the authors' own functions
(tests/fixtures/authors_conventions.npz) or against hand-computed layer sizes.

    nice python -m benchmarks.bench_conventions

- N-step grid: the reference set's sigmas against FlowMatchScheduler's; what the grid changes in
  an 8-step prediction of the tiny depth model (linear vs shifted);
- clip order: clip-then-average against vae_out_to_np (and the average-then-clip rule);
- resize: the reference set's PIL stretch and torch's antialiased bilinear against PIL on the
  uint8 image (grey levels), and what the filter changes in a 64 px prediction;
- matting point maps: click-to-prompt (app.py) at 640 x 480, 1920 x 1080 and 300 x 500, the
  benchmark prompt (eval_multiple_datasets.py) at 45 x 70, 120 x 90 and 1920 x 1080, each against
  the authors' map, now and with the previous reference mode (sigma 20 px at the given points,
  drawn at the processing size);
- multi-resolution noise statistics at a 96 x 96 latent, sigma = 1 (Marigold's construction);
- weight-decay and LoRA parameter counts of the full-size DiT (meta device).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.common import machine, markdown_table

FIXTURES = "tests/fixtures/authors_conventions.npz"


def tiny_pipe(task="depth", reference: bool = False, **changes):
    """A tiny random pipeline with our conventions (or the reference set) and ``changes``."""
    from edit2perceive import Edit2PerceivePipeline
    from edit2perceive.pipelines import Conventions
    from edit2perceive.testing import tiny_kontext_components

    conventions = (Conventions.reference() if reference else Conventions()).replace(**changes)
    pipe = Edit2PerceivePipeline(**tiny_kontext_components(seed=0), task=task, conventions=conventions)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def grid_rows(ref) -> list[dict]:
    from PIL import Image

    from edit2perceive import flow
    from edit2perceive.pipelines import Conventions

    rows = []
    for n in (2, 4, 8):
        ours = flow.inference_sigmas(n, Conventions.reference().sigma_schedule)[:-1].numpy()
        rows.append({"item": f"grid N={n}", "measure": "max abs(sigma - authors')", "now": np.abs(ours - ref[f"grid_{n}_sigmas"]).max()})
    img = Image.fromarray((np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8))
    lin = tiny_pipe(sigma_schedule="linear")(img, num_inference_steps=8, processing_resolution=64).prediction[0]
    shf = tiny_pipe(sigma_schedule="shifted")(img, num_inference_steps=8, processing_resolution=64).prediction[0]
    rows.append({"item": "grid, 8-step tiny depth", "measure": "norm(linear - shifted) / norm(shifted)",
                 "now": float(np.linalg.norm(lin - shf) / np.linalg.norm(shf))})
    return rows


def clip_rows(ref) -> list[dict]:
    from edit2perceive.tasks import get_task

    x = torch.from_numpy(ref["decode_input"])
    rows = []
    for task in ("depth", "matting"):
        want = ref[f"decode_{task}"]
        now = get_task(task).decode(x, clip_channels=True)[0].numpy()
        before = get_task(task).decode(x)[0].numpy()
        rows.append({"item": f"clip order ({task})", "measure": "max abs(pred - authors')", "now": np.abs(now - want).max(),
                     "before": np.abs(before - want).max()})
    return rows


def resize_rows(ref) -> list[dict]:
    from PIL import Image

    from edit2perceive.io.images import load_rgb_inputs

    ref_pipe, ours = tiny_pipe(resize_filter="pil"), tiny_pipe()
    rows = []
    big = (np.random.default_rng(1).random((1080, 1920, 3)) * 255).astype(np.uint8)
    cases = [(k, ref[f"pil_{k}_input"], ref[f"pil_{k}_stretched"]) for k in ("down", "up", "wide")]
    cases.append(("1920x1080 -> 768", big, np.asarray(Image.fromarray(big).resize((768, 768), Image.Resampling.BILINEAR))))
    for name, img, want in cases:
        t = load_rgb_inputs(img)[0]
        size = want.shape[:2]
        now = ref_pipe.resize_image(t, size)[0].permute(1, 2, 0).numpy() * 255
        before = ours.resize_image(t, size)[0].permute(1, 2, 0).numpy() * 255
        rows.append({"item": f"resize {name}", "measure": "max abs(grey level - PIL's)", "now": np.abs(now - want).max(),
                     "before": np.abs(before - want).max()})
    img = Image.fromarray(big[:300, :400])
    a = tiny_pipe(resize_mode="stretch", resize_filter="pil")(img, processing_resolution=64).prediction[0]
    b = tiny_pipe(resize_mode="stretch")(img, processing_resolution=64).prediction[0]
    rows.append({"item": "resize, 64 px tiny depth", "measure": "max abs(pred(PIL) - pred(torch))", "now": np.abs(a - b).max()})
    return rows


def point_map_rows(ref) -> list[dict]:
    from edit2perceive.evaluation.points import oracle_points, reference_point_map
    from edit2perceive.pipelines.pipeline import PointMap, scale_points
    from edit2perceive.tasks.matting import click_point_map, render_reference_point_map

    pipe = tiny_pipe("matting", reference=True)
    rows = []
    for case in ("vga", "fullhd", "portrait"):
        w, h = (int(v) for v in ref[f"click_{case}_size_wh"])
        clicks = ref[f"click_{case}_clicks"].astype(np.float64)
        want = ref[f"click_{case}_map_every8"]
        now = click_point_map(clicks, (h, w), 768, 768)[0][::8, ::8]
        before = render_reference_point_map(scale_points(clicks, (h, w), (768, 768)), 768, 768, sigma=20.0)[::8, ::8]
        rows.append({"item": f"click prompt {w}x{h}", "measure": "max abs(map - authors') at 768",
                     "now": np.abs(now - want).max(), "before": np.abs(before - want).max()})
    h, w = 1080, 1920
    yy, xx = np.mgrid[:h, :w]
    d = np.sqrt(((yy - h * 0.55) / (h * 0.3)) ** 2 + ((xx - w * 0.45) / (w * 0.25)) ** 2)
    fullhd = (np.clip((1.15 - d) / 0.3, 0, 1) * 255).round().astype(np.uint8)
    for case, alpha_u8, size, key in (("a", ref["eval_a_alpha_u8"], 64, "eval_a_map_64"),
                                      ("b", ref["eval_b_alpha_u8"], 64, "eval_b_map_64"),
                                      ("fullhd", fullhd, 768, "eval_fullhd_map_768_every8")):
        alpha = alpha_u8.astype(np.float32) / 255.0
        step = 8 if case == "fullhd" else 1
        want = ref[key]
        values, _, _ = reference_point_map(alpha)
        now = pipe.point_map(PointMap(values), alpha.shape, (size, size))[::step, ::step]
        pts, _ = oracle_points(alpha)
        before = render_reference_point_map(scale_points(pts, alpha.shape, (size, size)), size, size, sigma=20.0)
        rows.append({"item": f"benchmark prompt {alpha.shape[1]}x{alpha.shape[0]}",
                     "measure": f"max abs(map - authors') at {size}", "now": np.abs(now - want).max(),
                     "before": np.abs(before[::step, ::step] - want).max()})
    return rows


def noise_stats(x: torch.Tensor) -> tuple[float, float]:
    """(lag-1 autocorrelation along x, variance share of the 8 x 8 block means)."""
    a, b = x[..., :-1].flatten(), x[..., 1:].flatten()
    lag1 = float(torch.corrcoef(torch.stack([a, b]))[0, 1])
    share = float(F.avg_pool2d(x, 8).var() / x.var())
    return lag1, share


def noise_rows() -> list[dict]:
    from edit2perceive import flow

    stats = []
    for seed in range(20):
        g = torch.Generator().manual_seed(seed)
        base = torch.randn((4, 16, 96, 96), generator=g)
        stats.append(noise_stats(flow.multi_resolution_noise(base, 1.0, strength=0.9, anneal="sigma", generator=g)))
    lag1, share = np.mean(stats, axis=0)
    return [{"item": "multi-res noise 96x96, sigma 1", "measure": "lag-1 autocorrelation", "now": lag1},
            {"item": "multi-res noise 96x96, sigma 1", "measure": "variance share of 8x8 means", "now": share}]


def count_rows() -> list[dict]:
    from diffusers import FluxTransformer2DModel
    from peft import LoraConfig
    from peft.tuners.tuners_utils import check_target_module_exists
    from transformers import Trainer

    from edit2perceive.testing import FLUX_KONTEXT_DEV_TRANSFORMER_CONFIG
    from edit2perceive.training.parameters import decay_parameter_names, lora_target_modules

    with torch.device("meta"):
        model = FluxTransformer2DModel(**FLUX_KONTEXT_DEV_TRANSFORMER_CONFIG)
    total = sum(p.numel() for p in model.parameters())
    decay, by_name = set(decay_parameter_names(model)), set(Trainer.get_decay_parameter_names(None, model))
    rows = [{"item": "weight decay (11.9B DiT)", "measure": "parameters exempt", "now": sum(
        p.numel() for n, p in model.named_parameters() if n not in decay), "before": sum(
        p.numel() for n, p in model.named_parameters() if n not in by_name)},
            {"item": "weight decay (11.9B DiT)", "measure": "parameters in total", "now": total}]
    for preset in ("released", "attention"):
        config = LoraConfig(r=64, target_modules=lora_target_modules(preset))
        count = sum(64 * (m.in_features + m.out_features) for n, m in model.named_modules()
                    if isinstance(m, torch.nn.Linear) and check_target_module_exists(config, n))
        rows.append({"item": f"LoRA rank 64, preset {preset!r}", "measure": "adapter parameters", "now": count})
    return rows


def main(argv=None) -> int:
    ref = np.load(FIXTURES)
    rows = grid_rows(ref) + clip_rows(ref) + resize_rows(ref) + point_map_rows(ref) + noise_rows() + count_rows()
    for r in rows:
        for k in ("now", "before"):
            v = r.get(k, "")
            r[k] = v if isinstance(v, str) else (f"{int(v):,}" if float(v).is_integer() and abs(v) > 1 else f"{float(v):.3g}")
    print(f"\n{machine()}\n")
    print(markdown_table(rows, ["item", "measure", "now", "before"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
