"""Video: predict every frame, streamed, with optional temporal smoothing; write the results.

Frames are read and written with imageio's ffmpeg plugin (``imageio`` + ``imageio-ffmpeg``,
the ``io`` extra): one frame batch is in memory at a time, never the clip.

Frame noise (``frame_noise``, the initial noise of each frame): ``"fixed"`` (default) gives
every frame the pipeline's fixed-seed noise, the training noise, so an unchanged frame gives
an unchanged map; ``"fresh"`` draws new noise per frame (from ``seed``), for comparison.

Smoothing (:class:`TemporalSmoother`, ``strength`` w in [0, 1), 0 = off) is an exponential
moving average ``out_t = w * out_{t-1} + (1 - w) * pred_t``; depth is first affine-aligned
to ``out_{t-1}`` (least squares in the encoding space), normals are renormalized after it.

:func:`temporal_change` measures flicker: the mean absolute change between consecutive
predictions, depth after aligning each frame to the previous one (least squares), normals
as the mean angle in degrees, alpha as the mean absolute difference.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch

from ..io.atomic import atomic_file

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm")
FRAME_NOISE_MODES = ("fixed", "fresh")


def is_video(path: str | os.PathLike) -> bool:
    """True for a file name with a video suffix (see ``VIDEO_SUFFIXES``)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def _last_line(err: BaseException) -> str:
    """ffmpeg's errors carry its whole build banner: keep the last line that says something."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    return (lines[-1] if lines else type(err).__name__)[:200]


class VideoReader:
    """Stream the frames (uint8 ``H x W x 3``) of a video file; ``fps`` and ``num_frames``
    (``None`` when the container does not say). Errors name the file."""

    def __init__(self, path: str | os.PathLike):
        import imageio.v2 as imageio

        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise ValueError(f"{self.path}: no such video file")
        try:
            self._reader = imageio.get_reader(self.path, format="FFMPEG")
            meta = self._reader.get_meta_data()
        except Exception as err:  # imageio raises OSError / RuntimeError / IndexError for bad files
            raise ValueError(f"{self.path}: not a readable video ({_last_line(err)})") from None
        self.fps = float(meta.get("fps") or 25.0)
        try:
            self.num_frames = int(self._reader.count_frames())
        except Exception:
            self.num_frames = None

    def __iter__(self) -> Iterator[np.ndarray]:
        try:
            for frame in self._reader:
                yield np.ascontiguousarray(frame[..., :3])
        except Exception as err:
            raise ValueError(f"{self.path}: error while decoding ({_last_line(err)})") from None

    def close(self):
        self._reader.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class VideoWriter:
    """Append uint8 RGB frames to an H.264 ``.mp4``; the file appears only on a clean
    :meth:`close` (:func:`edit2perceive.io.atomic.atomic_file`), a failure leaves nothing behind."""

    def __init__(self, path: str | os.PathLike, fps: float):
        import imageio.v2 as imageio

        self.path = Path(path)
        self._staging = contextlib.ExitStack()
        tmp = self._staging.enter_context(atomic_file(self.path))  # keeps the .mp4 suffix ffmpeg needs
        # even sides: H.264 in yuv420p needs them; macro_block_size=2 pads instead of resizing to 16
        self._writer = imageio.get_writer(tmp, format="FFMPEG", fps=fps, codec="libx264", quality=8,
                                          macro_block_size=2, ffmpeg_log_level="error")

    def append(self, frame: np.ndarray) -> None:
        self._writer.append_data(np.ascontiguousarray(frame[..., :3]))

    def close(self) -> Path:
        self._writer.close()
        self._staging.close()  # synced, 0644, renamed into place
        return self.path

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:  # the staging file is removed as on any error inside atomic_file
            stop = RuntimeError(f"{self.path}: video aborted")
            self._staging.__exit__(RuntimeError, stop, None)


class TemporalSmoother:
    """Exponential moving average over a stream of one task's predictions (module docstring)."""

    def __init__(self, task: str, strength: float = 0.0):
        if not 0.0 <= strength < 1.0:
            raise ValueError(f"temporal smoothing strength must be in [0, 1), got {strength}")
        self.task, self.strength, self.state = task, float(strength), None

    def __call__(self, prediction) -> np.ndarray:
        pred = np.asarray(prediction, dtype=np.float32)
        if self.strength == 0.0 or self.state is None:
            self.state = pred
            return pred
        if self.state.shape != pred.shape:
            raise ValueError(f"frame size changed from {self.state.shape} to {pred.shape}")
        if self.task == "depth":
            from ..metrics.depth import fit_scale_shift

            s, t = fit_scale_shift(pred.ravel(), self.state.ravel())
            pred = (s * pred + t).astype(np.float32)
        out = self.strength * self.state + (1.0 - self.strength) * pred
        if self.task == "normal":
            out = out / np.maximum(np.linalg.norm(out, axis=-1, keepdims=True), 1e-6)
        self.state = out.astype(np.float32)
        return self.state


