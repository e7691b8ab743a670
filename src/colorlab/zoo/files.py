"""The published networks colorlab knows and their authors' released weight files: where each
file is kept (torch.hub's folder, ``$TORCH_HOME/hub/checkpoints/``), fetched once where there
is a network, and read safely (``torch.load(weights_only=True)``, `colorlab.loading`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import Tensor

from colorlab.errors import ColorlabError, OptionError, first_line
from colorlab.loading import read_state_dict
from colorlab.weights import cached_file, hub_file

#: How a published network is named wherever a checkpoint is taken: ``zoo:eccv16``.
ZOO_PREFIX = "zoo:"


@dataclass(frozen=True)
class Published:
    """A published colorization network and its authors' released weight file."""

    name: str
    paper: str
    file_name: str
    url: str
    #: Millions of parameters of the released network.
    parameters: float

    @property
    def path(self) -> Path:
        """Where torch.hub keeps the file: ``$TORCH_HOME/hub/checkpoints/<file_name>``."""
        return hub_file(self.file_name)

    @property
    def hash_prefix(self) -> str:
        """The start of the file's SHA-256 that its name carries (torch.hub's convention)."""
        return Path(self.file_name).stem.rsplit("-", 1)[-1]


_RELEASE = "https://colorizers.s3.us-east-2.amazonaws.com/"
PUBLISHED = {
    "eccv16": Published(
        "eccv16",
        'Zhang, Isola, Efros, "Colorful Image Colorization", ECCV 2016',
        "colorization_release_v2-9b330a0b.pth",
        _RELEASE + "colorization_release_v2-9b330a0b.pth",
        32.2,
    ),
    "siggraph17": Published(
        "siggraph17",
        'Zhang, Zhu, Isola, Geng, Lin, Yu, Efros, "Real-Time User-Guided Image Colorization '
        'with Learned Deep Priors", SIGGRAPH 2017',
        "siggraph17-df00044c.pth",
        _RELEASE + "siggraph17-df00044c.pth",
        34.2,
    ),
}


def published(name: str) -> Published:
    """The published network ``name``; `OptionError` naming the known ones otherwise."""
    if name not in PUBLISHED:
        raise OptionError("name", name, "choose one of: " + ", ".join(PUBLISHED))
    return PUBLISHED[name]


def zoo_name(ckpt: str | Path) -> str | None:
    """``eccv16`` for ``zoo:eccv16``; None for anything else (a file path)."""
    text = str(ckpt)
    return text[len(ZOO_PREFIX) :] if text.startswith(ZOO_PREFIX) else None


def released_weights(name: str, weights: str | Path | None = None) -> dict[str, Tensor]:
    """The released state dict of published network ``name``, from ``weights`` or, without
    it, from torch.hub's folder (downloaded there once, its hash checked, unless
    ``COLORLAB_OFFLINE`` is set). A missing or unreadable file is one `ColorlabError` line
    naming the file, its URL and where to put it."""
    entry = published(name)
    path = Path(weights) if weights is not None else entry.path
    where = f"put {entry.file_name} (from {entry.url}) at {entry.path}"
    if weights is None:
        try:
            cached_file(entry.file_name, entry.url, entry.hash_prefix)
        except Exception as error:  # URLError, socket and SSL errors, a wrong hash, a full disk
            raise ColorlabError(
                f"{name}'s released weights are not here and cannot be downloaded "
                f"({first_line(error)}): {where} ($TORCH_HOME/hub/checkpoints/)"
            ) from error
    if not path.is_file():
        raise ColorlabError(f"{name}'s weights file {path} does not exist; {where}")
    try:
        return read_state_dict(path)
    except ColorlabError as error:
        raise ColorlabError(f"{name}'s weights: {error}; {where}") from error
