"""The perceptual term: the distance between frozen VGG-16 features (ImageNet weights through
torchvision) of the predicted and the true RGB picture (Johnson et al. 2016; DeOldify)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.models import vgg16

from colorlab.errors import ColorlabError
from colorlab.models.backbone import load_pretrained, pretrained_weights, weights_file

#: Where the features are compared: after relu1_2, relu2_2, relu3_3 and relu4_3.
LAYERS = (3, 8, 15, 22)


class PerceptualTerm(nn.Module):
    """Mean L1 distance of VGG-16 features of ``rgb_pred`` and ``rgb`` (B×3×H×W in [0, 1]),
    averaged over `LAYERS`.

    The network is frozen and kept out of the module's state (checkpoints do not carry its
    59 MB: it comes from ``$TORCH_HOME/hub/checkpoints/vgg16-397923af.pth``; offline without
    that file, construction is one `ColorlabError` naming it). It follows the inputs' device.
    """

    mean: Tensor  # 1×3×1×1, ImageNet's
    std: Tensor
    _features: nn.Sequential  # not a submodule (see above)

    def __init__(self) -> None:
        super().__init__()
        features = vgg16(weights=None).features[: LAYERS[-1] + 1]
        state = load_pretrained("vgg16", without="perceptual_weight=0 (loss.perceptual_weight=0)")
        own = features.state_dict()
        try:  # only the convolutions it uses (a file holding just those does too)
            features.load_state_dict({k: state[f"features.{k}"] for k in own})
        except KeyError as error:
            raise ColorlabError(
                f"{weights_file('vgg16')} holds no VGG-16 weights for features.{error.args[0]}; "
                "delete it and retry"
            ) from error
        features = features.eval().requires_grad_(False)
        transform = pretrained_weights("vgg16").transforms()
        # Not registered as a submodule: no state_dict entries, no parameters to optimise.
        object.__setattr__(self, "_features", features)
        self.register_buffer(
            "mean", torch.tensor(transform.mean).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer("std", torch.tensor(transform.std).view(1, 3, 1, 1), persistent=False)

    def forward(self, rgb_pred: Tensor, rgb: Tensor) -> Tensor:
        features = self._features
        if next(features.parameters()).device != rgb.device:
            features.to(rgb.device)
        x = torch.cat([rgb_pred, rgb]).to(self.mean.dtype)
        x = (x - self.mean) / self.std
        total, count = x.new_zeros(()), 0
        for index, layer in enumerate(features):
            x = layer(x)
            if index in LAYERS:
                predicted, true = x.chunk(2)
                total = total + (predicted - true).abs().mean()
                count += 1
        return total / count
