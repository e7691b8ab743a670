"""Published colorization networks beside colorlab's own: Zhang et al.'s ECCV16 and SIGGRAPH17
as colorlab models (``model=eccv16``, ``model=siggraph17``: trained, fine-tuned and scored like
any model), with their authors' released weight files (`load_published`, and ``zoo:NAME``
wherever a checkpoint is taken). ``python -m colorlab.zoo`` lists them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from colorlab.zoo.files import PUBLISHED, ZOO_PREFIX, Published, released_weights, zoo_name
from colorlab.zoo.networks import ECCV16, SIGGRAPH17, eccv16, siggraph17

if TYPE_CHECKING:
    from colorlab.zoo.published import PublishedNetwork


def load_published(name: str, weights: str | Path | None = None) -> PublishedNetwork:
    """Published network ``name`` with its authors' weights, as their forward pass: see
    `colorlab.zoo.published.load_published`."""
    from colorlab.zoo.published import load_published as _load

    return _load(name, weights)


__all__ = [
    "ECCV16",
    "PUBLISHED",
    "SIGGRAPH17",
    "ZOO_PREFIX",
    "Published",
    "eccv16",
    "load_published",
    "released_weights",
    "siggraph17",
    "zoo_name",
]
