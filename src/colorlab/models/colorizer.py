"""Colorization networks and their configurations (the builders named by ``conf/model/*.yaml``).

Every network is a `ColorizerBase`: a body maps L to features at full resolution, an output
head chosen by the loss turns them into its output, and `ColorizerBase.predict_ab` decodes
any head's output to ab. `Colorizer` is the reference's encoder + fusion + decoder pipeline
(``baseline``, ``backbone_encoder``, ``global_fusion``); `colorlab.models.unet.UNet` has skip
connections at every scale.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from colorlab.color import AB_SCALE
from colorlab.errors import OptionError
from colorlab.models.backbone import Backbone, FreezeSpec
from colorlab.models.heads import BranchOutput, Head, HeadOutput, make_head
from colorlab.models.hint_spread import SPREAD_CHANNELS, make_hint_spread
from colorlab.models.parts import (
    UP,
    BaselineEncoder,
    Decoder,
    Encoder,
    broadcast_concat,
    fusion_layer,
)

#: A head spec (see `colorlab.models.heads.make_head`); None is the regression head.
HeadSpec = dict[str, Any] | None
#: A ``hint_spread`` group (`colorlab.models.hint_spread.HintSpread`'s options) or None.
SpreadSpec = Mapping[str, Any] | None
#: Hint channels beside L (Zhang et al. 2017): hint a*, b* and a 0/1 mask. Given to a network
#: as B×3×H×W with ab in colorlab's scale ((a*, b*) / 128), it sees ab in Lab units / 110.
HINT_CHANNELS = 3
#: The network input's scale of hint ab: Lab units / HINT_AB_NORM, as SIGGRAPH17's.
HINT_AB_NORM = 110.0


def input_channels(hints: bool, spread: SpreadSpec = None) -> int:
    """Channels of a network's input: L, plus `HINT_CHANNELS` where it takes hints, and
    `SPREAD_CHANNELS` more where it also spreads them (``spread``, a ``hint_spread`` group)."""
    if not hints:
        return 1
    return 1 + HINT_CHANNELS + (SPREAD_CHANNELS if spread is not None else 0)


#: How a generic builder's configuration is named after its backbone (`model_name`).
_NAMED_BY_BACKBONE = {"backbone_encoder": "{}", "global_fusion": "{}_fusion", "unet": "unet_{}"}


def model_name(config: dict[str, Any]) -> str:
    """A short name for a model config: ``baseline``, ``vgg16``, ``vgg16_fusion``,
    ``resnet50_fusion``, ``unet``, ``unet_resnet34``, ``unet_timm-resnet18`` …"""
    builder = str(config.get("_target_", "model")).rsplit(".", 1)[-1]
    backbone = config.get("backbone")
    if backbone and builder in _NAMED_BY_BACKBONE:
        return _NAMED_BY_BACKBONE[builder].format(str(backbone).replace("/", "-"))
    return builder


class ColorizerBase(nn.Module):
    """L (B×1×H×W in [0, 100], H and W multiples of `multiple`) -> the head's output.

    A network built with ``hints`` also takes user colour hints, B×3×H×W (hint ab in (-1, 1)
    and a 0/1 mask; zero where there are none), as input channels beside L (`network_input`);
    with ``hint_spread`` (a group of `HintSpread`'s options) also the hints spread over the
    image by a fixed rule, three channels more (ignored without ``hints``).

    ``forward(L, hints)`` gives the head's raw output (what the loss trains: ab for a regression
    head, colour-bin logits for a classification head); `predict_ab` gives ab for any head.
    Subclasses implement `features` (B×`out_channels`×H/stride×W/stride; ``layout``: the
    classification head's own ``hidden`` and ``bins``, see `make_head`), or give their own
    built `Head`. ``native_size`` is the square input size the configuration was designed for.
    """

    def __init__(
        self,
        out_channels: int,
        multiple: int,
        native_size: int,
        head: HeadSpec | Head = None,
        stride: int = 1,
        hints: bool = False,
        hint_spread: SpreadSpec = None,
        **layout: Any,
    ) -> None:
        super().__init__()
        self.head = (
            head if isinstance(head, Head) else make_head(out_channels, head, stride, **layout)
        )
        self.multiple = multiple
        self.native_size = native_size
        if not isinstance(hints, bool):
            raise OptionError("hints", hints, "use true or false")
        #: Whether the network takes colour hints beside L.
        self.hints = hints
        #: The fixed rule that spreads them as more input (None: the points alone).
        self.spread = make_hint_spread(hint_spread) if hints else None

    def features(self, L: Tensor) -> Tensor:
        raise NotImplementedError

    def backbones(self) -> list[Backbone]:
        """The pretrained torchvision parts (frozen or fine-tuned)."""
        return [m for m in self.modules() if isinstance(m, Backbone)]

    def check_input(self, L: Tensor) -> None:
        """`ValueError` unless L is B×1×H×W with H and W multiples of `multiple`."""
        if L.ndim != 4 or L.shape[1] != 1:
            raise ValueError(f"expected L as B×1×H×W, got {tuple(L.shape)}")
        if L.shape[-2] % self.multiple or L.shape[-1] % self.multiple:
            raise ValueError(
                f"H and W must be multiples of {self.multiple}, got {tuple(L.shape[-2:])}"
            )

    def network_input(self, L: Tensor, hints: Tensor | None = None) -> Tensor:
        """What `features` sees: L (B×1×H×W), and for a network with hints the hint channels
        after it (ab × 128/110, i.e. Lab units / 110, and the mask; zeros without hints), then
        where it spreads them the spread ab (same scale) and confidence (`HintSpread`).
        `ValueError` for hints given to a network without them, or of the wrong shape."""
        return self._input_and_spread(L, hints)[0]

    def _input_and_spread(self, L: Tensor, hints: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """`network_input`, and the spread hints (B×3×H×W, `HintSpread`) where there are."""
        self.check_input(L)
        if not self.hints:
            if hints is not None:
                raise ValueError(
                    "this network was trained without hints (model.hints=false); it cannot take them"
                )
            return L, None
        extra = HINT_CHANNELS + (SPREAD_CHANNELS if self.spread is not None else 0)
        if hints is None:
            return torch.cat([L, torch.zeros_like(L).expand(-1, extra, -1, -1)], dim=1), None
        if hints.shape != (L.shape[0], HINT_CHANNELS, *L.shape[-2:]):
            raise ValueError(
                f"expected hints as B×{HINT_CHANNELS}×H×W like L's {tuple(L.shape)}, "
                f"got {tuple(hints.shape)}"
            )
        hints = hints.to(L.device)
        scale = AB_SCALE / HINT_AB_NORM
        channels = [L, hints[:, :2].to(L.dtype) * scale, hints[:, 2:].to(L.dtype)]
        spread = None
        if self.spread is not None:
            spread = self.spread(L, hints)
            channels += [spread[:, :2].to(L.dtype) * scale, spread[:, 2:].to(L.dtype)]
        return torch.cat(channels, dim=1), spread

    def forward(self, L: Tensor, hints: Tensor | None = None) -> HeadOutput:
        """L (B×1×H×W, 0..100) and hints (B×3×H×W or None) -> the head's output (B×2×H×W ab,
        or B×Q×H/d×W/d logits)."""
        return self.head(self.features(self.network_input(L, hints)))

    def decode(
        self, output: HeadOutput, size: tuple[int, ...], temperature: float | None = None
    ) -> Tensor:
        """The head's output -> ab (B×2×H×W float in (-1, 1)) at ``size`` (H, W).

        Decoded at the head's resolution first, then upsampled bilinearly where smaller; in
        float32 also under autocast. ``temperature`` overrides a classification head's T. A
        two-branch output (`BranchOutput`) predicts with its regression branch.
        """
        device = (output.ab if isinstance(output, BranchOutput) else output).device
        with torch.autocast(device.type, enabled=False):
            if isinstance(output, BranchOutput):
                ab = output.ab.float()
            else:
                ab = self.head.decode(output.float(), temperature)
            if tuple(ab.shape[-2:]) != tuple(size):
                ab = F.interpolate(ab, size=tuple(size), mode="bilinear", align_corners=False)
        return ab

    def predict_ab(
        self, L: Tensor, temperature: float | None = None, *, hints: Tensor | None = None
    ) -> Tensor:
        """The one prediction path: L (B×1×H×W, 0..100) and optional hints (B×3×H×W) -> ab
        (B×2×H×W in (-1, 1)); where the network spreads hints and blends them, leaning to
        their spread colour by its confidence (`HintSpread.lean`)."""
        if hints is None or self.spread is None:
            return self.decode(self(L, hints), L.shape[-2:], temperature)
        network_input, spread = self._input_and_spread(L, hints)
        ab = self.decode(self.head(self.features(network_input)), L.shape[-2:], temperature)
        return ab if spread is None else self.spread.lean(ab, spread)


class Colorizer(ColorizerBase):
    """The reference's four parts: encoder + optional feature extractor (a global vector
    broadcast over the encoder's map) + fusion + decoder, then the head."""

    def __init__(
        self,
        encoder: Encoder,
        fusion: nn.Module,
        decoder: Decoder,
        feature_extractor: nn.Module | None = None,
        native_size: int = 256,
        head: HeadSpec = None,
        hints: bool = False,
        hint_spread: SpreadSpec = None,
    ) -> None:
        super().__init__(
            decoder.out_channels,
            encoder.downsample,
            native_size,
            head,
            hints=hints,
            hint_spread=hint_spread,
        )
        self.encoder = encoder
        self.feature_extractor = feature_extractor
        self.fusion = fusion
        self.decoder = decoder
        if decoder.upsample != encoder.downsample:
            raise ValueError(
                f"decoder upsamples ×{decoder.upsample}, encoder downsamples ×{encoder.downsample}"
            )

    def features(self, L: Tensor) -> Tensor:
        features = self.encoder(L)
        if self.feature_extractor is not None:
            features = broadcast_concat(features, self.feature_extractor(L))
        return self.decoder(self.fusion(features))


