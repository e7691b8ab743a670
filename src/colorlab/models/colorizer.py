"""`Colorizer`: encoder + optional feature extractor + fusion + decoder + head, and its
configurations (the builders named by ``conf/model/*.yaml``)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from colorlab.models.heads import make_head
from colorlab.models.parts import UP, BaselineEncoder, Decoder, broadcast_concat, fusion
from colorlab.models.vgg import FrozenVGG16, GlobalVGG16

#: A head spec (see `colorlab.models.heads.make_head`); None is the regression head.
HeadSpec = dict[str, Any] | None


class Colorizer(nn.Module):
    """Maps lightness to chroma through the reference's four parts and an output head.

    ``forward(L)`` gives the head's raw output (what the loss trains: ab for a regression
    head, colour-bin logits for a classification head); `predict_ab` gives ab for any head.
    L is B×1×H×W in [0, 100]; H and W must be multiples of `multiple`. ``native_size`` is
    the square input size the configuration was designed for (the reference's 256 or 224).
    """

    def __init__(
        self,
        encoder: nn.Module,
        fusion: nn.Module,
        decoder: Decoder,
        feature_extractor: nn.Module | None = None,
        native_size: int = 256,
        head: HeadSpec = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.feature_extractor = feature_extractor
        self.fusion = fusion
        self.decoder = decoder
        self.head = make_head(decoder.out_channels, head)
        self.native_size = native_size
        self.multiple = encoder.downsample
        if decoder.upsample != encoder.downsample:
            raise ValueError(
                f"decoder upsamples ×{decoder.upsample}, encoder downsamples ×{encoder.downsample}"
            )

    def forward(self, L: Tensor) -> Tensor:
        """L (B×1×H×W, 0..100) -> the head's output (B×2×H×W ab, or B×Q×H/d×W/d logits)."""
        if L.ndim != 4 or L.shape[1] != 1:
            raise ValueError(f"expected L as B×1×H×W, got {tuple(L.shape)}")
        if L.shape[-2] % self.multiple or L.shape[-1] % self.multiple:
            raise ValueError(
                f"H and W must be multiples of {self.multiple}, got {tuple(L.shape[-2:])}"
            )
        features = self.encoder(L)
        if self.feature_extractor is not None:
            features = broadcast_concat(features, self.feature_extractor(L))
        return self.head(self.decoder(self.fusion(features)))

    def decode(
        self, output: Tensor, size: tuple[int, int], temperature: float | None = None
    ) -> Tensor:
        """The head's output -> ab (B×2×H×W float in (-1, 1)) at ``size`` (H, W).

        Decoded at the head's resolution first, then upsampled bilinearly where smaller; in
        float32 also under autocast. ``temperature`` overrides a classification head's T.
        """
        with torch.autocast(output.device.type, enabled=False):
            ab = self.head.decode(output.float(), temperature)
            if tuple(ab.shape[-2:]) != tuple(size):
                ab = F.interpolate(ab, size=tuple(size), mode="bilinear", align_corners=False)
        return ab

    def predict_ab(self, L: Tensor, temperature: float | None = None) -> Tensor:
        """The one prediction path: L (B×1×H×W, 0..100) -> ab (B×2×H×W in (-1, 1))."""
        return self.decode(self(L), L.shape[-2:], temperature)


def baseline(native_size: int = 256, head: HeadSpec = None) -> Colorizer:
    """The reference's conv autoencoder: 8-conv encoder (H/8), 1×1 fusion, 5-conv decoder
    (the fifth conv is the head's)."""
    encoder = BaselineEncoder()
    return Colorizer(
        encoder=encoder,
        fusion=fusion(encoder.out_channels, 256),
        decoder=Decoder(256, (128, UP, 64, 64, UP, 32, UP)),
        native_size=native_size,
        head=head,
    )


def vgg16(pretrained: bool = True, native_size: int = 224, head: HeadSpec = None) -> Colorizer:
    """The reference's VGG-16 experiment: frozen VGG-16 (through pool5) replaces the encoder;
    fusion and a decoder that upsamples ×32."""
    encoder = FrozenVGG16(pretrained)
    return Colorizer(
        encoder=encoder,
        fusion=fusion(encoder.out_channels, 256),
        decoder=Decoder(256, (256, UP, 128, UP, 64, UP, 64, UP, 32, UP, 16)),
        native_size=native_size,
        head=head,
    )


def vgg16_fusion(
    pretrained: bool = True, native_size: int = 224, head: HeadSpec = None
) -> Colorizer:
    """The reference's general architecture (as in Deep Koalarization): the baseline encoder
    fused with a frozen VGG-16 global feature vector broadcast over H/8×W/8."""
    encoder = BaselineEncoder()
    extractor = GlobalVGG16(pretrained)
    return Colorizer(
        encoder=encoder,
        feature_extractor=extractor,
        fusion=fusion(encoder.out_channels + extractor.out_channels, 256),
        decoder=Decoder(256, (128, UP, 64, 64, UP, 32, UP)),
        native_size=native_size,
        head=head,
    )
