"""Score colorized videos against their colour truth (``colorlab.evaluate videos=FOLDER``).

Each video's grey frames (the L of its colour frames) are colorized by every checkpoint with
every temporal setting (`colorlab.inference.temporal`); each output, and the truth itself,
is scored frame by frame as it is made, so that memory holds a batch of frames and one frame
per row, whatever the videos' length:

- ``psnr``: the mean over frames of PSNR against the truth (RGB, dB);
- ``e_warp``: the warping error of Lai et al. 2018 (`colorlab.metrics.warping_error`, RGB in
  [0, 1]) with the flow of the grey input at full resolution, over the pixels its
  forward–backward check keeps, pairs across a cut left out. Lower is steadier. The ``gray``
  row (ab = 0) is what the input's L alone gives, warping's and the flow's errors on it: about
  the least an output that keeps the input's L can reach (the truth, whose colour has texture
  of its own, can lie above it);
- ``cdc``: the colour-distribution consistency (`colorlab.metrics.histogram_divergence` of
  frames 1, 2 and 4 apart, ⅓ each). Lower is steadier;
- ``psnr_after_cuts``: PSNR over the `AFTER_CUT` frames from each cut, the cuts found on the
  grey input by the classic shot-boundary test (the histograms of L of two frames differ by
  more than `CUT_CHANGE` in total variation), independently of the flow filter's own test.

Each is computed per video, then averaged over videos (each weighs the same), except
``psnr_after_cuts``, pooled over every frame after a cut.
"""

from __future__ import annotations

import functools
import logging
import math
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path

import numpy as np
import torch
from rich.progress import Progress, TextColumn, TimeElapsedColumn
from torch import Tensor

from colorlab.color.srgb8 import lightness_f, lightness_from_f
from colorlab.errors import ColorlabError
from colorlab.inference.colorizer import TrainedColorizer
from colorlab.inference.evaluation import GRAY
from colorlab.inference.flow import FlowEstimator, consistent, warp
from colorlab.inference.merge import Lightness, merge
from colorlab.inference.temporal import TemporalFilter, TemporalSettings
from colorlab.inference.video import is_video, read_frames
from colorlab.metrics import colour_histograms, histogram_divergence, warping_error

log = logging.getLogger(__name__)

#: Grey frames whose 32-bin histograms of L differ by more than this total variation (in
#: [0, 1]) are a cut: camera motion over the test clips stays below 0.02, their cuts above 0.24.
CUT_CHANGE = 0.1
#: Frames from a cut (itself included) that ``psnr_after_cuts`` scores.
AFTER_CUT = 5
#: Frame gaps of CDC, weighed equally.
CDC_GAPS = (1, 2, 4)
#: The row of the colour truth itself (beside `GRAY`, its grey frames: ab = 0).
TRUTH = "truth"
VIDEO_METRICS = ("psnr", "e_warp", "cdc", "psnr_after_cuts")


def video_row(label: str, mode: str) -> str:
    """A row's name: ``baseline-mse@run · flow``."""
    return f"{label} · {mode}"


def find_videos(folder: str | Path) -> list[Path]:
    """The video files below ``folder`` (recursively, by extension), sorted; `ColorlabError`
    when there is none."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise ColorlabError(f"videos={folder!r} is not a folder; give a folder of colour videos")
    videos = sorted(p for p in root.rglob("*") if p.is_file() and is_video(p))
    if not videos:
        raise ColorlabError(f"videos={folder!r} holds no video files (.mp4, .mkv, .mov, …)")
    return videos


@dataclass
class _Pair:
    """Frame t−1 and t of the input: the flow from t−1 to t (1×2×H×W) and where it holds
    (1×1×H×W on t−1's pixels); no flow for the first frame and at a cut."""

    flow: Tensor | None
    trusted: Tensor | None
    after_cut: bool


class _Scores:
    """One row's scores over one video, frame by frame (holds one frame and four histograms)."""

    def __init__(self) -> None:
        self.psnr: list[float] = []
        self.after_cut: list[float] = []
        self.e_warp: list[float] = []
        self.cdc: dict[int, list[float]] = {gap: [] for gap in CDC_GAPS}
        self._previous: Tensor | None = None
        self._histograms: deque[np.ndarray] = deque(maxlen=max(CDC_GAPS))

    def add(self, rgb: np.ndarray, truth: Tensor | None, pair: _Pair) -> None:
        """Frame t (H×W×3 uint8), the truth's frame t (1×3×H×W in [0, 1], None for the truth
        itself) and the input's pair (t−1, t)."""
        frame = torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].float() / 255
        if truth is not None:
            psnr = float(-10 * torch.log10((frame - truth).square().mean().clamp(min=1e-10)))
            self.psnr.append(psnr)
            if pair.after_cut:
                self.after_cut.append(psnr)
        if pair.flow is not None and pair.trusted is not None and self._previous is not None:
            error = float(warping_error(self._previous, warp(frame, pair.flow), pair.trusted)[0])
            if math.isfinite(error):
                self.e_warp.append(error)
        histograms = colour_histograms(rgb)
        for gap in CDC_GAPS:
            if len(self._histograms) >= gap:
                self.cdc[gap].append(histogram_divergence(self._histograms[-gap], histograms))
        self._histograms.append(histograms)
        self._previous = frame

    def summary(self) -> dict[str, float]:
        """``psnr`` (rows with a truth), ``e_warp``, ``cdc`` and ``frames`` of this video."""
        out: dict[str, float] = {}
        if self.psnr:
            out["psnr"] = float(np.mean(self.psnr))
        if self.e_warp:
            out["e_warp"] = float(np.mean(self.e_warp))
        gaps = [np.mean(values) for values in self.cdc.values() if values]
        if gaps:
            out["cdc"] = float(np.mean(gaps))
        return out


