"""The reference conventions against values recorded from the authors' own functions
(tests/fixtures/authors_conventions.npz; provenance in authors_conventions.json: repository,
commit, file, function and inputs of every entry)."""

import json
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from PIL import Image

from edit2perceive import Edit2PerceivePipeline, flow
from edit2perceive.evaluation.points import reference_point_map
from edit2perceive.io.images import load_rgb_inputs
from edit2perceive.pipelines import Conventions, PointMap
from edit2perceive.reference import REFERENCE_CONVENTIONS
from edit2perceive.tasks import get_task
from edit2perceive.tasks.matting import click_point_map

FIXTURES = Path(__file__).parent / "fixtures"
REF = np.load(FIXTURES / "authors_conventions.npz")
F32 = 1e-6  # float32 rounding of values in [0, 1]


@pytest.fixture(scope="module")
def ref_pipe(tiny_components):
    pipe = Edit2PerceivePipeline(**tiny_components, task="matting", **REFERENCE_CONVENTIONS)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_fixture_provenance_names_every_entry():
    prov = json.loads((FIXTURES / "authors_conventions.json").read_text())
    assert prov["repository"] == "showlab/Edit2Perceive" and len(prov["commit"]) == 40
    prefixes = {k.split("_")[0] for k in REF.files}
    assert prefixes == {"eval", "click", "grid", "mrn", "pil", "decode"}


# 1. N-step grid ----------------------------------------------------------------------------
@pytest.mark.parametrize("n", [2, 4, 8])
def test_reference_set_runs_the_authors_shifted_grid(ref_pipe, n):
    """FlowMatchScheduler.set_timesteps(N, training=True).sigmas, then the last step to 0."""
    assert ref_pipe.conventions.sigma_schedule == "shifted"
    want = np.append(REF[f"grid_{n}_sigmas"], 0.0)
    seen = []
    real = flow.euler_sample
    with mock.patch.object(flow, "euler_sample", side_effect=lambda v, x, s: seen.append(s) or real(v, x, s)):
        ref_pipe(Image.new("RGB", (24, 20)), points=[[(5, 5)]], processing_resolution=16, num_inference_steps=n)
    np.testing.assert_allclose(seen[0].numpy(), want, rtol=1e-6, atol=1e-7)
    assert float(REF[f"grid_{n}_sum_of_steps_unit_velocity"]) == -1.0  # their last step goes to sigma 0


# 2. clip, then average ---------------------------------------------------------------------
@pytest.mark.parametrize("task", ["depth", "matting"])
def test_clip_then_average_matches_vae_out_to_np(task):
    pixels = torch.from_numpy(REF["decode_input"])
    got = get_task(task).decode(pixels, clip_channels=True)[0].numpy()
    np.testing.assert_allclose(got, REF[f"decode_{task}"], atol=F32)
    ours = get_task(task).decode(pixels)[0].numpy()  # average, then clip: differs where a channel saturates
    assert np.abs(ours - REF[f"decode_{task}"]).max() > 0.05
    assert Conventions.reference().decode_clip == "before_mean" and Conventions().decode_clip == "after_mean"


def test_normals_are_never_clipped_before_normalising():
    pixels = torch.tensor([[[[1.5]], [[0.5]], [[0.0]]]])
    got = get_task("normal").decode(pixels, clip_channels=True)[0, 0, 0]
    torch.testing.assert_close(got, torch.tensor([1.5, 0.5, 0.0]) / (2.5**0.5))


# 3. resize -----------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["down", "up", "wide"])
def test_pil_uint8_stretch_matches_the_reference(ref_pipe, tiny_components, case):
    img, want = REF[f"pil_{case}_input"], REF[f"pil_{case}_stretched"]
    size = want.shape[:2]
    got = ref_pipe.resize_image(load_rgb_inputs(img)[0], size)[0].permute(1, 2, 0).numpy() * 255.0
    np.testing.assert_allclose(got, want.astype(np.float32), atol=1e-3)  # the same grey levels
    ours = Edit2PerceivePipeline(**tiny_components, task="depth").resize_image(load_rgb_inputs(img)[0], size)
    assert np.abs(ours[0].permute(1, 2, 0).numpy() * 255.0 - want).max() > 0.5  # torch's filter differs


