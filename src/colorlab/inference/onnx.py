"""ONNX: the whole prediction path of a trained network, L (B×1×H×W, 0..100) → ab (B×2×H×W in
(-1, 1)), a classification head's annealed-mean decoding included (its temperature baked in),
exported with dynamic batch, height and width; and the same network run by onnxruntime behind
the interface `TrainedColorizer` uses, so that ``load_colorizer("model.onnx")`` colorizes like a
checkpoint.

The file carries what a checkpoint says about its network (size, model and loss configs,
label, head kind, temperature) as ONNX metadata under ``colorlab``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from colorlab.color import check_temperature
from colorlab.configs import check_targets
from colorlab.errors import ColorlabError, first_line
from colorlab.inference.network import TrainedNetwork, load_network
from colorlab.models import ColorizerBase
from colorlab.models.heads import ClassificationHead

#: The ONNX operator set the export writes (17: LayerNormalization, dynamic Resize).
OPSET = 17


class _PredictionPath(nn.Module):
    """``net.predict_ab`` at a fixed temperature, as one module to trace."""

    def __init__(self, net: ColorizerBase, temperature: float | None):
        super().__init__()
        self.net, self.temperature = net, temperature

    def forward(self, L: Tensor) -> Tensor:
        return self.net.predict_ab(L, self.temperature)


def export_onnx(
    ckpt: str | Path,
    output: str | Path,
    temperature: float | None = None,
    opset: int = OPSET,
    trusted: bool = False,
) -> dict[str, Any]:
    """Export checkpoint ``ckpt`` to ONNX file ``output``; returns the metadata written.
    A network that cannot be exported is a `ColorlabError` naming what failed."""
    import onnx

    network = load_network(ckpt, "cpu", trusted)
    net = network.net
    assert isinstance(net, ColorizerBase)  # load_network reads checkpoints: torch networks
    classification = isinstance(net.head, ClassificationHead)
    if temperature is not None:
        check_temperature(temperature)
    baked = (
        (temperature or net.head.temperature) if isinstance(net.head, ClassificationHead) else None
    )
    example = torch.rand(1, 1, network.image_size, network.image_size) * 100
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    dynamic = {0: "batch", 2: "height", 3: "width"}
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about the shape checks
            torch.onnx.export(
                _PredictionPath(net, baked).eval(),
                (example,),
                str(output),
                input_names=["L"],
                output_names=["ab"],
                opset_version=opset,
                dynamic_axes={"L": dynamic, "ab": dynamic},
                dynamo=False,
            )
    except Exception as error:  # noqa: BLE001 - any exporter failure is one line
        raise ColorlabError(
            f"cannot export {network.label} to ONNX: {type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}"
        ) from error
    metadata = {
        "image_size": network.image_size,
        "multiple": net.multiple,
        "model": network.model,
        "loss": network.loss,
        "label": network.label,
        "head_kind": "classification" if classification else "regression",
        "temperature": baked,
    }
    model = onnx.load(str(output))
    model.metadata_props.add(key="colorlab", value=json.dumps(metadata, default=str))
    onnx.save(model, str(output))
    return metadata


class _Head:
    """What callers ask of a network's head: a temperature, where it has one."""

    def __init__(self, temperature: float | None):
        if temperature is not None:
            self.temperature = temperature


class OnnxNetwork:
    """An exported network run by onnxruntime, with the part of `ColorizerBase`'s interface
    that inference uses (``predict_ab``, ``multiple``, ``head``, ``to``, ``eval``)."""

    def __init__(self, path: Path, metadata: dict[str, Any], device: torch.device):
        import onnxruntime

        providers = ["CPUExecutionProvider"]
        if (
            device.type == "cuda"
            and "CUDAExecutionProvider" in onnxruntime.get_available_providers()
        ):
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = onnxruntime.InferenceSession(str(path), providers=providers)
        except Exception as error:  # noqa: BLE001 - onnxruntime's refusals (external data …)
            raise ColorlabError(
                f"onnxruntime cannot run {path} ({type(error).__name__}: {first_line(error)}); "
                "export it again with python -m colorlab.export"
            ) from error
        self.multiple = int(metadata["multiple"])
        self.head = _Head(metadata.get("temperature"))
        self.path = path

    def to(self, device: torch.device) -> OnnxNetwork:
        return self

    def eval(self) -> OnnxNetwork:
        return self

    def predict_ab(
        self, L: Tensor, temperature: float | None = None, *, hints: Tensor | None = None
    ) -> Tensor:
        """L (B×1×H×W, 0..100) -> ab (B×2×H×W in (-1, 1)). The temperature is the one baked
        in at export; another one is refused, and so are hints (the export takes L alone)."""
        if hints is not None:
            raise ColorlabError(
                "an ONNX export takes no hints (it is exported with L alone): colorize with hints "
                "from the checkpoint or its safetensors file"
            )
        baked = getattr(self.head, "temperature", None)
        if temperature is not None and baked is not None and abs(temperature - baked) > 1e-9:
            raise ColorlabError(
                f"{self.path} was exported with temperature {baked}; export again with "
                f"export.temperature={temperature} to colorize at it"
            )
        L32 = np.ascontiguousarray(L.detach().float().cpu().numpy())
        (ab,) = self.session.run(["ab"], {"L": L32})
        return torch.from_numpy(ab).to(L.device)


def read_metadata(path: Path) -> dict[str, Any]:
    """The ``colorlab`` metadata of an exported file, checked (`ColorlabError` if it has
    none, or if it is corrupt: not JSON, a field missing or of the wrong kind, a config naming
    a target colorlab does not build)."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # noqa: BLE001
        raise ColorlabError(f"cannot read {path} as an ONNX file: {first_line(error)}") from error
    found = [prop.value for prop in model.metadata_props if prop.key == "colorlab"]
    if not found:
        raise ColorlabError(f"{path} is not an ONNX file exported by colorlab.export")
    try:
        metadata = json.loads(found[0])
    except json.JSONDecodeError as error:
        raise ColorlabError(f"{path}: its colorlab metadata is corrupt ({error})") from error
    problem = _metadata_problem(metadata)
    if problem:
        raise ColorlabError(
            f"{path}: its colorlab metadata is corrupt ({problem}); export it again"
        )
    for group in ("model", "loss"):
        check_targets(metadata[group], group, path)
    return metadata


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _metadata_problem(metadata: Any) -> str | None:
    """What is wrong with an exported file's metadata, or None."""
    if not isinstance(metadata, dict):
        return "not a mapping"
    for key in ("image_size", "multiple"):
        if not _positive_int(metadata.get(key)):
            return f"{key}={metadata.get(key)!r}, not a positive integer"
    for key in ("model", "loss"):
        if not isinstance(metadata.get(key), dict):
            return f"{key} is not a config mapping"
    if not isinstance(metadata.get("label", ""), str):
        return "label is not text"
    temperature = metadata.get("temperature")
    if temperature is not None:
        try:
            check_temperature(temperature)
        except ValueError as error:
            return first_line(error)
    return None


def load_onnx_network(path: str | Path, device: torch.device) -> TrainedNetwork:
    """An exported file as a `TrainedNetwork` (its ``net`` an `OnnxNetwork`)."""
    path = Path(path)
    if not path.is_file():
        raise ColorlabError(f"ONNX file {path} does not exist")
    metadata = read_metadata(path)
    return TrainedNetwork(
        OnnxNetwork(path, metadata, device),
        int(metadata["image_size"]),
        metadata["model"],
        metadata["loss"],
        path,
        metadata.get("label", ""),
    )
