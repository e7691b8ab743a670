"""``python -m colorlab.export ckpt=C.ckpt output=model.onnx|model.safetensors``: the network
as ONNX, or its weights as safetensors.

- ``.onnx``: the whole prediction path, L (B×1×H×W, 0..100) → ab (B×2×H×W in (-1, 1)), with
  dynamic batch, height and width (`colorlab.inference.onnx`), run by onnxruntime.
- ``.safetensors``: the plain network's weights with its model and loss configs in the file's
  metadata (`colorlab.loading.write_safetensors`): no pickle, so nothing in it can run code —
  the format to share a trained network in.

``load_colorizer(path)``, ``colorlab.colorize ckpt=path`` and the other tools read both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from colorlab.cli.runner import one_line_errors, run_app
from colorlab.cli.validation import EXPORT_RULES, validate
from colorlab.configs import config_dir
from colorlab.errors import ColorlabError, OptionError

#: What ``output`` may end in.
FORMATS = (".onnx", ".safetensors")


def check_output(output: Path) -> None:
    """Refuse an output that exists (a dangling link included: writing through it would create
    its target), or whose folder is a file."""
    if output.suffix.lower() not in FORMATS:
        raise OptionError("output", str(output), "give a file name ending in .onnx or .safetensors")
    if output.is_symlink() and not output.exists():
        raise ColorlabError(
            f"{output} is a link to {output.readlink()}, which does not exist; writing would "
            "create that file: choose another output or remove the link"
        )
    if output.exists():
        raise ColorlabError(f"{output} exists; choose another output or remove it")
    for parent in output.parents:
        if parent.exists() and not parent.is_dir():
            raise ColorlabError(
                f"cannot write {output}: {parent} is a file, not a folder; choose another output"
            )


def export(cfg: DictConfig) -> dict[str, Any]:
    """Export ``cfg.ckpt`` to ``cfg.output``; returns the metadata written."""
    validate(cfg, EXPORT_RULES)
    output = Path(str(cfg.output))
    check_output(output)
    if output.suffix.lower() == ".safetensors":
        metadata = export_safetensors(cfg.ckpt, output, cfg.trust_checkpoint)
        print(f"colorlab: {metadata['label']} exported to {output} (safetensors)", flush=True)
        return metadata
    from colorlab.inference.onnx import export_onnx

    opset = cfg.export.opset
    temperature = cfg.export.temperature
    try:
        metadata = export_onnx(cfg.ckpt, output, temperature, opset, cfg.trust_checkpoint)
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


def export_safetensors(ckpt: str | Path, output: Path, trusted: bool = False) -> dict[str, Any]:
    """Write checkpoint ``ckpt``'s network to the safetensors file ``output`` (atomically);
    returns what its metadata says (image size, model and loss configs, label)."""
    from colorlab.files import written_atomically
    from colorlab.inference.network import load_network
    from colorlab.loading import write_safetensors
    from colorlab.models import ColorizerBase

    network = load_network(ckpt, "cpu", trusted)
    assert isinstance(network.net, ColorizerBase)  # load_network reads checkpoints
    hparams = {
        "image_size": network.image_size,
        "model": network.model,
        "loss": network.loss,
        "label": network.label,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    with written_atomically(output) as temporary:
        write_safetensors(temporary, network.net.state_dict(), hparams)
    return hparams


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="export")
@one_line_errors
def _hydra_main(cfg: DictConfig) -> None:
    export(cfg)


def main() -> None:
    run_app(_hydra_main)


if __name__ == "__main__":
    main()
