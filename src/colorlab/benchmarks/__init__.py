"""The rows of ``python -m colorlab.bench``, a registry of functions (`rows.ROWS`):

- ``model``: the network alone: forward, loss, backward and optimizer step on one batch that
  stays on the device (the ceiling for everything else);
- ``train``: end-to-end training steps through Lightning: data (cache or workers) → device →
  augmentation and Lab → step; no validation;
- ``epoch``: whole epochs of ``colorlab.train``: validation, checkpoints and sample pictures
  included (after a first, untimed epoch; ``wall_s`` is the whole run);
- ``colorize``: colorize's own path over JPEG photos read from disk, from the epoch row's
  checkpoint or ``bench.ckpt``, beside its decode+encode floor and the network alone;
- ``onnx``: the same photos with the network exported to ONNX and run by onnxruntime (CPU),
  beside PyTorch's on the CPU;
- ``video``: video frames/s through colorize's video path with each ``colorize.temporal``
  setting (none, ema, flow) on one panning clip;
- ``data``: batches and images per second that the data modules alone deliver to the device
  (Lab made there, no model): ``data=folder``'s workers, its RAM cache and ``data=streaming``
  from LitData shards of the same photos;
- ``memory``: peak resident memory of ``python -m colorlab.colorize`` on one large photo.
"""

from colorlab.benchmarks import colorizing, loading, training  # noqa: F401  (they register rows)
from colorlab.benchmarks.rows import NEEDS_CHECKPOINT, Bench
from colorlab.benchmarks.rows import ROWS as _REGISTERED

#: The rows in the order of the list above.
ROWS = {
    name: _REGISTERED[name]
    for name in ("model", "train", "epoch", "colorize", "onnx", "video", "data", "memory")
}

__all__ = ["NEEDS_CHECKPOINT", "ROWS", "Bench"]
