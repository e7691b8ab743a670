"""timm networks as backbones (``model.backbone=timm/NAME``): trained and reloaded through the
CLI, their weights read from a local file the tests write (nothing can be downloaded here), the
normalisation taken from timm's pretrained config, and the one-line errors."""

import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from colorlab.errors import ColorlabError, OptionError
from colorlab.inference import TrainedColorizer, load_colorizer
from colorlab.models import Backbone, backbone_encoder, global_fusion, unet
from colorlab.models.timm_backbone import weights_location
from conftest import TINY, run_cli

timm = pytest.importorskip("timm")  # a dev dependency: installed wherever the suite runs


def _train_and_reload(tmp_path: Path, *overrides: str, size: int) -> TrainedColorizer:
    """Train one tiny epoch through the CLI, reload the best checkpoint, colorize a picture."""
    result = run_cli(
        "colorlab.train",
        *overrides,
        "model.pretrained=false",
        *TINY,
        f"data.image_size={size}",
        "data.num_images=16",
        "logger=none",
        "test_after_fit=false",
        "run_dir=run",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (best,) = (tmp_path / "run" / "checkpoints").glob("best-*.ckpt")
    colorizer = load_colorizer(best, device="cpu")
    picture = torch.randint(0, 256, (size, size, 3), dtype=torch.uint8).numpy()
    colorized = colorizer.colorize(Image.fromarray(picture).convert("L"))
    assert colorized.size == (size, size) and colorized.mode == "RGB"
    return colorizer


@pytest.mark.slow
def test_unet_on_timm_resnet18_trains_and_reloads(tmp_path):
    colorizer = _train_and_reload(tmp_path, "model=unet", "model.backbone=timm/resnet18", size=32)
    (backbone,) = colorizer.net.backbones()
    assert backbone.name == "timm/resnet18" and backbone.strides == [2, 4, 8, 16, 32]


@pytest.mark.slow
def test_fusion_on_timm_inception_resnet_v2_trains_and_reloads(tmp_path):
    # Deep Koalarization's feature extractor; its unpadded stem needs 75 px or more.
    colorizer = _train_and_reload(
        tmp_path, "model=fusion", "model.backbone=timm/inception_resnet_v2", size=96
    )
    (backbone,) = colorizer.net.backbones()
    assert backbone.name == "timm/inception_resnet_v2"
    # Its pretrained config normalises to [-1, 1], not ImageNet's mean and std.
    assert torch.allclose(backbone.mean.flatten(), torch.tensor([0.5, 0.5, 0.5]))
    assert torch.allclose(backbone.std.flatten(), torch.tensor([0.5, 0.5, 0.5]))


def test_encoder_model_takes_a_timm_backbone():
    model = backbone_encoder("timm/convnext_tiny", pretrained=False)
    assert model(torch.rand(2, 1, 64, 64) * 100).shape == (2, 2, 64, 64)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_loads_exactly_the_local_weights_file(suffix):
    state = timm.create_model("resnet18").state_dict()  # as timm publishes it: with its fc
    state = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in state.items()}
    path = weights_location("timm/resnet18").with_suffix(suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, path) if suffix == ".safetensors" else torch.save(state, path)
    for build in (lambda: unet("timm/resnet18"), lambda: global_fusion("timm/resnet18")):
        (backbone,) = build().backbones()
        loaded = backbone.body.state_dict()
        assert loaded and all(torch.equal(v, state[k]) for k, v in loaded.items())


@pytest.mark.slow
def test_offline_without_a_weights_file_is_one_line(tmp_path):
    result = run_cli(
        "colorlab.train",
        "model=unet",
        "model.backbone=timm/resnet18",
        *TINY,
        "data.num_images=8",
        "logger=none",
        "run_dir=run",
        cwd=tmp_path,
        env={"COLORLAB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")},
        timeout=120,
    )
    assert result.returncode != 0
    message = result.stderr.strip().splitlines()[-1]
    assert "pretrained timm/resnet18 weights unavailable" in message
    assert str(weights_location("timm/resnet18")) in message
    assert "model.pretrained=false" in message
    assert "Traceback" not in result.stderr


def test_unknown_timm_name_names_the_key():
    with pytest.raises(OptionError, match="backbone") as error:
        Backbone("timm/resnet_nineteen", pretrained=False)
    assert "timm.list_models()" in str(error.value)


def test_without_timm_installed_one_line_says_how(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm raises ImportError
    with pytest.raises(ColorlabError) as error:
        Backbone("timm/resnet18", pretrained=False)
    message = str(error.value)
    assert "\n" not in message and "pip install 'colorlab[timm]'" in message