# 4. point maps -----------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["vga", "fullhd", "portrait"])
def test_click_to_prompt_matches_app_py(ref_pipe, case):
    """app.py: each click a disk of radius 100 px at 768, 10 points sampled (seed 42), sigma 30 px."""
    w, h = (int(v) for v in REF[f"click_{case}_size_wh"])
    clicks = REF[f"click_{case}_clicks"].tolist()
    values, points = click_point_map(clicks, (h, w), 768, 768)
    np.testing.assert_array_equal(points.reshape(-1), np.rint(REF[f"click_{case}_coords"].astype(np.float64) * 768))
    np.testing.assert_allclose(values[::8, ::8], REF[f"click_{case}_map_every8"], atol=F32)
    # the pipeline applies it to pipe(..., points=...) for the released models
    via_pipe = ref_pipe.point_map(np.asarray(clicks, dtype=np.float64), (h, w), (768, 768))
    np.testing.assert_array_equal(via_pipe, values)


def test_click_radius_and_sigma_scale_with_the_processing_size():
    big, pts_big = click_point_map([(50, 50)], (100, 100), 768, 768)
    small, pts_small = click_point_map([(50, 50)], (100, 100), 96, 96)
    assert len(pts_big) == len(pts_small) == 10
    for pts, side in ((pts_big, 768), (pts_small, 96)):  # every sample lies in the disk of radius 100 px per 768
        centre = side // 2
        assert (np.hypot(pts[:, 0] - centre, pts[:, 1] - centre) <= 100 * side / 768).all()
    assert small.max() == pytest.approx(1.0) and big.max() == pytest.approx(1.0)


@pytest.mark.parametrize("case", ["a", "b", "c", "few"])
def test_benchmark_prompt_matches_the_evaluation_script(ref_pipe, case):
    """gen_points(alpha) on the original image, then cv2.resize(..., INTER_LINEAR) to the processing size."""
    alpha = REF[f"eval_{case}_alpha_u8"].astype(np.float32) / 255.0
    values, points, empty = reference_point_map(alpha)
    np.testing.assert_allclose(values, REF[f"eval_{case}_map_original"], atol=F32)
    coords = REF[f"eval_{case}_coords"]
    assert empty == (case == "few") and (empty or np.allclose(
        np.asarray(points, dtype=np.float64).reshape(-1) / np.tile(alpha.shape[::-1], 10), coords, atol=1e-6))
    stretched = ref_pipe.point_map(PointMap(values), alpha.shape, (64, 64))
    np.testing.assert_allclose(stretched, REF[f"eval_{case}_map_64"], atol=1e-5)


def test_benchmark_prompt_on_a_full_hd_image(ref_pipe):
    """The evaluation script's own size: 1920 x 1080 alpha -> gen_points -> cv2 bilinear to 768 x 768."""
    h, w = 1080, 1920
    yy, xx = np.mgrid[:h, :w]
    d = np.sqrt(((yy - h * 0.55) / (h * 0.3)) ** 2 + ((xx - w * 0.45) / (w * 0.25)) ** 2)
    alpha = (np.clip((1.15 - d) / 0.3, 0, 1) * 255).round().astype(np.uint8).astype(np.float32) / 255.0
    values, points, _ = reference_point_map(alpha)
    np.testing.assert_array_equal(np.asarray(points).reshape(-1),
                                  np.rint(REF["eval_fullhd_coords"].astype(np.float64) * np.tile([w, h], 10)))
    stretched = ref_pipe.point_map(PointMap(values), (h, w), (768, 768))
    np.testing.assert_allclose(stretched[::8, ::8], REF["eval_fullhd_map_768_every8"], atol=1e-5)
    np.testing.assert_allclose(stretched[384], REF["eval_fullhd_map_768_row384"], atol=1e-5)


