"""colorlab: train, compare and apply CNNs that colorize grayscale photos."""

__version__ = "0.1.0"


def load_colorizer(path, device="auto", size=None, temperature=None, trusted=False):
    """Load a trained checkpoint (or an exported safetensors / ONNX file) for colorizing
    pictures, safely unless ``trusted``: see `colorlab.inference.colorizer.load_colorizer`."""
    from colorlab.inference.colorizer import load_colorizer as _load

    return _load(path, device=device, size=size, temperature=temperature, trusted=trusted)


__all__ = ["load_colorizer", "__version__"]
