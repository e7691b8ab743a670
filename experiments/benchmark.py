"""Throughput benchmarks that print numbers (no assertions; see experiments/README.md).

python experiments/benchmark.py train --model baseline --size 64 [--batch 32] [--loss mse] [--device cpu] [OVERRIDES]
python experiments/benchmark.py colorize --ckpt best.ckpt --size 1024 [--model-size 256] [--device cpu]
python experiments/benchmark.py memory --ckpt best.ckpt --megapixels 27 108
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from PIL import Image

from colorlab.app import config_dir
from colorlab.color import lab_batch
from colorlab.data import SyntheticScenes
from colorlab.inference import load_colorizer, resolve_device
from colorlab.pictures import to_pil


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def train_throughput(
    model: str,
    size: int,
    batch: int,
    device: str,
    steps: int,
    precision: str,
    loss: str = "mse",
    overrides: list[str] = (),
) -> dict:
    """Images per second of forward + loss + backward + RMSprop step on a fixed synthetic
    batch; ``loss`` is a ``conf/loss`` option (a classification loss gets its prior first)."""
    device = resolve_device(device)
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train", overrides=[f"loss={loss}", "run_dir=.", *overrides])
    loss_fn = instantiate(cfg.loss, _convert_="all").to(device)
    config = {
        "_target_": f"colorlab.models.{model}",
        **({"pretrained": False} if model != "baseline" else {}),
    }
    net = instantiate(config, head=loss_fn.head, _convert_="all").to(device).train()
    if device.type == "cuda":
        net = net.to(memory_format=torch.channels_last)
    optimizer = torch.optim.RMSprop(
        [p for p in net.parameters() if p.requires_grad], lr=1e-3, alpha=0.9, eps=1e-7
    )
    scenes = SyntheticScenes(batch, size)
    data = lab_batch(torch.stack([scenes[i] for i in range(batch)]).to(device))
    if getattr(loss_fn, "needs_prior", False):
        loss_fn.fit_prior([data["ab"]])
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")

    def step() -> None:
        with autocast:
            value = loss_fn(net(data["L"]), data)
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()

    for _ in range(3):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    seconds = time.perf_counter() - start
    return {
        "bench": "train",
        "model": model,
        "loss": " ".join([loss, *overrides]),
        "size": size,
        "batch": batch,
        "device": str(device),
        "precision": precision,
        "threads": torch.get_num_threads(),
        "images_per_s": round(steps * batch / seconds, 1),
    }


def colorize_throughput(
    ckpt: str, size: int, count: int, batch: int, device: str, model_size: int | None
) -> dict:
    """Pictures per second of `TrainedColorizer.colorize_batch` on size×size photos
    (decoding excluded; L extraction, model, upsampling and merging included)."""
    colorizer = load_colorizer(ckpt, device=device, size=model_size)
    scenes = SyntheticScenes(count, size, seed=5)
    pictures = [to_pil(scenes[i].float() / 255) for i in range(count)]
    colorizer.colorize_batch(pictures[:batch])
    _sync(colorizer.device)
    start = time.perf_counter()
    for i in range(0, count, batch):
        colorizer.colorize_batch(pictures[i : i + batch])
    _sync(colorizer.device)
    seconds = time.perf_counter() - start
    return {
        "bench": "colorize",
        "size": size,
        "model_size": colorizer.size,
        "device": str(colorizer.device),
        "threads": torch.get_num_threads(),
        "images_per_s": round(count / seconds, 2),
    }


# The child reports its own peak: VmHWM of /proc/self/status is per address space (ru_maxrss
# would carry over this parent's footprint across fork + exec).
_PEAK_RSS_CHILD = """
import sys
from colorlab.colorize import main
sys.argv = sys.argv[1:]
code = 0
try:
    main()
except SystemExit as error:
    code = error.code or 0
status = open("/proc/self/status").read()
print("peak_rss_kb", status.split("VmHWM:")[1].split()[0])
sys.exit(code)
"""


def colorize_memory(ckpt: str, megapixels: float, device: str) -> dict:
    """Peak resident memory of ``python -m colorlab.colorize`` on one 4:3 JPEG photo of
    ``megapixels`` (a smooth colourful picture written to a temporary folder)."""
    width = int(round((megapixels * 1e6 * 4 / 3) ** 0.5))
    height = int(round(width * 3 / 4))
    with tempfile.TemporaryDirectory() as folder:
        y, x = np.ogrid[0:height, 0:width]
        picture = np.empty((height, width, 3), np.uint8)
        picture[..., 0] = (127 + 120 * np.sin(x / 700.0)).astype(np.uint8)
        picture[..., 1] = (127 + 120 * np.cos(y / 500.0)).astype(np.uint8)
        picture[..., 2] = ((x + y) % 256).astype(np.uint8)
        Image.fromarray(picture).save(f"{folder}/photo.jpg", quality=90)
        del picture
        command = [
            sys.executable,
            "-c",
            _PEAK_RSS_CHILD,
            "colorize",
            f"ckpt={ckpt}",
            f"input={folder}/photo.jpg",
            f"output={folder}/out",
            f"colorize.device={device}",
            "colorize.max_megapixels=400",
        ]
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if result.returncode:
            raise SystemExit(result.stderr[-2000:])
        with Image.open(f"{folder}/out/photo.jpg") as out:
            assert out.size == (width, height)
    peak_kb = int(result.stdout.split("peak_rss_kb")[-1].split()[0])
    return {
        "bench": "colorize_memory",
        "megapixels": round(width * height / 1e6, 1),
        "size": f"{width}x{height}",
        "device": device,
        "peak_rss_gb": round(peak_kb / 1024**2, 2),
        "seconds": round(seconds, 1),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="bench", required=True)
    train = sub.add_parser("train")
    train.add_argument("--model", default="baseline", choices=["baseline", "vgg16", "vgg16_fusion"])
    train.add_argument("--size", type=int, default=64)
    train.add_argument("--batch", type=int, default=32)
    train.add_argument("--steps", type=int, default=10)
    train.add_argument("--device", default="auto")
    train.add_argument("--precision", default="32", choices=["32", "bf16"])
    train.add_argument("--loss", default="mse", help="a conf/loss option: mse, l1, classification…")
    train.add_argument("overrides", nargs="*", help="config overrides, e.g. loss.rebalance=null")
    colorize = sub.add_parser("colorize")
    colorize.add_argument("--ckpt", required=True)
    colorize.add_argument("--size", type=int, default=1024)
    colorize.add_argument("--count", type=int, default=16)
    colorize.add_argument("--batch", type=int, default=8)
    colorize.add_argument("--device", default="auto")
    colorize.add_argument(
        "--model-size", type=int, default=None, help="default: the size it was trained at"
    )
    memory = sub.add_parser("memory")
    memory.add_argument("--ckpt", required=True)
    memory.add_argument("--megapixels", type=float, nargs="+", default=[27, 108])
    memory.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.bench == "memory":
        for megapixels in args.megapixels:
            print(json.dumps(colorize_memory(args.ckpt, megapixels, args.device)), flush=True)
        raise SystemExit(0)
    if args.bench == "train":
        result = train_throughput(
            args.model,
            args.size,
            args.batch,
            args.device,
            args.steps,
            args.precision,
            args.loss,
            args.overrides,
        )
    else:
        result = colorize_throughput(
            args.ckpt, args.size, args.count, args.batch, args.device, args.model_size
        )
    print(json.dumps(result))