def predict_frames(pipe, frames: Iterable[np.ndarray], *, frame_noise: str = "fixed", seed: int = 0,
                   smoothing: float = 0.0, batch_size: int = 1, points=None, **call_kwargs) -> Iterator[np.ndarray]:
    """Yield one prediction (numpy, input size) per frame, streaming ``batch_size`` frames
    at a time through ``pipe``. ``points``: matting points used for every frame.
    ``call_kwargs`` go to the pipeline call (e.g. ``processing_resolution``, ``ensemble_size``)."""
    if frame_noise not in FRAME_NOISE_MODES:
        raise ValueError(f"frame_noise must be one of {FRAME_NOISE_MODES}, got {frame_noise!r}")
    generator = torch.Generator().manual_seed(int(seed)) if frame_noise == "fresh" else None
    smoother = TemporalSmoother(pipe.task.name, smoothing)
    batch: list[np.ndarray] = []

    def run(chunk):
        out = pipe(chunk, points=None if points is None else [points] * len(chunk), batch_size=len(chunk),
                   generator=generator, output_type="np", **call_kwargs)
        return [smoother(p) for p in out.prediction]

    for frame in frames:
        batch.append(frame)
        if len(batch) == batch_size:
            yield from run(batch)
            batch = []
    if batch:
        yield from run(batch)


def temporal_change(predictions: Iterable[np.ndarray], task: str) -> float:
    """Mean absolute change between consecutive predictions (module docstring); streams."""
    from ..metrics.depth import fit_scale_shift

    previous, total, count = None, 0.0, 0
    for pred in predictions:
        pred = np.asarray(pred, dtype=np.float64)
        if previous is not None:
            if task == "depth":
                s, t = fit_scale_shift(pred.ravel(), previous.ravel())
                total += float(np.mean(np.abs(s * pred + t - previous)))
            elif task == "normal":
                cos = np.clip(np.sum(pred * previous, axis=-1), -1.0, 1.0)
                total += float(np.degrees(np.arccos(cos)).mean())
            else:
                total += float(np.mean(np.abs(pred - previous)))
            count += 1
        previous = pred
    if count == 0:
        raise ValueError("temporal change needs at least two frames")
    return total / count


def colorize(task: str, prediction: np.ndarray) -> np.ndarray:
    """A prediction as a uint8 RGB frame (depth: Spectral on the fixed range [0, 1], so colours
    do not re-normalize per frame; normals: (n + 1) / 2; alpha: grey)."""
    from .visualize import alpha_to_image, depth_to_color, normals_to_rgb

    if task == "depth":
        return np.asarray(depth_to_color(np.clip(prediction, 0.0, 1.0)))
    if task == "normal":
        return np.asarray(normals_to_rgb(prediction))
    return np.asarray(alpha_to_image(prediction).convert("RGB"))


def frame_outputs(task: str, prediction: np.ndarray) -> dict[str, object]:
    """Per-frame files: a 16-bit PNG (depth, alpha; values in [0, 1] times 65535) or the RGB
    normal PNG, and the float32 ``.npy``."""
    from .visualize import depth_to_png16, normals_to_rgb

    pred = np.asarray(prediction, dtype=np.float32)
    if task == "normal":
        return {"normal.png": normals_to_rgb(pred), "normal.npy": pred}
    name = "depth" if task == "depth" else "alpha"
    return {f"{name}_16bit.png": depth_to_png16(pred), f"{name}.npy": pred}


def predict_video(pipe, path: str | os.PathLike, video_out: str | os.PathLike, *,
                  frames_dir: str | os.PathLike | None = None, progress: bool = True, **kwargs) -> int:
    """Predict every frame of the video at ``path`` (``kwargs``: :func:`predict_frames`'s);
    write the colourised ``video_out`` (``.mp4``, the source frame rate) and, with
    ``frames_dir``, ``{index:06d}_*`` files per frame (:func:`frame_outputs`). Streams (one
    frame batch in memory) with a progress bar; returns the number of frames. On an error
    the video file does not appear (frames already written stay, each complete)."""
    from tqdm.auto import tqdm

    from .visualize import write_outputs

    task = pipe.task.name
    with VideoReader(path) as reader:
        writer = VideoWriter(video_out, reader.fps)
        count = 0
        try:
            with tqdm(total=reader.num_frames, desc=Path(path).name, unit="frame", disable=not progress) as bar:
                for pred in predict_frames(pipe, reader, **kwargs):
                    writer.append(colorize(task, pred))
                    if frames_dir is not None:
                        write_outputs(frame_outputs(task, pred), frames_dir, f"{count:06d}")
                    count += 1
                    bar.update()
            if count == 0:
                raise ValueError(f"{os.fspath(path)}: the video has no frames")
        except BaseException:
            writer.abort()
            raise
        writer.close()
    return count