def _batches(frames: Iterator[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    while batch := list(islice(frames, size)):
        yield batch


def _grey(frame: np.ndarray) -> Tensor:
    """A frame's lightness at full resolution: 1×1×H×W in [0, 100] (CPU)."""
    return lightness_from_f(torch.as_tensor(lightness_f(frame)))[None, None]


def is_cut(grey: Tensor, previous: Tensor) -> bool:
    """Whether two grey frames (L, any shape) are either side of a cut (`CUT_CHANGE`)."""
    histograms = [
        torch.histc(L.float(), bins=32, min=0, max=100) / L.numel() for L in (grey, previous)
    ]
    return float((histograms[0] - histograms[1]).abs().sum() / 2) > CUT_CHANGE


class _Input:
    """The grey input's pairs, frame by frame: the flow, its check and the cuts."""

    def __init__(self, estimator: FlowEstimator) -> None:
        self.estimator = estimator
        self._previous: Tensor | None = None
        self._since_cut = AFTER_CUT
        self.cuts = 0

    def pair(self, frame: np.ndarray) -> _Pair:
        grey, previous = _grey(frame), self._previous
        self._previous = grey
        if previous is None:
            return _Pair(None, None, False)
        if is_cut(grey, previous):
            self.cuts += 1
            self._since_cut = 0
        else:
            self._since_cut += 1
        after_cut = self._since_cut < AFTER_CUT
        if self._since_cut == 0:
            return _Pair(None, None, after_cut)
        flows = self.estimator(torch.cat([previous, grey]), torch.cat([grey, previous]))
        forward, backward = flows.split(1)
        return _Pair(forward, consistent(forward, backward), after_cut)


def score_video(
    path: Path,
    colorizers: dict[str, TrainedColorizer],
    temporal: TemporalSettings,
    modes: Sequence[str],
    estimator: FlowEstimator,
    batch_size: int = 8,
    on_frames: Callable[[int], None] | None = None,
) -> tuple[dict[str, dict[str, float]], dict[str, list[float]], int]:
    """One video: each row's `_Scores.summary` (the truth's and every colorizer × mode's), the
    PSNRs of the frames after cuts per row (pooled by the caller) and the cuts found."""
    grey_input = _Input(estimator)
    rows = {TRUTH: _Scores(), GRAY: _Scores()}
    filters: dict[str, TemporalFilter] = {}
    for label, colorizer in colorizers.items():
        for mode in modes:
            rows[video_row(label, mode)] = _Scores()
            filters[video_row(label, mode)] = replace(temporal, mode=mode).new_filter(
                colorizer.device
            )
    frames = 0
    for batch in _batches(read_frames(path), batch_size):
        pairs = [grey_input.pair(frame) for frame in batch]
        truths = [torch.from_numpy(np.array(f)).permute(2, 0, 1)[None].float() / 255 for f in batch]
        for frame, pair, truth in zip(batch, pairs, truths):
            rows[TRUTH].add(frame, None, pair)
            grey = Lightness(frame, torch.device("cpu"))
            rows[GRAY].add(np.asarray(merge(torch.zeros(1, 2, 8, 8), grey)), truth, pair)
        for label, colorizer in colorizers.items():
            lightnesses = [Lightness(frame, colorizer.device) for frame in batch]
            L_small = torch.cat([light.small(colorizer.size) for light in lightnesses])
            ab_small = colorizer.predict_small_ab(L_small)
            for mode in modes:
                name = video_row(label, mode)
                ab = filters[name](L_small, ab_small)
                for t, light in enumerate(lightnesses):
                    rgb = np.asarray(colorizer.merge(ab[t : t + 1], light))
                    rows[name].add(rgb, truths[t], pairs[t])
        frames += len(batch)
        if on_frames:
            on_frames(len(batch))
    if not frames:
        raise ColorlabError(f"{path}: no frame could be decoded")
    summaries = {name: {**scores.summary(), "frames": frames} for name, scores in rows.items()}
    after_cuts = {name: scores.after_cut for name, scores in rows.items()}
    return summaries, after_cuts, grey_input.cuts


def evaluate_videos(
    videos: Sequence[Path],
    colorizers: dict[str, TrainedColorizer],
    temporal: TemporalSettings,
    modes: Sequence[str],
    estimator: FlowEstimator,
    batch_size: int = 8,
) -> dict:
    """Score every video (see the module); an unreadable one is skipped with a warning and
    counted. Returns ``metrics`` (row -> averages over videos), ``videos`` (name -> row ->
    that video's scores), ``cuts`` and ``skipped``."""
    per_video: dict[str, dict[str, dict[str, float]]] = {}
    after_cuts: dict[str, list[float]] = {}
    cuts = skipped = 0
    columns = (TextColumn("{task.description}"), TextColumn("{task.completed} frames"))
    with Progress(*columns, TimeElapsedColumn()) as progress:
        for path in videos:
            task = progress.add_task(path.name, total=None)
            try:
                summaries, pooled, found = score_video(
                    path,
                    colorizers,
                    temporal,
                    modes,
                    estimator,
                    batch_size,
                    functools.partial(progress.advance, task),
                )
            except ColorlabError as error:
                log.warning("skipped video: %s", error)
                skipped += 1
                continue
            per_video[path.name] = summaries
            cuts += found
            for name, values in pooled.items():
                after_cuts.setdefault(name, []).extend(values)
    if not per_video:
        raise ColorlabError(f"none of the {len(videos)} videos could be read (see the warnings)")
    metrics: dict[str, dict[str, float]] = {}
    for name in next(iter(per_video.values())):
        row = {}
        for metric in ("psnr", "e_warp", "cdc"):
            values = [v[name][metric] for v in per_video.values() if metric in v[name]]
            if values:
                row[metric] = float(np.mean(values))
        if after_cuts.get(name):
            row["psnr_after_cuts"] = float(np.mean(after_cuts[name]))
        row["frames"] = sum(v[name]["frames"] for v in per_video.values())
        metrics[name] = row
    return {"metrics": metrics, "videos": per_video, "cuts": cuts, "skipped": skipped}


def _cell(row: dict[str, float], key: str, spec: str) -> str:
    return format(row[key], spec) if key in row else "–"


def video_table(metrics: dict[str, dict[str, float]], modes: Sequence[str]) -> str:
    """metrics.md for videos: a row per truth / colorizer × mode, E_warp beside frame by
    frame's (``none``) where that was scored."""
    lines = [
        "| row | psnr | e_warp | e_warp vs none | cdc | psnr after cuts | frames |",
        "|" + " --- |" * 7,
    ]
    for name, row in metrics.items():
        label, _, mode = name.rpartition(" · ")
        frame_by_frame = metrics.get(video_row(label, "none"), {}).get("e_warp")
        ratio = (
            f"{row['e_warp'] / frame_by_frame:.2f}×"
            if mode and frame_by_frame and "e_warp" in row
            else "–"
        )

        lines.append(
            f"| {name} | {_cell(row, 'psnr', '.2f')} | {_cell(row, 'e_warp', '.4g')} | {ratio} "
            f"| {_cell(row, 'cdc', '.4g')} | {_cell(row, 'psnr_after_cuts', '.2f')} "
            f"| {int(row['frames'])} |"
        )
    lines += [
        "",
        "e_warp: warping error (Lai et al. 2018) with the grey input's flow, RGB in [0, 1]; "
        "cdc: colour-distribution consistency (JS divergence at gaps 1, 2, 4). Lower is "
        "steadier for both. gray (ab = 0) is what the input's L alone gives: the least an "
        "output that keeps it can reach. psnr after cuts: the "
        f"{AFTER_CUT} frames from each cut. Modes: " + ", ".join(modes) + ".",
    ]
    return "\n".join(lines) + "\n"
