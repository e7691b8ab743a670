"""Colour test clips with known motion, made from photos (no video data set can be downloaded
here): pans, zooms, an object moving over a background, and cuts between photos. Frames are
rendered with sub-pixel motion (bilinear affine sampling) and written losslessly (FFV1 in
Matroska) so that the truth's own warping error is motion, not compression. Never commit
them: they are made again in seconds.

    python experiments/make_clips.py --photos ../shared/data/scenes/val --out clips \
        [--clips 12] [--frames 24] [--size 256x192] [--fps 24] [--seed 0]

Clip ``i`` is of kind ``KINDS[i % 4]``; ``clips.json`` beside them lists each clip's kind,
photos and the frames that follow a cut.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from colorlab.data.folder import find_images, vet_images

KINDS = ("pan", "zoom", "object", "cut")


def view(
    photo: Image.Image, size: tuple[int, int], scale: float, x: float, y: float
) -> Image.Image:
    """The window of ``size`` (W, H) whose top-left is (x, y) in a photo enlarged ``scale``
    times (output pixel (u, v) samples the photo at ((u + x) / scale, (v + y) / scale))."""
    s = 1 / scale
    return photo.transform(size, Image.AFFINE, (s, 0, x * s, 0, s, y * s), Image.BILINEAR)


def cover_scale(photo: Image.Image, size: tuple[int, int], margin: float) -> float:
    """The enlargement at which the photo covers ``size`` with ``margin`` (a fraction) to spare."""
    return max(size[0] / photo.width, size[1] / photo.height) * (1 + margin)


def pan(photo: Image.Image, size: tuple[int, int], frames: int, rng) -> list[Image.Image]:
    """A camera panning across the photo at a constant speed, 1.5–3.5 px a frame."""
    scale = cover_scale(photo, size, 0.4)
    room = (photo.width * scale - size[0], photo.height * scale - size[1])
    speed = rng.uniform(1.5, 3.5)
    angle = rng.uniform(-0.4, 0.4) + (np.pi if rng.random() < 0.5 else 0)
    step = (speed * np.cos(angle), speed * np.sin(angle))
    x0 = room[0] / 2 - step[0] * frames / 2
    y0 = room[1] / 2 - step[1] * frames / 2
    return [view(photo, size, scale, x0 + step[0] * t, y0 + step[1] * t) for t in range(frames)]


def zoom(photo: Image.Image, size: tuple[int, int], frames: int, rng) -> list[Image.Image]:
    """A zoom into (or out of) the photo's centre, 1.2–1.5× over the clip."""
    base = cover_scale(photo, size, 0.02)
    factor = rng.uniform(1.2, 1.5) ** (1 if rng.random() < 0.5 else -1)
    start = base * max(1.0, 1 / factor)
    clip = []
    for t in range(frames):
        scale = start * factor ** (t / max(frames - 1, 1))
        x = photo.width * scale / 2 - size[0] / 2
        y = photo.height * scale / 2 - size[1] / 2
        clip.append(view(photo, size, scale, x, y))
    return clip


def moving_object(
    background: Image.Image, thing: Image.Image, size: tuple[int, int], frames: int, rng
) -> list[Image.Image]:
    """An elliptical cut-out of another photo gliding over a slowly panning background,
    3–5 px a frame: it occludes what is ahead of it and uncovers what it leaves."""
    scenery = pan(background, size, frames, rng)
    width, height = size[0] // 3, size[1] // 3
    cutout = thing.resize((width, height), Image.BILINEAR)
    mask = Image.new("L", (width, height), 0)
    ImageDraw.Draw(mask).ellipse((0, 0, width - 1, height - 1), fill=255)
    mask = mask.filter(ImageFilter.GaussianBlur(1))
    speed = rng.uniform(3, 5) * (1 if rng.random() < 0.5 else -1)
    y = rng.uniform(0.2, 0.6) * size[1]
    x0 = (size[0] - width) / 2 - speed * frames / 2
    clip = []
    for t, frame in enumerate(scenery):
        x = x0 + speed * t
        whole = int(np.floor(x))  # sub-pixel position: the cut-out is shifted within its box
        shifted = cutout.transform(cutout.size, Image.AFFINE, (1, 0, whole - x, 0, 1, 0))
        shifted_mask = mask.transform(mask.size, Image.AFFINE, (1, 0, whole - x, 0, 1, 0))
        frame = frame.copy()
        frame.paste(shifted, (whole, int(y)), shifted_mask)
        clip.append(frame)
    return clip


def cut(first: Image.Image, second: Image.Image, size, frames: int, rng) -> tuple[list, int]:
    """A pan over one photo, then a hard cut to a pan over another; (frames, the cut's index)."""
    at = frames // 2
    return pan(first, size, at, rng) + pan(second, size, frames - at, rng), at


def write_clip(path: Path, frames: list[Image.Image], fps: int) -> None:
    """Frames (PIL RGB, one size) as a lossless FFV1 Matroska clip."""
    width, height = frames[0].size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "bgr0"
        for frame in frames:
            packets = stream.encode(av.VideoFrame.from_ndarray(np.asarray(frame), format="rgb24"))
            for packet in packets:
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def make_clips(
    photos: Path,
    out: Path,
    clips: int,
    frames: int,
    size: tuple[int, int],
    fps: int,
    seed: int,
    min_colorfulness: float = 5.0,
) -> list[dict]:
    """Write ``clips`` clips into ``out`` (refused if it holds clips) from the photos that
    ``data=folder`` would train on (unreadable, black or white, and colourless ones left out,
    ``min_colorfulness`` as ``data.min_colorfulness``); returns their records."""
    files, report = vet_images(find_images(photos), min_colorfulness, 2)  # as data=folder does
    print(f"{photos}: {report.summary(len(files))}")
    if len(files) < 2:
        raise SystemExit(f"{photos}: needs at least 2 photos, found {len(files)}")
    out.mkdir(parents=True, exist_ok=True)
    if any(out.glob("*.mkv")):
        raise SystemExit(f"{out} already holds clips; choose an empty folder")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(files))
    records = []
    for i in range(clips):
        kind = KINDS[i % len(KINDS)]
        picked = [files[order[(2 * i + k) % len(files)]] for k in (0, 1)]
        first, second = (Image.open(p).convert("RGB") for p in picked)
        cuts: list[int] = []
        if kind == "pan":
            clip = pan(first, size, frames, rng)
        elif kind == "zoom":
            clip = zoom(first, size, frames, rng)
        elif kind == "object":
            clip = moving_object(first, second, size, frames, rng)
        else:
            clip, at = cut(first, second, size, frames, rng)
            cuts = [at]
        name = f"clip_{i:02d}_{kind}.mkv"
        write_clip(out / name, clip, fps)
        used = picked if kind in ("object", "cut") else picked[:1]
        records.append({"file": name, "kind": kind, "photos": [str(p) for p in used], "cuts": cuts})
    (out / "clips.json").write_text(json.dumps(records, indent=2))
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--size", default="256x192", help="WxH")
    parser.add_argument("--fps", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    records = make_clips(
        args.photos, args.out, args.clips, args.frames, (width, height), args.fps, args.seed
    )
    kinds = ", ".join(f"{sum(r['kind'] == k for r in records)} {k}" for k in KINDS)
    print(
        f"{len(records)} clips of {args.frames} frames at {width}x{height} in {args.out} ({kinds})"
    )


if __name__ == "__main__":
    main()
