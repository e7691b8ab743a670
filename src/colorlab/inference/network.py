"""A trained network as inference needs it: the plain `nn.Module` rebuilt from a checkpoint
(no LightningModule, no loss, no optimizer), the size it was trained at and its name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from hydra.utils import get_class
from torch import Tensor

from colorlab.configs import build
from colorlab.errors import ColorlabError
from colorlab.loading import load_weights, model_without_download, read_checkpoint
from colorlab.losses import ColorizationLoss, loss_name
from colorlab.models import model_name
from colorlab.zoo.files import zoo_name


def display_name(model: dict[str, Any], loss: dict[str, Any]) -> str:
    """How runs, rows and labels name a trained configuration: ``model-loss``, e.g.
    ``baseline-mse``, ``unet_resnet34-classification``."""
    return f"{model_name(model)}-{loss_name(loss)}"


def checkpoint_label(path: str | Path, model: dict[str, Any], loss: dict[str, Any]) -> str:
    """``model-loss@run`` (run: the folder holding checkpoints/), e.g.
    ``baseline-classification@0`` for run 0 of a sweep."""
    path = Path(path)
    run = path.parent.parent.name if path.parent.name == "checkpoints" else path.stem
    return f"{display_name(model, loss)}@{run}"


class InferenceNetwork(Protocol):
    """What inference asks of a network: a `ColorizerBase`, or an exported file's runner
    (`colorlab.inference.onnx.OnnxNetwork`). A classification head has a ``temperature``."""

    multiple: int
    head: Any

    def predict_ab(
        self, L: Tensor, temperature: float | None = None, *, hints: Tensor | None = None
    ) -> Tensor: ...

    def to(self, device: torch.device) -> Any: ...

    def eval(self) -> Any: ...


@dataclass
class TrainedNetwork:
    """A network ready for inference, and what its file says about it (an exported file keeps
    the label of the checkpoint it came from: ``stored_label``)."""

    net: InferenceNetwork
    image_size: int
    model: dict[str, Any]
    loss: dict[str, Any]
    path: Path
    stored_label: str = ""

    @property
    def label(self) -> str:
        return self.stored_label or checkpoint_label(self.path, self.model, self.loss)


def head_of(loss: dict[str, Any]) -> dict[str, Any]:
    """The head a loss config trains, from its class (`ColorizationLoss.head_for`) without
    building the loss (which may need weights, e.g. a perceptual term's)."""
    try:
        loss_class = get_class(loss["_target_"])
    except Exception as error:  # an unknown class path: a foreign or broken checkpoint
        raise ColorlabError(f"the checkpoint's loss {loss.get('_target_')} is unknown") from error
    if not (isinstance(loss_class, type) and issubclass(loss_class, ColorizationLoss)):
        raise ColorlabError(f"the checkpoint's loss {loss['_target_']} is not a colorlab loss")
    return loss_class.head_for(**{k: v for k, v in loss.items() if not k.startswith("_")})


def load_network(
    path: str | Path, device: str | torch.device = "cpu", trusted: bool = False
) -> TrainedNetwork:
    """The network of checkpoint (or colorlab safetensors file) ``path`` on ``device``, in
    eval mode, read safely (`colorlab.loading`; ``trusted`` unpickles in full). A frozen
    pretrained backbone comes back from the file, never from a download. ``zoo:NAME`` is a
    published network with its authors' weights (`colorlab.zoo`)."""
    name = zoo_name(path)
    if name is not None:
        from colorlab.zoo.published import published_network

        return published_network(name, device)
    hparams, state_dict = read_checkpoint(path, device, trusted)
    model = model_without_download(hparams["model"])
    net = build(model, "model", head=head_of(dict(hparams["loss"])))
    weights = {k.removeprefix("net."): v for k, v in state_dict.items() if k.startswith("net.")}
    load_weights(net, weights, path)
    image_size = int(hparams.get("image_size") or net.native_size)
    return TrainedNetwork(
        net.to(device).eval(),
        image_size,
        dict(hparams["model"]),
        dict(hparams["loss"]),
        Path(path),
        str(hparams.get("label") or ""),
    )
