"""The data row: batches and images per second that a data module alone delivers to the device,
Lab made there (no model), for ``data=folder`` streamed by workers, the same photos cached in
RAM, and ``data=streaming`` from LitData shards of them — as they are, and prepared at the
training size (``colorlab.prepare prepare.image_size=S``) — side by side on the same photos."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from colorlab.benchmarks.colorizing import write_photos
from colorlab.benchmarks.rows import Bench, row
from colorlab.data.folder import FolderDataModule
from colorlab.data.shards import prepare
from colorlab.data.streaming import StreamingDataModule
from colorlab.devices import synchronize


def _rate(datamodule, bench: Bench, epochs: int) -> tuple[float, float, int]:
    """(batches/s, images/s, images) of training epochs of ``datamodule``'s loader moved to the
    device and made Lab, after one untimed epoch (workers started, caches filled)."""
    loader = datamodule.train_dataloader()

    def epoch() -> tuple[int, int]:
        batches = images = 0
        for raw in loader:
            datamodule.on_after_batch_transfer(raw.to(bench.device, non_blocking=True), 0)
            batches, images = batches + 1, images + len(raw)
        return batches, images

    epoch()
    synchronize(bench.device)
    start = time.perf_counter()
    counts = [epoch() for _ in range(epochs)]
    synchronize(bench.device)
    seconds = time.perf_counter() - start
    batches, images = sum(c[0] for c in counts), sum(c[1] for c in counts)
    return batches / seconds, images / seconds, images


@row("data")
def data_row(cfg: DictConfig, bench: Bench) -> dict[str, Any]:
    """The data modules alone on ``bench.data_images`` JPEG photos of ``bench.data_photo_size``
    px (written once; or the photos of ``bench.data_root``), at ``data.image_size``, batch
    ``data.batch_size``, ``data.num_workers`` workers; ``images_per_s`` is streaming's,
    ``vs_folder`` its ratio to the folder's workers; ``sized_…`` the same for shards prepared at
    ``data.image_size``."""
    options, data = cfg.bench, cfg.data
    photos = Path(options.data_root) if options.get("data_root") else bench.scratch / "photos"
    if not options.get("data_root") and not photos.is_dir():
        write_photos(photos / "train", options.data_images, options.data_photo_size, bench.device)
    # the photos as they are, and shrunk to the training size (prepare.image_size)
    shards = {
        "streaming": (bench.scratch / "shards", None),
        "sized": (bench.scratch / f"shards-{data.image_size}", data.image_size),
    }
    for folder, size in shards.values():
        if not (folder / "prepared.json").is_file():
            prepare(photos, folder, size, min_colorfulness=0.0, workers=max(1, data.num_workers))
    common = {
        "image_size": data.image_size,
        "batch_size": data.batch_size,
        "num_workers": data.num_workers,
        "flip": False,
        "seed": cfg.seed,
    }
    epochs = options.data_epochs
    modules = {
        "folder": FolderDataModule(root=str(photos), min_colorfulness=0.0, cache="none", **common),
        "cache": FolderDataModule(root=str(photos), min_colorfulness=0.0, cache="cpu", **common),
        **{
            name: StreamingDataModule(input_dir=str(folder), **common)
            for name, (folder, _) in shards.items()
        },
    }
    rates = {name: _rate(module, bench, epochs) for name, module in modules.items()}
    streaming = rates["streaming"]
    return {
        "images_per_s": streaming[1],
        "batches_per_s": round(streaming[0], 2),
        "seconds": streaming[2] / streaming[1],
        "folder_images_per_s": round(rates["folder"][1], 1),
        "cache_images_per_s": round(rates["cache"][1], 1),
        "vs_folder": round(streaming[1] / rates["folder"][1], 3),
        "sized_images_per_s": round(rates["sized"][1], 1),
        "sized_vs_folder": round(rates["sized"][1] / rates["folder"][1], 3),
        "images": streaming[2] // epochs,
        "workers": data.num_workers,
    }
