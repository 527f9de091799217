"""The command line's edge: argparse namespace -> typed options; negative values; old spellings."""

from pathlib import Path

import pytest

from edit2perceive.cli import build_parser, parse_args
from edit2perceive.commands._model_args import ModelOptions
from edit2perceive.commands._predict_options import ExtraOptions, PredictOptions

BASE = ["predict", "--task", "matting", "--model", "m", "a.png", "--output-dir", "out"]


def test_negative_points_and_numbers_are_values_not_options():
    args = parse_args(build_parser(), BASE + ["--points", "-5,10", "3.5,-4e1", "-.5,-2", "--steps", "-1",
                                              "--fov", "-30", "--depth-range", "-1", "2"])
    assert args.points == [(-5.0, 10.0), (3.5, -40.0), (-0.5, -2.0)]
    assert args.steps == -1 and args.fov == -30.0 and args.depth_range == [-1.0, 2.0]
    assert args.inputs == ["a.png"]
    args = parse_args(build_parser(), ["predict", "--task", "matting", "--model", "m", "--output-dir", "out",
                                       "--points", "1,2", "-3,4", "--", "-x.png"])
    assert args.points == [(1.0, 2.0), (-3.0, 4.0)] and args.inputs == ["-x.png"]


def test_an_unknown_option_is_still_refused(capsys):
    with pytest.raises(SystemExit):
        parse_args(build_parser(), BASE + ["--points", "1,2", "--pionts", "3,4"])
    assert "--pionts" in capsys.readouterr().err


def test_predict_options_from_the_namespace():
    args = parse_args(build_parser(), BASE[:6] + ["b"] + BASE[6:] + [
        "--points", "1,2", "--steps", "4", "--processing-resolution", "0", "--batch-size", "3",
        "--skip-existing", "--device", "cpu", "--base-model", "base", "--offload", "--vae-tiling",
        "--ensemble-size", "4", "--ensemble-augmentations", "flip", "--uncertainty", "--export", "ply", "glb",
        "--intrinsics", "10", "11", "5", "6", "--depth-range", "2", "20", "--depth-model", "d",
        "--frame-noise", "fresh", "--temporal-smoothing", "0.5", "--no-frames"])
    opts = PredictOptions.from_args(args)
    assert opts == PredictOptions(
        inputs=("a.png", "b"), task="matting", output_dir=Path("out"), model="m",
        loading=ModelOptions(base_model="base", reference_checkpoint=None, offload=True, quantize=None,
                             vae_tiling=True),
        points=((1.0, 2.0),), steps=4, processing_resolution=0, batch_size=3, skip_existing=True, device="cpu",
        extras=ExtraOptions(ensemble_size=4, ensemble_augmentations=("flip",), uncertainty=True,
                            export=("ply", "glb"), intrinsics=(10.0, 11.0, 5.0, 6.0), depth_range=(2.0, 20.0),
                            depth_model="d", frame_noise="fresh", temporal_smoothing=0.5, frames=False))
    assert opts.loading.load_kwargs() == {"base_model": "base", "reference_checkpoint": None, "offload": True,
                                          "quantize": None, "vae_tiling": True}


def test_defaults_are_the_dataclass_defaults():
    args = parse_args(build_parser(), ["predict", "--task", "depth", "--model", "m", "a.png", "--output-dir", "o"])
    opts = PredictOptions.from_args(args)
    assert opts.extras == ExtraOptions() and opts.loading == ModelOptions()
    assert (opts.points, opts.steps, opts.processing_resolution, opts.batch_size) == (None, 1, None, 1)


def test_old_noise_option_still_works_and_says_what_to_use(capsys):
    args = parse_args(build_parser(), BASE + ["--points", "1,2", "--noise", "fresh"])
    assert PredictOptions.from_args(args).extras.frame_noise == "fresh"
    assert "--noise is deprecated; use --frame-noise" in capsys.readouterr().err
    assert "--noise" not in build_parser()._subparsers._group_actions[0].choices["predict"].format_help()
