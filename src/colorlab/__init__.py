"""colorlab: train, compare and apply CNNs that colorize grayscale photos."""

__version__ = "0.1.0"
