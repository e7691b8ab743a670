"""Colorize videos frame by frame (PyAV): same frame count, size and frame rate, audio kept."""

from __future__ import annotations

import logging
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from colorlab.errors import ColorlabError, OptionError
from colorlab.files import written_atomically
from colorlab.inference.colorizer import TrainedColorizer

if TYPE_CHECKING:  # PyAV is imported when a video is processed, not with colorize
    import av

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv"}
)


def is_video(path: Path) -> bool:
    """Whether ``path`` names a video file (by its extension)."""
    return path.suffix.lower() in VIDEO_EXTENSIONS


def _video_codec(path: Path, width: int, height: int) -> tuple[str, str]:
    """(codec, pixel format) for the output container; 4:4:4 where 4:2:0 needs even sizes."""
    if path.suffix.lower() == ".webm":
        return "libvpx-vp9", "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    return "libx264", "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"


class AbSmoother:
    """Exponential moving average of ab over frames: ab_t = α·ab_{t−1} + (1 − α)·pred_t."""

    def __init__(self, alpha: float) -> None:
        if not 0 <= alpha < 1:
            raise OptionError("temporal_smoothing", alpha, "use a number in [0, 1) (0 = off)")
        self.alpha = alpha
        self.state: torch.Tensor | None = None

    def __call__(self, ab: torch.Tensor) -> torch.Tensor:
        """ab: T×2×h×w for consecutive frames -> smoothed, same shape."""
        if self.alpha == 0:
            return ab
        out = torch.empty_like(ab)
        for t in range(len(ab)):
            self.state = (
                ab[t] if self.state is None else self.alpha * self.state + (1 - self.alpha) * ab[t]
            )
            out[t] = self.state
        return out


def colorize_video(
    colorizer: TrainedColorizer,
    source: Path,
    target: Path,
    batch_size: int = 8,
    temporal_smoothing: float = 0.0,
    on_frames: Callable[[int], None] | None = None,
) -> int:
    """Colorize ``source`` into ``target``; returns the number of frames written.

    Frames are colorized in batches at the model's size, ab optionally smoothed over time,
    upsampled and merged with each frame's full-resolution L. The first audio stream is
    copied when the output container accepts it.
    """
    import av

    smoother = AbSmoother(temporal_smoothing)
    try:
        reader = av.open(str(source))
    except (av.error.FFmpegError, OSError) as error:
        raise ColorlabError(f"{source}: cannot be read as a video ({error})") from error
    with reader:
        if not reader.streams.video:
            raise ColorlabError(f"{source}: has no video stream")
        with written_atomically(target) as partial:  # renamed to target once complete
            return _transcode(colorizer, reader, partial, batch_size, smoother, on_frames)


def _transcode(
    colorizer: TrainedColorizer,
    reader: av.container.InputContainer,
    target: Path,
    batch_size: int,
    smoother: AbSmoother,
    on_frames: Callable[[int], None] | None,
) -> int:
    """Decode, colorize and encode every frame of ``reader`` into ``target`` (its first
    audio stream copied where the container allows); returns the frames written."""
    import av

    video_in = reader.streams.video[0]
    video_in.thread_type = "AUTO"
    audio_in = reader.streams.audio[0] if reader.streams.audio else None
    width, height = video_in.codec_context.width, video_in.codec_context.height
    rate = video_in.average_rate or video_in.guessed_rate or Fraction(25)
    with av.open(str(target), "w") as writer:
        codec, pix_fmt = _video_codec(target, width, height)
        video_out = writer.add_stream(codec, rate=rate)
        assert isinstance(video_out, av.VideoStream)  # a video codec gives a video stream
        video_out.width, video_out.height, video_out.pix_fmt = width, height, pix_fmt
        audio_out = None
        if audio_in is not None:
            try:
                audio_out = writer.add_stream_from_template(audio_in)
            except (ValueError, av.error.FFmpegError) as error:
                log.warning("%s: audio not kept (%s)", reader.name, error)

        written = 0
        pending: list[np.ndarray] = []

        def flush() -> None:
            nonlocal written
            if not pending:
                return
            for frame in _colorize_frames(colorizer, pending, smoother):
                for packet in video_out.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    writer.mux(packet)
            written += len(pending)
            if on_frames:
                on_frames(len(pending))
            pending.clear()

        streams = [s for s in (video_in, audio_in if audio_out else None) if s is not None]
        for packet in reader.demux(*streams):
            if packet.stream is video_in:
                for frame in packet.decode():
                    assert isinstance(frame, av.VideoFrame)  # a video stream's packets
                    pending.append(frame.to_ndarray(format="rgb24"))
                    if len(pending) >= batch_size:
                        flush()
            elif packet.dts is not None and audio_out is not None:  # demuxed only with it
                packet.stream = audio_out
                writer.mux(packet)
        flush()
        expected = _expected_frames(reader, video_in, rate)
        if not written:
            raise ColorlabError(
                f"{reader.name}: no frame could be decoded (the file may be truncated or damaged)"
            )
        for packet in video_out.encode(None):
            writer.mux(packet)
    if written < expected - 1:  # a frame's rounding in the duration is not a loss
        log.warning(
            "%s: only %d of its %d frames could be decoded (the file may be truncated); "
            "the output has %d",
            reader.name,
            written,
            expected,
            written,
        )
    return written


def _expected_frames(
    reader: av.container.InputContainer, stream: av.video.stream.VideoStream, rate: Fraction
) -> int:
    """The frames a video's header promises: the stream's count, else its duration × rate
    (Matroska and WebM give no count); 0 where neither is known."""
    if stream.frames:
        return int(stream.frames)
    if reader.duration:
        return round(reader.duration / 1_000_000 * rate)  # duration in microseconds
    return 0


@torch.no_grad()
def _colorize_frames(
    colorizer: TrainedColorizer, frames: list[np.ndarray], smoother: AbSmoother
) -> list[np.ndarray]:
    """T frames (H×W×3 uint8) -> T colorized frames (H×W×3 uint8)."""
    lightnesses = [colorizer.lightness(frame) for frame in frames]
    ab_small = smoother(colorizer.predict_lightness_ab(lightnesses))
    return [
        np.asarray(colorizer.merge(ab_small[t : t + 1], light))
        for t, light in enumerate(lightnesses)
    ]
