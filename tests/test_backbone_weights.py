"""The real torchvision loading path for pretrained backbones, fed weights files the tests
write themselves (nothing can be downloaded here), and checkpoints of the first VGG models."""

import pytest
import torch
import torchvision.models as tv
from torchvision.models.vgg import cfgs, make_layers

from colorlab.errors import ColorlabError
from colorlab.models import Backbone, backbone_encoder, global_fusion, unet
from colorlab.models.backbone import weights_file
from colorlab.training.module import ColorizationModule
from conftest import run_cli

#: One network per family; vgg16 is written with its feature layers only (the classifier's
#: 120 M parameters are never used), the others whole.
FAMILIES = [
    "vgg16",
    "resnet18",
    "efficientnet_b0",
    "mobilenet_v3_small",
    "regnet_y_400mf",
    "convnext_tiny",
]


def _write_weights(name: str) -> dict[str, torch.Tensor]:
    if name == "vgg16":
        features = make_layers(cfgs["D"])
        state = {f"features.{k}": v for k, v in features.state_dict().items()}
    else:
        state = tv.get_model(name, weights=None).state_dict()
    state = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in state.items()}
    path = weights_file(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


def test_weights_files_live_in_torch_home(tmp_path):
    assert (
        weights_file("vgg16")
        == tmp_path / "torch-home" / "hub" / "checkpoints" / "vgg16-397923af.pth"
    )
    assert weights_file("resnet34").name == "resnet34-b627a593.pth"


@pytest.mark.parametrize("name", FAMILIES)
def test_loads_exactly_the_cached_weights(name):
    written = _write_weights(name)
    backbone = Backbone(name, pretrained=True)
    loaded = backbone.body.state_dict()
    assert loaded and all(torch.equal(value, written[key]) for key, value in loaded.items())


@pytest.mark.parametrize(
    "builder",
    [lambda: backbone_encoder("vgg16"), lambda: global_fusion("vgg16"), lambda: unet("resnet18")],
)
def test_models_load_their_backbone_weights(builder):
    for name in ("vgg16", "resnet18"):
        _write_weights(name)
    (backbone,) = builder().backbones()
    written = torch.load(weights_file(backbone.name))
    assert all(torch.equal(v, written[k]) for k, v in backbone.body.state_dict().items())


@pytest.mark.parametrize("name", ["vgg16", "resnet34", "efficientnet_b0"])
def test_no_file_and_no_network_is_a_one_line_error(monkeypatch, name):
    def no_network(url, dst, *args, **kwargs):
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(ColorlabError) as error:
        unet(name) if name != "vgg16" else backbone_encoder(name)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"pretrained {name} weights unavailable")
    assert f"$TORCH_HOME/hub/checkpoints/{weights_file(name).name}" in message
    assert "model.pretrained=false" in message


def test_a_corrupt_or_foreign_weights_file_is_a_clear_error():
    path = weights_file("resnet18")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ColorlabError, match="resnet18-f37072fd.pth"):
        unet("resnet18")
    torch.save({"fc.bias": torch.zeros(1000)}, path)
    with pytest.raises(ColorlabError, match="holds no resnet18 weights for "):
        unet("resnet18")


@pytest.mark.slow
def test_cli_without_weights_exits_with_the_one_liner(tmp_path):
    """End to end, with the real download attempt (no network to the weights host here)."""
    result = run_cli(
        "colorlab.train",
        "model=unet",
        "model.backbone=resnet18",
        "logger=none",
        "data.num_images=6",
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("colorlab: error: pretrained resnet18 weights unavailable")
    assert "model.pretrained=false" in last


@pytest.mark.parametrize(
    ("legacy", "part"), [("vgg16", "encoder"), ("vgg16_fusion", "feature_extractor")]
)
def test_checkpoints_of_the_first_vgg_models_load_with_the_same_outputs(tmp_path, legacy, part):
    # Then: colorlab.models.vgg16 / vgg16_fusion, VGG-16 layers under <part>.features, fed L/100.
    current = ColorizationModule(
        model={
            "_target_": "colorlab.models.backbone_encoder"
            if part == "encoder"
            else "colorlab.models.global_fusion",
            "backbone": "vgg16",
            "pretrained": False,
            "gray": "lightness",
            "native_size": 224,
        },
        loss={"_target_": "colorlab.losses.RegressionLoss", "kind": "mse"},
        optimizer={"_target_": "torch.optim.RMSprop", "_partial_": True, "lr": 1e-3},
    ).eval()
    old_state = {
        k.replace(f"net.{part}.body.features.", f"net.{part}.features."): v
        for k, v in current.state_dict().items()
    }
    hparams = dict(current.hparams)
    hparams["model"] = {
        "_target_": f"colorlab.models.{legacy}",
        "pretrained": True,
        "native_size": 224,
    }
    torch.save({"state_dict": old_state, "hyper_parameters": hparams}, tmp_path / "old.ckpt")
    upgraded = ColorizationModule.from_checkpoint(tmp_path / "old.ckpt")
    assert upgraded.hparams.model["gray"] == "lightness"
    L = torch.rand(2, 1, 64, 64) * 100
    with torch.no_grad():
        assert torch.equal(upgraded(L), current(L))
    # what the first VGG models computed: VGG-16 on L/100 in every channel, ImageNet-normalised
    vgg = make_layers(cfgs["D"])
    vgg.load_state_dict(
        {
            k.removeprefix(f"net.{part}.features."): v
            for k, v in old_state.items()
            if k.startswith(f"net.{part}.features.")
        }
    )
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = vgg(((L / 100).expand(-1, 3, -1, -1) - mean) / std)
        seen = getattr(upgraded.net, part)(L)
    assert torch.allclose(
        seen, expected if part == "encoder" else expected.mean(dim=(-2, -1)), atol=1e-6
    )