#: The reference baseline's decoder from H/8: four convs and three ×2 upsamplings (the
#: fifth conv is the head's).
_DECODER_FROM_8 = (128, UP, 64, 64, UP, 32, UP)


def baseline(
    native_size: int = 256,
    head: HeadSpec = None,
    hints: bool = False,
    hint_spread: SpreadSpec = None,
) -> Colorizer:
    """The reference's conv autoencoder: 8-conv encoder (H/8), 1×1 fusion, 5-conv decoder
    (the fifth conv is the head's); ``hints``: colour hints in beside L (``hint_spread``:
    and spread, `colorlab.models.hint_spread`)."""
    encoder = BaselineEncoder(in_channels=input_channels(hints, hint_spread))
    return Colorizer(
        encoder=encoder,
        fusion=fusion_layer(encoder.out_channels, 256),
        decoder=Decoder(256, _DECODER_FROM_8),
        native_size=native_size,
        head=head,
        hints=hints,
        hint_spread=hint_spread,
    )


#: The reference VGG-16 experiment's decoder from H/32: five ×2 upsamplings.
_DECODER_FROM_32 = (256, UP, 128, UP, 64, UP, 64, UP, 32, UP, 16)


def backbone_encoder(
    backbone: str = "vgg16",
    pretrained: bool = True,
    freeze_backbone: FreezeSpec = True,
    native_size: int = 224,
    gray: str = "srgb",
    head: HeadSpec = None,
) -> Colorizer:
    """A torchvision network's deepest map (H/32) as the encoder, a 1×1 fusion and a decoder
    that upsamples ×32 (``model=vgg16``: the reference's VGG-16 experiment)."""
    encoder = Backbone(backbone, pretrained, freeze_backbone, gray, output="last")
    if encoder.downsample != 32:
        raise OptionError(
            "backbone",
            backbone,
            "the encoder model needs one that ends at 32 (use model=unet for any backbone)",
            f"ends at stride {encoder.downsample}",
        )
    return Colorizer(
        encoder=encoder,
        fusion=fusion_layer(encoder.out_channels, 256),
        decoder=Decoder(256, _DECODER_FROM_32),
        native_size=native_size,
        head=head,
    )


def global_fusion(
    backbone: str = "vgg16",
    pretrained: bool = True,
    freeze_backbone: FreezeSpec = True,
    native_size: int = 224,
    gray: str = "srgb",
    head: HeadSpec = None,
    hints: bool = False,
    hint_spread: SpreadSpec = None,
) -> Colorizer:
    """The reference's general architecture (as in Deep Koalarization): the baseline encoder
    fused with a torchvision network's global feature vector (its deepest map averaged over
    space) broadcast over H/8×W/8 (``model=vgg16_fusion``, ``model=fusion``); ``hints``:
    colour hints into the baseline encoder (the backbone sees L alone; ``hint_spread``: and
    spread, `colorlab.models.hint_spread`)."""
    encoder = BaselineEncoder(in_channels=input_channels(hints, hint_spread))
    extractor = Backbone(backbone, pretrained, freeze_backbone, gray, output="pooled")
    return Colorizer(
        encoder=encoder,
        feature_extractor=extractor,
        fusion=fusion_layer(encoder.out_channels + extractor.out_channels, 256),
        decoder=Decoder(256, _DECODER_FROM_8),
        native_size=native_size,
        head=head,
        hints=hints,
        hint_spread=hint_spread,
    )
