"""Zhang et al.'s colorization networks written as colorlab models (``model=eccv16``,
``model=siggraph17``), their layers named as in the authors' released weight files.

- `ECCV16` (Zhang, Isola, Efros, "Colorful Image Colorization", ECCV 2016): eight conv blocks
  (stride 2 ending blocks 1–3, dilation 2 in 5–6, BatchNorm closing each of 1–7), a transposed
  conv back to 1/4 of the input's size and a 1×1 conv to one logit per ab bin.
- `SIGGRAPH17` (Zhang, Zhu, Isola, Geng, Lin, Yu, Efros, "Real-Time User-Guided Image
  Colorization with Learned Deep Priors", SIGGRAPH 2017): L + hint ab + hint mask in
  (4 channels), subsampled by striding in blocks 2–4, a U-Net's shortcuts back up
  (``model3short8``, ``model2short9``, ``model1short10``), a tanh regression head at full
  resolution (the prediction, × 110) and a colour-bin classification branch at 1/4.

Both normalise L as (L − 50)/100 and ab as ab/110, as the authors do. Trained by colorlab
(``layout="colorlab"``) their classification branch predicts colorlab's 261 in-gamut bins
(`colorlab.color.ab_gamut`), so that ``loss=classification`` trains them as any model; the
released files' own bins (ECCV16's 313, SIGGRAPH17's 23×23 grid of 529) are
``layout="released"``, the layout `colorlab.zoo.load_published` loads the files into.
``pretrained=True`` starts from the released file, its bin layers mapped onto colorlab's bins
(`from_released`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from colorlab.color import AB_BIN_SIZE, AB_SCALE, ab_gamut
from colorlab.errors import OptionError
from colorlab.models.colorizer import ColorizerBase, HeadSpec
from colorlab.models.heads import BranchOutput, ClassificationHead, Head, HeadOutput
from colorlab.zoo.files import released_weights

#: The authors' normalisation: L -> (L − L_CENTRE) / L_SCALE, ab (Lab units) -> ab / AB_NORM.
L_CENTRE, L_SCALE, AB_NORM = 50.0, 100.0, 110.0
#: ``layout`` values: colorlab's bins (trained here) or the released files' own.
LAYOUTS = ("colorlab", "released")
#: ECCV16's released bins: 313 (the ab cells reached in ImageNet, their centres kept in the
#: file's last 1×1 conv).
ECCV16_RELEASED_BINS = 313
#: SIGGRAPH17's released bins: the full 23×23 grid of 10-unit cells over a*, b* in ±110,
#: indexed a-major (index = (a + 110)/10 · 23 + (b + 110)/10), as colorization-pytorch
#: encodes them.
SIGGRAPH17_GRID = 23


def conv_block(
    channels: Sequence[int],
    stride: int = 1,
    dilation: int = 1,
    relu_first: bool = False,
    norm: bool = True,
) -> nn.Sequential:
    """The authors' block: [ReLU,] then conv 3×3 + ReLU per step of ``channels`` (the last
    conv with ``stride``), then BatchNorm (``norm``), in their layer order (so that the
    released state dict's indices fit)."""
    layers: list[nn.Module] = [nn.ReLU(True)] if relu_first else []
    steps = list(zip(channels[:-1], channels[1:]))
    for index, (cin, cout) in enumerate(steps):
        last = index == len(steps) - 1
        layers += [
            nn.Conv2d(
                cin, cout, 3, stride=stride if last else 1, padding=dilation, dilation=dilation
            ),
            nn.ReLU(True),
        ]
    if norm:
        layers.append(nn.BatchNorm2d(channels[-1]))
    return nn.Sequential(*layers)


def _check_layout(layout: str, head: HeadSpec) -> None:
    if layout not in LAYOUTS:
        raise OptionError("layout", layout, "choose one of: " + ", ".join(LAYOUTS))
    if layout == "released" and (head or {}).get("kind") != "classification":
        raise OptionError(
            "layout",
            layout,
            "the released layout is a classification network (loss=classification)",
        )


def _normalized_l(L: Tensor) -> Tensor:
    return (L - L_CENTRE) / L_SCALE


class ECCV16(ColorizerBase):
    """L (B×1×H×W, 0..100; H, W multiples of 8) -> colour-bin logits B×Q×H/4×W/4 (a
    classification loss; Q = 261, or 313 in the released layout) or ab B×2×H×W in (-1, 1)
    (a regression loss: a 3×3 conv + tanh at 1/4, upsampled)."""

    def __init__(
        self, native_size: int = 256, head: HeadSpec = None, layout: str = "colorlab"
    ) -> None:
        _check_layout(layout, head)
        bins = torch.zeros(ECCV16_RELEASED_BINS, 2) if layout == "released" else None
        super().__init__(256, 8, native_size, head, stride=4, hidden=0, bins=bins)
        self.layout = layout
        self.model1 = conv_block([1, 64, 64], stride=2)
        self.model2 = conv_block([64, 128, 128], stride=2)
        self.model3 = conv_block([128, 256, 256, 256], stride=2)
        self.model4 = conv_block([256, 512, 512, 512])
        self.model5 = conv_block([512] * 4, dilation=2)
        self.model6 = conv_block([512] * 4, dilation=2)
        self.model7 = conv_block([512] * 4)
        self.model8 = nn.Sequential(
            nn.ConvTranspose2d(512, 256, 4, stride=2, padding=1),
            nn.ReLU(True),
            *conv_block([256, 256, 256], norm=False),
        )

    def features(self, L: Tensor) -> Tensor:
        """L (B×1×H×W) -> B×256×H/4×W/4 (conv8_3, after its ReLU)."""
        x = _normalized_l(L)
        for block in (self.model1, self.model2, self.model3, self.model4, self.model5):
            x = block(x)
        return self.model8(self.model7(self.model6(x)))

    def from_released(self, released: dict[str, Tensor]) -> dict[str, Tensor]:
        """The authors' state dict in this network's names: ``model8.6`` (the 313 logits) is
        the head's conv, ``model_out`` (313 → 2, the bins' centres / 110) the head's bins; in
        the colorlab layout each of colorlab's bins takes the logit of the released bin
        nearest to it."""
        state = {k: v for k, v in released.items() if not k.startswith(("model8.6.", "model_out."))}
        weight, bias = released.get("model8.6.weight"), released.get("model8.6.bias")
        centres = released.get("model_out.weight")
        if weight is None or bias is None or centres is None:
            return released  # not the released layout: load_state_dict names what is missing
        centres = centres[:, :, 0, 0].t().float() * AB_NORM  # 313×2, Lab units
        if self.layout == "released":
            state.update({"head.conv.weight": weight, "head.conv.bias": bias, "head.bins": centres})
        else:
            rows = torch.cdist(ab_gamut(), centres).argmin(dim=1)
            state.update({"head.conv.weight": weight[rows], "head.conv.bias": bias[rows]})
        return state


class TwoBranchHead(Head):
    """SIGGRAPH17's outputs: the regression branch (``model_out``: 1×1 conv + tanh on the
    full-resolution features, × 110 Lab units: the prediction) and, for a classification
    loss, the colour-bin branch (``model_class``: 1×1 conv on the 1/4 features)."""

    def __init__(self, classification: ClassificationHead | None = None) -> None:
        super().__init__()
        self.model_out = nn.Sequential(nn.Conv2d(128, 2, 1), nn.Tanh())
        self.model_class = classification
        self.predicts_by_ab_terms = classification is not None

    def forward(self, features: tuple[Tensor, Tensor]) -> HeadOutput:
        """(full B×128×H×W, quarter B×256×H/4×W/4) -> ab B×2×H×W in (-1, 1), or
        `BranchOutput` (logits B×Q×H/d×W/d and that ab) with the classification branch."""
        full, quarter = features
        ab = self.model_out(full) * (AB_NORM / AB_SCALE)
        if self.model_class is None:
            return ab
        return BranchOutput(self.model_class(quarter), ab)

    def decode(self, output: Tensor, temperature: float | None = None) -> Tensor:
        """The regression branch's ab is the prediction (``temperature`` is ignored)."""
        return output.float()

    def start_from_prior(self, prior: Tensor) -> None:
        if self.model_class is not None:
            self.model_class.start_from_prior(prior)


def siggraph17_bins() -> Tensor:
    """The released SIGGRAPH17 bins: 529×2 centres (Lab units) of the 23×23 grid, a-major."""
    steps = torch.arange(SIGGRAPH17_GRID, dtype=torch.float32) * AB_BIN_SIZE - AB_NORM
    a, b = torch.meshgrid(steps, steps, indexing="ij")
    return torch.stack([a.flatten(), b.flatten()], dim=1)


class SIGGRAPH17(ColorizerBase):
    """L (B×1×H×W, 0..100; H, W multiples of 8), optional hints (B×3×H×W: ab in (-1, 1) and a
    0/1 mask; zero without) -> ab B×2×H×W in (-1, 1) (a regression loss), or `BranchOutput`
    (colour-bin logits at 1/4 and that ab) for a classification loss. It always takes hints."""

    def __init__(
        self, native_size: int = 256, head: HeadSpec = None, layout: str = "colorlab"
    ) -> None:
        _check_layout(layout, head)
        options = dict(head or {})
        classification = None
        if options.pop("kind", "regression") == "classification":
            released = layout == "released"
            classification = ClassificationHead(
                256, stride=4, hidden=0, bins=siggraph17_bins() if released else None, **options
            )
        super().__init__(128, 8, native_size, TwoBranchHead(classification), hints=True)
        self.layout = layout
        self.model1 = conv_block([4, 64, 64])
        self.model2 = conv_block([64, 128, 128])
        self.model3 = conv_block([128, 256, 256, 256])
        self.model4 = conv_block([256, 512, 512, 512])
        self.model5 = conv_block([512] * 4, dilation=2)
        self.model6 = conv_block([512] * 4, dilation=2)
        self.model7 = conv_block([512] * 4)
        self.model8up = nn.Sequential(nn.ConvTranspose2d(512, 256, 4, stride=2, padding=1))
        self.model3short8 = nn.Sequential(nn.Conv2d(256, 256, 3, padding=1))
        self.model8 = conv_block([256, 256, 256], relu_first=True)
        self.model9up = nn.Sequential(nn.ConvTranspose2d(256, 128, 4, stride=2, padding=1))
        self.model2short9 = nn.Sequential(nn.Conv2d(128, 128, 3, padding=1))
        self.model9 = conv_block([128, 128], relu_first=True)
        self.model10up = nn.Sequential(nn.ConvTranspose2d(128, 128, 4, stride=2, padding=1))
        self.model1short10 = nn.Sequential(nn.Conv2d(64, 128, 3, padding=1))
        self.model10 = nn.Sequential(
            nn.ReLU(True), nn.Conv2d(128, 128, 3, padding=1), nn.LeakyReLU(negative_slope=0.2)
        )

    def forward(self, L: Tensor, hints: Tensor | None = None) -> HeadOutput:
        """L (B×1×H×W) and optional hints (B×3×H×W: ab in (-1, 1) and a 0/1 mask; zeros
        without) -> the head's output (see the class)."""
        x = self.network_input(L, hints)  # L, ab in Lab units / 110 (the authors' scale), mask
        x = torch.cat([_normalized_l(x[:, :1]), x[:, 1:]], dim=1)
        conv1_2 = self.model1(x)
        conv2_2 = self.model2(conv1_2[:, :, ::2, ::2])
        conv3_3 = self.model3(conv2_2[:, :, ::2, ::2])
        x = self.model4(conv3_3[:, :, ::2, ::2])
        conv7_3 = self.model7(self.model6(self.model5(x)))
        conv8_3 = self.model8(self.model8up(conv7_3) + self.model3short8(conv3_3))
        conv9_3 = self.model9(self.model9up(conv8_3) + self.model2short9(conv2_2))
        conv10_2 = self.model10(self.model10up(conv9_3) + self.model1short10(conv1_2))
        return self.head((conv10_2, conv8_3))

    def from_released(self, released: dict[str, Tensor]) -> dict[str, Tensor]:
        """The authors' state dict in this network's names (``model_out`` and ``model_class``
        are the head's branches); in the colorlab layout each of colorlab's bins takes the
        logit of its own cell of the released 23×23 grid; without a classification branch
        the released one is left out (the authors' forward pass does not use it)."""
        state: dict[str, Any] = {}
        for key, value in released.items():
            if key.startswith("model_out."):
                state["head." + key] = value
            elif not key.startswith("model_class."):
                state[key] = value
        weight, bias = released.get("model_class.0.weight"), released.get("model_class.0.bias")
        branch = self.head.model_class if isinstance(self.head, TwoBranchHead) else None
        if branch is None or weight is None or bias is None:
            return state
        if self.layout == "released":
            rows = torch.arange(len(weight))
        else:
            cells = ((ab_gamut() + AB_NORM) / AB_BIN_SIZE).round().long()
            rows = cells[:, 0] * SIGGRAPH17_GRID + cells[:, 1]
        state.update(
            {"head.model_class.conv.weight": weight[rows], "head.model_class.conv.bias": bias[rows]}
        )
        if self.layout == "released":
            state["head.model_class.bins"] = branch.bins
        return state


def load_released(net: ECCV16 | SIGGRAPH17, released: dict[str, Tensor]) -> None:
    """Load the authors' state dict into ``net`` (strictly: a missing or unexpected key, or a
    wrong shape, is a `RuntimeError` naming it); a classification head then keeps its
    logits (no restart from the colour prior)."""
    net.load_state_dict(net.from_released(released))
    for module in net.modules():
        if isinstance(module, ClassificationHead):
            module.pretrained = True


def eccv16(
    native_size: int = 256,
    pretrained: bool = False,
    layout: str = "colorlab",
    head: HeadSpec = None,
) -> ECCV16:
    """``model=eccv16``; ``pretrained``: start from the authors' released file."""
    net = ECCV16(native_size, head, layout)
    if pretrained:
        load_released(net, released_weights("eccv16"))
    return net


def siggraph17(
    native_size: int = 256,
    pretrained: bool = False,
    layout: str = "colorlab",
    head: HeadSpec = None,
) -> SIGGRAPH17:
    """``model=siggraph17``; ``pretrained``: start from the authors' released file."""
    net = SIGGRAPH17(native_size, head, layout)
    if pretrained:
        load_released(net, released_weights("siggraph17"))
    return net
