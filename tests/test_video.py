"""Video: streamed per-frame prediction, fixed vs fresh noise, smoothing, files written."""

import itertools

import numpy as np
import pytest

from edit2perceive import Edit2PerceivePipeline
from edit2perceive.outputs.video import (
    TemporalSmoother,
    VideoReader,
    VideoWriter,
    is_video,
    predict_frames,
    predict_video,
    temporal_change,
)


@pytest.fixture(scope="module")
def depth_pipe(tiny_components):
    pipe = Edit2PerceivePipeline(**tiny_components, task="depth")
    pipe.set_progress_bar_config(disable=True)
    return pipe


def static_clip(n=4, h=32, w=48, seed=0):
    """A static camera: one image plus small per-frame sensor noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([40 + 150 * xx / w, 40 + 150 * yy / h, 120 + 60 * ((xx // 12 + yy // 12) % 2)], axis=-1)
    return [np.clip(base + rng.integers(-3, 4, (h, w, 3)), 0, 255).astype(np.uint8) for _ in range(n)]


def write_clip(path, frames, fps=10.0):
    writer = VideoWriter(path, fps)
    for f in frames:
        writer.append(f)
    return writer.close()


def test_is_video_and_reader_round_trip(tmp_path):
    assert is_video("a/b.MP4") and is_video("x.webm") and not is_video("x.png")
    frames = static_clip()
    path = write_clip(tmp_path / "clip.mp4", frames)
    with VideoReader(path) as reader:
        back = list(reader)
        assert reader.fps == pytest.approx(10.0) and reader.num_frames == 4
    assert len(back) == 4 and back[0].shape == frames[0].shape and back[0].dtype == np.uint8
    assert np.abs(back[0].astype(int) - frames[0]).mean() < 12  # H.264 is lossy, not different
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    with pytest.raises(ValueError, match="bad.mp4"):
        VideoReader(tmp_path / "bad.mp4")


def test_smoother_by_hand():
    s = TemporalSmoother("matting", 0.5)
    outs = [s(np.full((2, 2), v, np.float32))[0, 0] for v in (0.0, 1.0, 1.0)]
    np.testing.assert_allclose(outs, [0.0, 0.5, 0.75])
    d = TemporalSmoother("depth", 0.5)
    first = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    d(first)
    np.testing.assert_allclose(d(2 * first + 0.1), first, atol=1e-6)  # an affine copy aligns onto the past
    n = TemporalSmoother("normal", 0.5)
    n(np.tile(np.float32([1, 0, 0]), (2, 2, 1)))
    out = n(np.tile(np.float32([0, 1, 0]), (2, 2, 1)))
    np.testing.assert_allclose(out[0, 0], [np.sqrt(0.5), np.sqrt(0.5), 0], atol=1e-6)
    with pytest.raises(ValueError, match="strength"):
        TemporalSmoother("depth", 1.0)


def test_temporal_change_by_hand():
    a = np.linspace(0, 1, 12).reshape(3, 4)
    assert temporal_change([a, 3 * a + 1, a], "depth") == pytest.approx(0.0, abs=1e-12)
    assert temporal_change([np.zeros((2, 2)), np.full((2, 2), 0.5)], "matting") == pytest.approx(0.5)
    x, y = np.tile([1.0, 0, 0], (2, 2, 1)), np.tile([0, 1.0, 0], (2, 2, 1))
    assert temporal_change([x, y], "normal") == pytest.approx(90.0)
    with pytest.raises(ValueError, match="two frames"):
        temporal_change([x], "normal")


def test_fixed_noise_is_stable_fresh_noise_is_not(depth_pipe):
    frames = [static_clip(1)[0]] * 3  # identical frames
    fixed = list(predict_frames(depth_pipe, frames, processing_resolution=32))
    fresh = list(predict_frames(depth_pipe, frames, frame_noise="fresh", seed=0, processing_resolution=32))
    assert temporal_change(fixed, "depth") == 0.0
    assert temporal_change(fresh, "depth") > 1e-4
    again = list(predict_frames(depth_pipe, frames, frame_noise="fresh", seed=0, processing_resolution=32))
    for a, b in zip(fresh, again):
        np.testing.assert_array_equal(a, b)  # fresh noise is still seeded


def test_frames_are_streamed(depth_pipe):
    def endless():
        frame = static_clip(1)[0]
        while True:
            yield frame

    first = list(itertools.islice(predict_frames(depth_pipe, endless(), batch_size=2, processing_resolution=32), 3))
    assert len(first) == 3 and first[0].shape == (32, 48)


def test_predict_video_writes_mp4_and_frames(depth_pipe, tmp_path):
    path = write_clip(tmp_path / "clip.mp4", static_clip(3))
    frames_dir = tmp_path / "out" / "frames"
    count = predict_video(depth_pipe, path, tmp_path / "out" / "depth.mp4", frames_dir=frames_dir, progress=False,
                          batch_size=2, processing_resolution=32)
    assert count == 3
    with VideoReader(tmp_path / "out" / "depth.mp4") as reader:
        assert len(list(reader)) == 3
    with VideoReader(path) as reader:
        decoded = list(reader)
    for i, frame in enumerate(decoded):  # same frames through the plain call give the same maps
        expected = depth_pipe(frame, processing_resolution=32).prediction[0]
        np.testing.assert_allclose(np.load(frames_dir / f"{i:06d}_depth.npy"), expected, atol=1e-5)
        assert (frames_dir / f"{i:06d}_depth_16bit.png").exists()


def test_failed_video_leaves_no_mp4(depth_pipe, tmp_path):
    path = write_clip(tmp_path / "clip.mp4", static_clip(2))
    with pytest.raises(ValueError, match="points"):
        predict_video(depth_pipe, path, tmp_path / "out" / "depth.mp4", points=[(1, 1)], progress=False)
    assert not list((tmp_path / "out").glob("*.mp4"))