def test_point_maps_argument_is_checked(ref_pipe):
    img = Image.new("RGB", (24, 20))
    with pytest.raises(ValueError, match=r"point map of shape \(4, 4\), expected the image's \(20, 24\)"):
        ref_pipe(img, point_maps=[np.zeros((4, 4))], processing_resolution=16)
    with pytest.raises(ValueError, match="points or point_maps, not both"):
        ref_pipe(img, points=[[(1, 1)]], point_maps=[np.zeros((20, 24))], processing_resolution=16)
    with pytest.raises(ValueError, match=r"within \[0, 1\]"):
        ref_pipe(img, point_maps=[np.full((20, 24), 2.0)], processing_resolution=16)
    out = ref_pipe(img, point_maps=[np.zeros((20, 24))], processing_resolution=16)
    assert out.prediction.shape == (1, 20, 24)


# 5. Marigold's multi-resolution noise ---------------------------------------------------------
def test_multi_resolution_noise_is_marigolds():
    g = torch.Generator().manual_seed(0)  # their first draw is the full-resolution noise
    base = torch.randn((2, 4, 24, 20), generator=g)
    ours = flow.multi_resolution_noise(base, torch.tensor([0.3, 1.0]), strength=0.9, anneal="sigma", generator=g)
    np.testing.assert_allclose(ours.numpy(), REF["mrn_a"], atol=1e-6)
    g = torch.Generator().manual_seed(5)
    base = torch.randn((1, 2, 17, 31), generator=g)
    ours = flow.multi_resolution_noise(base, 1.0, strength=0.9, anneal="sigma", generator=g)
    np.testing.assert_allclose(ours.numpy(), REF["mrn_b"], atol=1e-6)


