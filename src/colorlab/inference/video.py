"""Colorize videos (PyAV): same frame count, size and frame rate, audio kept; colour follows
over frames as `colorlab.inference.temporal` says (motion-compensated by default). Memory is
bounded by one batch of frames and the filter's one frame, whatever the video's length."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from colorlab.errors import ColorlabError
from colorlab.files import written_atomically
from colorlab.inference.colorizer import TrainedColorizer
from colorlab.inference.temporal import TemporalFilter, TemporalSettings

if TYPE_CHECKING:  # PyAV is imported when a video is processed, not with colorize
    import av

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv"}
)


def is_video(path: Path) -> bool:
    """Whether ``path`` names a video file (by its extension)."""
    return path.suffix.lower() in VIDEO_EXTENSIONS


def open_video(source: Path) -> av.container.InputContainer:
    """``source`` opened for reading (the caller closes it); a file that cannot be read as a
    video, or has no video stream: `ColorlabError`."""
    import av

    try:
        reader = av.open(str(source))
    except (av.error.FFmpegError, OSError) as error:
        raise ColorlabError(f"{source}: cannot be read as a video ({error})") from error
    if not reader.streams.video:
        reader.close()
        raise ColorlabError(f"{source}: has no video stream")
    return reader


def read_frames(source: Path) -> Iterator[np.ndarray]:
    """A video's frames in order as H×W×3 uint8 RGB, decoded one at a time (a file that
    cannot be read: `ColorlabError`)."""
    import av

    with open_video(source) as reader:
        stream = reader.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for frame in reader.decode(stream):
                yield frame.to_ndarray(format="rgb24")
        except av.error.FFmpegError as error:  # a truncated file: the frames before it stand
            log.warning("%s: decoding stopped (%s)", source, error)


def _video_codec(path: Path, width: int, height: int) -> tuple[str, str]:
    """(codec, pixel format) for the output container; 4:4:4 where 4:2:0 needs even sizes."""
    if path.suffix.lower() == ".webm":
        return "libvpx-vp9", "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    return "libx264", "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"


def colorize_video(
    colorizer: TrainedColorizer,
    source: Path,
    target: Path,
    batch_size: int = 8,
    temporal: TemporalSettings | None = None,
    on_frames: Callable[[int], None] | None = None,
) -> int:
    """Colorize ``source`` into ``target``; returns the number of frames written.

    Frames are colorized in batches at the model's size, their ab filtered over time
    (``temporal``, default `TemporalSettings`: flow), upsampled and merged with each frame's
    full-resolution L. The first audio stream is copied when the output container accepts it.
    """
    temporal_filter = (temporal or TemporalSettings()).new_filter(colorizer.device)
    # the output is renamed to target once complete
    with open_video(source) as reader, written_atomically(target) as partial:
        return _transcode(colorizer, reader, partial, batch_size, temporal_filter, on_frames)


def _transcode(
    colorizer: TrainedColorizer,
    reader: av.container.InputContainer,
    target: Path,
    batch_size: int,
    temporal_filter: TemporalFilter,
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
            for frame in _colorize_frames(colorizer, pending, temporal_filter):
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
    colorizer: TrainedColorizer, frames: list[np.ndarray], temporal_filter: TemporalFilter
) -> list[np.ndarray]:
    """T consecutive frames (H×W×3 uint8) -> T colorized frames (H×W×3 uint8)."""
    lightnesses = [colorizer.lightness(frame) for frame in frames]
    L_small = torch.cat([light.small(colorizer.size) for light in lightnesses])
    ab_small = temporal_filter(L_small, colorizer.predict_small_ab(L_small))
    return [
        np.asarray(colorizer.merge(ab_small[t : t + 1], light))
        for t, light in enumerate(lightnesses)
    ]
