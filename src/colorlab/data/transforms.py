"""What happens to a batch on the training device: augmentation (kornia.augmentation, training
only) and the conversion of uint8 RGB into the L / ab / rgb dictionary every model step reads."""

from __future__ import annotations

from collections.abc import Callable

import kornia.augmentation as K
from torch import Tensor, nn

from colorlab.color import lab_batch
from colorlab.errors import OptionError

Batch = dict[str, Tensor]


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
            raise OptionError(
                "crop_scale",
                crop_scale,
                "use [low, high] with 0 < low <= high <= 1 (the share of the image a crop "
                "keeps), or null",
            )
        steps.append(K.RandomResizedCrop((image_size, image_size), scale=(low, high)))
    return nn.Sequential(*steps) if steps else None


def prepare_batch(
    rgb_uint8: Tensor, augmentation: Callable[[Tensor], Tensor] | None = None
) -> Batch:
    """uint8 B×3×H×W (on its device) -> ``{"L": B×1×H×W in [0, 100], "ab": B×2×H×W in
    (-1, 1), "rgb": B×3×H×W in [0, 1]}``, after ``augmentation`` (of float RGB in [0, 1]).

    Example:
        >>> prepare_batch(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))["L"].shape
        torch.Size([2, 1, 8, 8])
    """
    rgb = rgb_uint8.float().div_(255.0)
    if augmentation is not None:
        rgb = augmentation(rgb).clamp_(0, 1)
    return lab_batch(rgb)