# the dataclass and old configs ------------------------------------------------------------------
def test_conventions_dataclass_is_frozen_and_validated():
    c = Conventions.reference()
    with pytest.raises(AttributeError):
        c.noise = "fixed"
    assert c.replace(noise="fixed").noise == "fixed" and c.noise == "reference"
    for bad in ({"resize_filter": "lanczos"}, {"decode_clip": "never"}, {"point_map": "disc"},
                {"benchmark_points": "mine"}, {"sigma_schedule": "cosine"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            Conventions(**bad)
    with pytest.raises(ValueError, match="unknown convention"):
        Conventions.from_value({"nosie": "fixed"})
    assert Conventions.from_value(c.to_dict()) == c == Conventions.from_value("reference")


def _rewrite_as_old_config(folder: Path, loose: dict) -> None:
    """model_index.json as pipelines saved before the dataclass wrote it: loose keys."""
    path = folder / "model_index.json"
    index = json.loads(path.read_text())
    index = {k: v for k, v in index.items() if k != "conventions" and k not in OLD_OURS}
    path.write_text(json.dumps({**index, **loose}))


OLD_OURS = {"point_map_position_index": 2, "noise": "fixed", "single_step_final_sigma": 0.0, "point_map": "gaussian",
            "point_map_sigma": None, "resize_mode": "keep_aspect", "timestep_embedding": "diffusers",
            "sigma_schedule": "linear"}
OLD_REFERENCE = {"point_map_position_index": 1, "noise": "reference", "single_step_final_sigma": flow.reference_single_step_sigma(),
                 "point_map": "reference", "point_map_sigma": 20.0, "resize_mode": "stretch",
                 "timestep_embedding": "reference", "sigma_schedule": "linear"}


def test_old_style_configs_with_loose_keys_still_load(tiny_components, tmp_path):
    pipe = Edit2PerceivePipeline(**tiny_components, task="matting")
    pipe.save_pretrained(tmp_path / "m")
    _rewrite_as_old_config(tmp_path / "m", OLD_OURS)
    assert Edit2PerceivePipeline.from_pretrained(tmp_path / "m").conventions == Conventions()
    _rewrite_as_old_config(tmp_path / "m", {**OLD_OURS, "resize_mode": "stretch", "point_map_sigma": 12.0})
    loaded = Edit2PerceivePipeline.from_pretrained(tmp_path / "m")
    assert loaded.conventions == Conventions(resize_mode="stretch", point_map_sigma=12.0)
    # a folder converted with the old (loose) reference set loads as the reference set it stood for
    _rewrite_as_old_config(tmp_path / "m", OLD_REFERENCE)
    loaded = Edit2PerceivePipeline.from_pretrained(tmp_path / "m")
    assert loaded.conventions == Conventions.reference()
    loaded.save_pretrained(tmp_path / "again")  # and saves in the new shape
    index = json.loads((tmp_path / "again" / "model_index.json").read_text())
    assert index["conventions"] == Conventions.reference().to_dict() and "resize_mode" not in index


def test_loose_keywords_override_the_conventions(tiny_components):
    pipe = Edit2PerceivePipeline(**tiny_components, task="matting", **REFERENCE_CONVENTIONS, point_map_sigma=30.0,
                                 sigma_schedule="linear")
    assert pipe.conventions == Conventions.reference().replace(point_map_sigma=30.0, sigma_schedule="linear")


def test_evaluate_scores_reference_models_with_the_authors_benchmark_prompt(ref_pipe, tmp_path):
    """``e2p evaluate`` (matting) on a model with the reference conventions: gen_points on the
    original alpha, the map drawn there and stretched; our models keep the oracle points."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent / "evaluation"))
    from e2p_dataset_fixtures import write_matting

    from edit2perceive.evaluation import evaluate_benchmark
    from edit2perceive.evaluation.predictors import PipelinePredictor

    alphas = write_matting(tmp_path / "data", "aim500", size=(40, 52))
    ref_pipe.save_pretrained(tmp_path / "model")
    seen = []

    class Spy(PipelinePredictor):
        def predict(self, sample, points):
            seen.append(points)
            return super().predict(sample, points)

    spy = Spy(str(tmp_path / "model"), "matting", processing_resolution=32)
    res = evaluate_benchmark("matting", "aim500", tmp_path / "data", spy, progress=False)
    assert spy.point_protocol == "reference" and "gen_points" in res.summary["protocol"]["points"]
    for prompt, row in zip(seen, res.rows):
        values, points, _ = reference_point_map(alphas[row["sample_id"]])
        assert isinstance(prompt, PointMap) and np.array_equal(prompt.values, values)
        assert row["points"] == [list(p) for p in points]


def test_cli_and_app_prompt_released_models_with_clicks(ref_pipe, tmp_path):
    """``e2p predict --points`` and the web demo pass clicks to ``pipe(points=...)``; a pipeline with
    the reference conventions turns them into the app.py prompt (disks, 10 samples, sigma 30)."""
    import importlib.util

    from edit2perceive.cli import main
    from edit2perceive.pipelines import pipeline as pipeline_module

    ref_pipe.save_pretrained(tmp_path / "model")
    photo = tmp_path / "photo.png"
    Image.fromarray((np.random.default_rng(0).random((40, 56, 3)) * 255).astype(np.uint8)).save(photo)
    with mock.patch.object(pipeline_module, "click_point_map", wraps=click_point_map) as spy:
        assert main(["predict", "--task", "matting", "--model", str(tmp_path / "model"), str(photo), "--points", "30,20",
                     "--output-dir", str(tmp_path / "out"), "--processing-resolution", "32"]) == 0
    (clicks, image_size, h, w), _ = spy.call_args
    assert np.asarray(clicks).tolist() == [[30.0, 20.0]] and image_size == (40, 56) and (h, w) == (32, 32)

    pytest.importorskip("gradio")
    spec = importlib.util.spec_from_file_location("e2p_app_click", Path(__file__).parents[1] / "examples" / "app.py")
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    with mock.patch.object(pipeline_module, "click_point_map", wraps=click_point_map) as spy:
        app.predict({"matting": ref_pipe}, np.asarray(Image.open(photo)), "matting", [(10, 12)], 32, str(tmp_path / "a"))
    (clicks, image_size, h, w), _ = spy.call_args
    assert np.asarray(clicks).tolist() == [[10.0, 12.0]] and image_size == (40, 56)
