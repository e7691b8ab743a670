"""FID and LPIPS, the published tables' metrics, through pretrained networks whose weights
are files in ``$TORCH_HOME/hub/checkpoints/`` (fetched once where there is a network; offline,
one `ColorlabError` naming the file and where it goes).

- **FID** (Heusel et al. 2017): the Fréchet distance between Gaussians fitted to the 2048-d
  pool features of two picture sets, through torch-fidelity's Inception-v3: the port of the
  TensorFlow FID network (``weights-inception-2015-12-05-6726825d.pth``) that torchmetrics'
  `FrechetInceptionDistance`, torch-fidelity and the colorization papers use. Numbers through
  another Inception (torchvision's ImageNet classifier, say) do not compare with them.
  `FrechetDistances` scores several picture sets against one set of photos, featurising the
  photos once; it equals torchmetrics' metric on the same pictures (tested).
- **LPIPS** (Zhang et al. 2018): torchmetrics' `LearnedPerceptualImagePatchSimilarity`, mean
  over images; AlexNet (the papers'), VGG-16 or SqueezeNet features from torchvision's weights,
  with the linear layers torchmetrics ships.

Pictures are rgb B×3×H×W in [0, 1], any size (both networks resize or pool themselves).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from colorlab.errors import ColorlabError, check_choice, first_line
from colorlab.weights import hub_file, require_local_or_download

log = logging.getLogger(__name__)

INCEPTION_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    "weights-inception-2015-12-05-6726825d.pth"
)
INCEPTION_FILE = INCEPTION_URL.rsplit("/", 1)[-1]
#: What FID is computed with, as reports state it.
FID_NETWORK = "torch-fidelity Inception-v3 (TF FID weights 2015-12-05), 2048-d pool features"
#: Below this many photos FID is biased upwards and noisy: not comparable to papers (5,000+).
FID_MIN_IMAGES = 2000
#: ``lpips_net`` values -> the torchvision network whose weights LPIPS needs.
LPIPS_NETS = {"alex": "alexnet", "vgg": "vgg16", "squeeze": "squeezenet1_1"}
#: The same names as torchmetrics' LPIPS types them.
LPIPS_NET_TYPES: dict[str, Literal["alex", "vgg", "squeeze"]] = {
    "alex": "alex",
    "vgg": "vgg",
    "squeeze": "squeeze",
}


def inception_weights() -> Path:
    """The FID Inception's weights file: the cached one, else downloaded into the cache."""
    path = hub_file(INCEPTION_FILE)
    if not path.is_file():
        try:
            require_local_or_download(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(INCEPTION_URL, str(path), progress=True)
        except Exception as error:  # URLError, socket and SSL errors, a full disk
            raise ColorlabError(
                f"FID's Inception weights unavailable ({first_line(error)}): put {INCEPTION_FILE} "
                f"(from {INCEPTION_URL}) at {path} ($TORCH_HOME/hub/checkpoints/)"
            ) from error
    return path


def inception_network(device: torch.device | str = "cpu") -> nn.Module:
    """torch-fidelity's FID Inception (uint8 B×3×H×W -> B×2048), frozen, on ``device``."""
    from torchmetrics.image.fid import NoTrainInceptionV3

    weights = inception_weights()
    try:
        network = NoTrainInceptionV3("inception-v3-compat", ["2048"], str(weights))
    except ModuleNotFoundError as error:  # torch-fidelity is a dependency: a broken install
        raise ColorlabError(
            f"FID needs torch-fidelity ({error}): pip install torch-fidelity"
        ) from error
    except Exception as error:  # a truncated or foreign file
        raise ColorlabError(
            f"{weights} is not torch-fidelity's Inception ({first_line(error)}); delete it and "
            f"put {INCEPTION_FILE} from {INCEPTION_URL} there"
        ) from error
    return network.to(device)


def to_fid_uint8(rgb: Tensor) -> Tensor:
    """rgb in [0, 1] -> uint8 0..255 as torchmetrics' FID (``normalize=True``) converts it."""
    return (rgb.float().clamp(0, 1) * 255).byte()


class _Moments:
    """Running count, sum and sum of outer products of D-dimensional features (float64)."""

    def __init__(self) -> None:
        self.count = 0
        self.sum: Tensor | None = None
        self.outer: Tensor | None = None

    def add(self, features: Tensor) -> None:
        features = features.double()
        if self.sum is None or self.outer is None:
            dims = features.shape[1]
            self.sum = torch.zeros(dims, dtype=torch.float64, device=features.device)
            self.outer = torch.zeros(dims, dims, dtype=torch.float64, device=features.device)
        self.count += len(features)
        self.sum += features.sum(dim=0)
        self.outer += features.T @ features

    def mean_covariance(self) -> tuple[Tensor, Tensor]:
        if self.sum is None or self.outer is None or self.count < 2:
            raise ColorlabError(f"FID needs at least 2 pictures per set, got {self.count}")
        mean = self.sum / self.count
        covariance = (self.outer - self.count * torch.outer(mean, mean)) / (self.count - 1)
        return mean, covariance


def frechet_distance(mean1: Tensor, cov1: Tensor, mean2: Tensor, cov2: Tensor) -> float:
    """‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr √(Σ₁Σ₂), the trace of the root from the eigenvalues
    of Σ₁Σ₂ (as torchmetrics computes it)."""
    root_trace = torch.linalg.eigvals(cov1 @ cov2).sqrt().real.sum()
    return float((mean1 - mean2).square().sum() + cov1.trace() + cov2.trace() - 2 * root_trace)


class FrechetDistances:
    """FID of each named picture set against one set of photos, all through one Inception.

    `update_photos` adds photos (the reference set), `update` adds pictures of one named set;
    `compute` gives ``{name: FID}``. Statistics stay on the network's device (float64).
    """

    def __init__(self, names: Iterable[str], device: torch.device | str = "cpu") -> None:
        self.network = inception_network(device)
        self.device = torch.device(device)
        self.photos = _Moments()
        self.sets = {name: _Moments() for name in names}

    @torch.no_grad()
    def features(self, rgb: Tensor) -> Tensor:
        """rgb B×3×H×W in [0, 1] -> B×2048 Inception pool features (float64)."""
        return self.network(to_fid_uint8(rgb.to(self.device))).reshape(len(rgb), -1).double()

    def update_photos(self, rgb: Tensor) -> None:
        self.photos.add(self.features(rgb))

    def update(self, name: str, rgb: Tensor) -> None:
        self.sets[name].add(self.features(rgb))

    @property
    def count(self) -> int:
        """Photos seen so far."""
        return self.photos.count

    def compute(self) -> dict[str, float]:
        if self.count < FID_MIN_IMAGES:
            log.warning(
                "FID over %d photos is biased upwards and noisy: compare it only with FIDs over "
                "the same photos, not with papers' (%d or more; they use 5,000)",
                self.count,
                FID_MIN_IMAGES,
            )
        photos = self.photos.mean_covariance()
        return {
            name: frechet_distance(*photos, *moments.mean_covariance())
            for name, moments in self.sets.items()
        }


def lpips_metric(net: str = "alex") -> nn.Module:
    """torchmetrics' LPIPS over rgb in [0, 1] with ``net``'s features (`LPIPS_NETS`), its
    torchvision weights from the cache (else downloaded); offline, one line naming the file."""
    check_choice("lpips_net", net, LPIPS_NETS)
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

    from colorlab.models.backbone import weights_file

    file = weights_file(LPIPS_NETS[net])
    try:
        require_local_or_download(file)
        return LearnedPerceptualImagePatchSimilarity(net_type=LPIPS_NET_TYPES[net], normalize=True)
    except Exception as error:  # URLError, socket and SSL errors, a corrupt cached file
        raise ColorlabError(
            f"LPIPS ({net}) needs torchvision's {LPIPS_NETS[net]} weights ({first_line(error)}): "
            f"put {file.name} at {file} ($TORCH_HOME/hub/checkpoints/)"
        ) from error
