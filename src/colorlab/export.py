"""``python -m colorlab.export ckpt=C.ckpt output=model.onnx``: the network as ONNX.

The file holds the whole prediction path, L (B×1×H×W, 0..100) → ab (B×2×H×W in (-1, 1)), with
dynamic batch, height and width (`colorlab.inference.onnx`); ``load_colorizer("model.onnx")``,
``colorlab.colorize ckpt=model.onnx`` and the other tools run it with onnxruntime.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from colorlab.cli.runner import config_dir, one_line_errors, run_app
from colorlab.errors import ColorlabError, OptionError


def export(cfg: DictConfig) -> dict:
    """Export ``cfg.ckpt`` to ``cfg.output``; returns the metadata written."""
    from colorlab.inference.onnx import export_onnx

    output = Path(str(cfg.output))
    if output.suffix.lower() != ".onnx":
        raise OptionError("output", str(output), "give a file name ending in .onnx")
    if output.exists():
        raise ColorlabError(f"{output} exists; choose another output or remove it")
    opset = cfg.export.opset
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < 17:
        raise OptionError("export.opset", opset, "use an integer ≥ 17")
    temperature = cfg.export.temperature
    try:
        metadata = export_onnx(cfg.ckpt, output, temperature, opset)
    except OptionError as error:
        raise error.within("export") from None
    baked = metadata["temperature"]
    print(
        f"colorlab: {metadata['label']} exported to {output} (opset {opset}"
        + (f", temperature {baked}" if baked is not None else "")
        + ")",
        flush=True,
    )
    return metadata


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="export")
@one_line_errors
def _hydra_main(cfg: DictConfig) -> None:
    export(cfg)


def main() -> None:
    run_app(_hydra_main)


if __name__ == "__main__":
    main()
