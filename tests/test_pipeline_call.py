"""The call's diffusers habits: return_dict, channels-first "pt" outputs, one progress-bar
switch, the scheduler setting the sampling grid."""

from unittest import mock

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, FlowMatchEulerDiscreteScheduler
from pipeline_fixtures import rgb_image

from edit2perceive import Edit2PerceivePipeline, flow


def points_for(task):
    return [[(10, 12)]] if task == "matting" else None


def test_return_dict_false_is_the_output_as_a_tuple(pipes):
    pipe = pipes["depth"]
    out = pipe(rgb_image(), processing_resolution=32)
    tup = pipe(rgb_image(), processing_resolution=32, return_dict=False)
    assert isinstance(tup, tuple) and len(tup) == 3
    np.testing.assert_array_equal(tup[0], out.prediction)
    assert torch.equal(tup[1], out.latent) and tup[2] is None
    ens = pipe(rgb_image(), processing_resolution=32, ensemble_size=2, output_uncertainty=True, return_dict=False)
    assert ens[2].shape == ens[0].shape


@pytest.mark.parametrize("task,channels", [("depth", 1), ("normal", 3), ("matting", 1)])
def test_pt_output_is_channels_first_like_marigold(pipes, task, channels):
    """diffusers' Marigold: depth N x 1 x H x W, normals N x 3 x H x W; "np" keeps N x H x W (x 3)."""
    pipe, imgs = pipes[task], [rgb_image(seed=0), rgb_image(seed=1)]
    points = None if task != "matting" else [[(10, 12)], [(3, 4)]]
    np_out = pipe(imgs, points=points, processing_resolution=32)
    pt_out = pipe(imgs, points=points, processing_resolution=32, output_type="pt")
    assert tuple(pt_out.prediction.shape) == (2, channels, 40, 56)
    expected = np_out.prediction if channels == 3 else np_out.prediction[..., None]
    np.testing.assert_array_equal(pt_out.prediction.permute(0, 2, 3, 1).numpy(), expected)
    # inputs of different sizes matched back to their own size: a list of C x H x W
    mixed = pipe([rgb_image(), rgb_image(36, 60)], points=points, processing_resolution=32, output_type="pt",
                 ensemble_size=2, output_uncertainty=True)
    assert [tuple(p.shape) for p in mixed.prediction] == [(channels, 40, 56), (channels, 36, 60)]
    assert [tuple(u.shape) for u in mixed.uncertainty] == [(channels, 40, 56), (channels, 36, 60)]


def test_one_progress_bar_switch(tiny_components, capsys):
    pipe = Edit2PerceivePipeline(**tiny_components, task="depth")
    pipe(rgb_image(), processing_resolution=32, ensemble_size=2)
    err = capsys.readouterr().err
    assert "2/2" in err and ("it/s" in err or "s/it" in err)  # one tqdm bar over both (image, member) rows
    pipe.set_progress_bar_config(disable=True)
    pipe(rgb_image(), processing_resolution=32, ensemble_size=2)
    assert capsys.readouterr().err == ""
    with pytest.raises(TypeError, match="show_progress_bar"):
        pipe(rgb_image(), processing_resolution=32, show_progress_bar=False)


def test_the_scheduler_sets_the_sampling_grid(tiny_components):
    """Swapping ``pipe.scheduler`` changes the steps; FLUX.1's scheduler gives our grids."""
    pipe = Edit2PerceivePipeline(**tiny_components, task="depth")
    pipe.set_progress_bar_config(disable=True)
    assert isinstance(pipe.scheduler, FlowMatchEulerDiscreteScheduler)
    seen = []
    real = flow.euler_sample

    def spy(velocity, noise, sigmas, **kw):
        seen.append([float(s) for s in sigmas])
        return real(velocity, noise, sigmas, **kw)

    with mock.patch.object(flow, "euler_sample", spy):
        flux = pipe(rgb_image(), processing_resolution=32, num_inference_steps=2).prediction
        pipe.scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)  # a static shift of 3
        shifted = pipe(rgb_image(), processing_resolution=32, num_inference_steps=2).prediction
        pipe(rgb_image(), processing_resolution=32)
    assert seen[0] == pytest.approx([1.0, 0.5, 0.0], abs=1e-7)
    assert seen[1] == pytest.approx([1.0, 0.75, 0.0], abs=1e-7)  # 3 * 0.5 / (1 + 2 * 0.5)
    assert seen[2] == [1.0, 0.0]  # one step is [1, 0] for any flow-match scheduler
    assert not np.allclose(flux, shifted)
    pipe.scheduler = DDIMScheduler()
    with pytest.raises(ValueError, match="FlowMatchEulerDiscreteScheduler"):
        pipe(rgb_image(), processing_resolution=32)


def test_a_pipeline_without_a_scheduler_gets_fluxs(tiny_components):
    parts = {k: v for k, v in tiny_components.items() if k != "scheduler"}
    pipe = Edit2PerceivePipeline(**parts, task="depth")
    assert dict(pipe.scheduler.config)["use_dynamic_shifting"] is True
    assert dict(pipe.scheduler.config)["shift"] == flow.FLUX_SCHEDULER_CONFIG["shift"]
