"""Inference: a trained network (`network`) colorizes photos of any size at full resolution
(`colorizer`, `merge`), files, folders and videos (`jobs`, `video`), and is scored against
others on the same photos (`evaluation`). Nothing here needs Lightning, a loss or an optimizer.
"""

from colorlab.inference.colorizer import ImageLike, TrainedColorizer, as_rgb_image, load_colorizer
from colorlab.inference.network import TrainedNetwork, checkpoint_label, display_name, load_network

__all__ = [
    "ImageLike",
    "TrainedColorizer",
    "TrainedNetwork",
    "as_rgb_image",
    "checkpoint_label",
    "display_name",
    "load_colorizer",
    "load_network",
]
