"""Colorize rows: photos per second through colorize's own path, from JPEG files on disk to
files, beside its floor and its network (``colorize``), video frames per second with each
temporal setting (``video``), and the peak memory of colorizing one large photo (``memory``)."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from PIL import Image

from colorlab.benchmarks.rows import Bench, row
from colorlab.data.images import open_rgb
from colorlab.data.painting import render_scenes
from colorlab.devices import synchronize
from colorlab.errors import ColorlabError
from colorlab.inference.colorizer import TrainedColorizer, load_colorizer
from colorlab.inference.jobs import Job, colorize_files, default_threads, plan_jobs, save_picture
from colorlab.inference.temporal import TEMPORAL_MODES, TemporalSettings
from colorlab.inference.video import colorize_video


def write_photos(folder: Path, count: int, size: int, device: torch.device) -> None:
    """``count`` synthetic scenes as size×size JPEG photos in ``folder``."""
    folder.mkdir(parents=True)
    for start in range(0, count, 8):
        scenes = render_scenes(11, range(start, min(start + 8, count)), size, device=device)
        for i, scene in enumerate(scenes.permute(0, 2, 3, 1).cpu().numpy()):
            Image.fromarray(scene).save(folder / f"photo_{start + i:04d}.jpg", quality=90)


def decode_encode_floor(jobs: list[Job], threads: int) -> float:
    """Photos per second of the work colorize cannot avoid: decoding each input and encoding
    a picture of its size to its output format, in ``threads`` threads (written to
    ``<target>.floor<ext>``)."""

    def copy(job: Job) -> None:
        save_picture(open_rgb(job.source), job.target.with_suffix(".floor" + job.target.suffix))

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(copy, jobs))
    return len(jobs) / (time.perf_counter() - start)


def network_speed(colorizer: TrainedColorizer, batch: int, batches: int = 8) -> float:
    """Photos per second of the network alone on batches of L at its size (no I/O, no merge),
    after one untimed batch."""
    L = torch.rand(batch, 1, colorizer.size, colorizer.size, device=colorizer.device) * 100
    colorizer.predict_small_ab(L)
    synchronize(colorizer.device)
    start = time.perf_counter()
    for _ in range(batches):
        colorizer.predict_small_ab(L)
    synchronize(colorizer.device)
    return batch * batches / (time.perf_counter() - start)


@row("colorize", needs_checkpoint=True)
def colorize_row(cfg: DictConfig, bench: Bench) -> dict[str, Any]:
    """Photos per second through colorize's own path, from JPEG files on disk to files; beside
    it the decode+encode floor of the same files on all cores (``vs_floor``) and the network
    alone (``network_images_per_s``), the two bounds of colorize's speed."""
    options = cfg.bench
    colorizer = load_colorizer(bench.checkpoint(), device=bench.device, trusted=bench.trusted)
    jobs, seconds = _time_colorize(colorizer, cfg, bench, "colorized")
    speed = len(jobs) / seconds
    floor = decode_encode_floor(jobs, default_threads())
    return {
        "images_per_s": speed,
        "seconds": seconds,
        "photo_size": options.colorize_size,
        "threads": default_threads(),
        "floor_images_per_s": round(floor, 1),
        "vs_floor": round(speed / floor, 3),
        "network_images_per_s": round(network_speed(colorizer, options.colorize_batch), 1),
    }


def _time_colorize(
    colorizer: TrainedColorizer, cfg: DictConfig, bench: Bench, name: str
) -> tuple[list[Job], float]:
    """Colorize the bench's photos (written once) into ``name``, after a warm-up of four;
    the jobs and the seconds they took."""
    options, work = cfg.bench, bench.scratch / "colorize"
    if not (work / "photos").is_dir():
        write_photos(work / "photos", options.colorize_images, options.colorize_size, bench.device)
    warm = plan_jobs(str(work / "photos" / "photo_000[0-3].jpg"), work / f"warm-{name}", "", None)
    colorize_files(colorizer, warm, options.colorize_batch)
    jobs = plan_jobs(str(work / "photos"), work / name, "", None)
    synchronize(bench.device)
    start = time.perf_counter()
    colorize_files(colorizer, jobs, options.colorize_batch)
    synchronize(bench.device)
    return jobs, time.perf_counter() - start


