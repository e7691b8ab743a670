"""Training augmentation on the device (kornia.augmentation), before the Lab conversion."""

from __future__ import annotations

import kornia.augmentation as K
from torch import nn

from colorlab.errors import ColorlabError


def build_augmentation(
    image_size: int, flip: bool = True, crop_scale: tuple[float, float] | None = None
) -> nn.Module | None:
    """The training augmentation of B×3×S×S float RGB in [0, 1], or None for none.

    Args:
        image_size: S; a crop is resized back to S×S (bilinear).
        flip: flip a random half of the images horizontally.
        crop_scale: ``[low, high]``: crop a random area of that share of the image (aspect
            ratio 3:4 to 4:3) and resize it to S×S; None (default) does not crop.
    """
    steps: list[nn.Module] = []
    if flip:
        steps.append(K.RandomHorizontalFlip(p=0.5))
    if crop_scale is not None:
        values = list(crop_scale) if isinstance(crop_scale, (list, tuple)) else []
        low, high = (float(v) for v in values) if len(values) == 2 else (0.0, -1.0)
        if not 0 < low <= high <= 1:
            raise ColorlabError(
                f"data.crop_scale={crop_scale} is not allowed; use [low, high] with "
                "0 < low <= high <= 1 (the share of the image a crop keeps), or null"
            )
        steps.append(K.RandomResizedCrop((image_size, image_size), scale=(low, high)))
    return nn.Sequential(*steps) if steps else None