@row("onnx", needs_checkpoint=True)
def onnx_row(cfg: DictConfig, bench: Bench) -> dict[str, Any]:
    """The colorize row's photos through the same path with the network exported to ONNX and
    run by onnxruntime (CPU), beside PyTorch's network on the same files."""
    from colorlab.inference.onnx import export_onnx

    exported = bench.scratch / "bench.onnx"
    if not exported.exists():
        export_onnx(bench.checkpoint(), exported, trusted=bench.trusted)
    onnx = load_colorizer(exported, device="cpu")
    jobs, seconds = _time_colorize(onnx, cfg, bench, "colorized-onnx")
    torch_jobs, torch_seconds = _time_colorize(
        load_colorizer(bench.checkpoint(), device="cpu", trusted=bench.trusted),
        cfg,
        bench,
        "colorized-torch",
    )
    return {
        "images_per_s": len(jobs) / seconds,
        "seconds": seconds,
        "photo_size": cfg.bench.colorize_size,
        "torch_images_per_s": round(len(torch_jobs) / torch_seconds, 1),
        "network_images_per_s": round(network_speed(onnx, cfg.bench.colorize_batch), 1),
    }


def write_panning_clip(path: Path, frames: int, size: tuple[int, int]) -> None:
    """A lossless clip of ``frames`` frames of ``size`` (W, H): a camera panning 2 px a frame
    across a synthetic scene (FFV1 in Matroska)."""
    import av

    width, height = size
    side = max(width + 2 * frames, height) + 8
    scene = render_scenes(7, [0], side)[0].permute(1, 2, 0).numpy()
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=24)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv444p"
        for t in range(frames):
            window = np.ascontiguousarray(scene[4 : 4 + height, 2 * t : 2 * t + width])
            for packet in stream.encode(av.VideoFrame.from_ndarray(window, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


@row("video", needs_checkpoint=True)
def video_row(cfg: DictConfig, bench: Bench) -> dict[str, Any]:
    """Video frames per second through colorize's video path (decode, network, temporal
    filter, merge, encode) with each ``colorize.temporal`` setting, on one panning clip of
    ``bench.video_size``; ``images_per_s`` is the default's (flow), ``flow_vs_none`` its
    ratio to frame by frame."""
    options = cfg.bench
    colorizer = load_colorizer(bench.checkpoint(), device=bench.device, trusted=bench.trusted)
    clip = bench.scratch / "video" / "clip.mkv"
    clip.parent.mkdir(parents=True, exist_ok=True)
    write_panning_clip(clip, options.video_frames, tuple(options.video_size))
    speeds = {}
    for mode in TEMPORAL_MODES[::-1]:  # none, ema, flow
        settings = TemporalSettings(mode=mode)
        colorize_video(colorizer, clip, clip.with_name(f"warm-{mode}.mkv"), 8, settings)
        synchronize(bench.device)
        start = time.perf_counter()
        frames = colorize_video(
            colorizer, clip, clip.with_name(f"{mode}.mkv"), options.colorize_batch, settings
        )
        synchronize(bench.device)
        speeds[mode] = frames / (time.perf_counter() - start)
    return {
        "images_per_s": speeds["flow"],
        "seconds": options.video_frames / speeds["flow"],
        "video_size": "x".join(str(v) for v in options.video_size),
        "none_frames_per_s": round(speeds["none"], 1),
        "ema_frames_per_s": round(speeds["ema"], 1),
        "flow_vs_none": round(speeds["flow"] / speeds["none"], 3),
    }


@row("memory", needs_checkpoint=True)
def memory_row(cfg: DictConfig, bench: Bench) -> dict[str, Any]:
    """Peak resident memory of ``python -m colorlab.colorize`` on one 4:3 JPEG photo of
    ``bench.megapixels``."""
    megapixels, work = cfg.bench.megapixels, bench.scratch
    width = int(round((megapixels * 1e6 * 4 / 3) ** 0.5))
    height = int(round(width * 3 / 4))
    y, x = np.ogrid[0:height, 0:width]
    picture = np.empty((height, width, 3), np.uint8)
    picture[..., 0] = (127 + 120 * np.sin(x / 700.0)).astype(np.uint8)
    picture[..., 1] = (127 + 120 * np.cos(y / 500.0)).astype(np.uint8)
    picture[..., 2] = ((x + y) % 256).astype(np.uint8)
    Image.fromarray(picture).save(work / "large.jpg", quality=90)
    del picture
    command = [
        sys.executable,
        "-m",
        "colorlab.benchmarks.peak_rss",
        f"ckpt={bench.ckpt}",
        f"input={work / 'large.jpg'}",
        f"output={work / 'large-out'}",
        f"colorize.device={bench.device.type}",
        f"colorize.max_megapixels={max(179, 2 * megapixels)}",
        f"trust_checkpoint={str(bench.trusted).lower()}",
    ]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode:
        raise ColorlabError(f"colorize failed in the memory row: {result.stderr.strip()[-500:]}")
    peak_kb = int(result.stdout.split("peak_rss_kb")[-1].split()[0])
    return {
        "megapixels": round(width * height / 1e6, 1),
        "peak_rss_gb": round(peak_kb / 1024**2, 2),
        "seconds": seconds,
    }
