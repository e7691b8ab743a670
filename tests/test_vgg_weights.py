"""The real torchvision loading path, fed a weights file the test writes itself."""

import pytest
import torch
from torchvision.models.vgg import cfgs, make_layers

from colorlab.errors import ColorlabError
from colorlab.models import vgg16, vgg16_fusion
from colorlab.models.vgg import weights_path


def _write_fake_imagenet_file() -> dict[str, torch.Tensor]:
    features = make_layers(cfgs["D"])
    torch.nn.init.normal_(features[0].weight)  # anything but the default initialisation
    state = {f"features.{k}": v.clone() for k, v in features.state_dict().items()}
    state["classifier.6.bias"] = torch.zeros(1000)  # the real file carries the classifier too
    path = weights_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


def test_weights_path_is_torch_home(tmp_path):
    assert weights_path() == tmp_path / "torch-home" / "hub" / "checkpoints" / "vgg16-397923af.pth"


@pytest.mark.parametrize("builder", [vgg16, vgg16_fusion])
def test_loads_exactly_the_cached_weights(builder):
    written = _write_fake_imagenet_file()
    net = builder(pretrained=True)
    vgg = net.encoder if builder is vgg16 else net.feature_extractor
    loaded = vgg.features.state_dict()
    assert set(loaded) == {
        k.removeprefix("features.") for k in written if k.startswith("features.")
    }
    assert all(torch.equal(loaded[k], written[f"features.{k}"]) for k in loaded)


def test_no_file_and_no_network_is_a_one_line_error(monkeypatch):
    def no_network(url, dst, *args, **kwargs):
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(ColorlabError) as error:
        vgg16(pretrained=True)
    message = str(error.value)
    assert "\n" not in message
    assert "$TORCH_HOME/hub/checkpoints/vgg16-397923af.pth" in message
    assert "model.pretrained=false" in message


def test_corrupt_cached_file_is_a_clear_error():
    path = weights_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ColorlabError, match="vgg16-397923af.pth"):
        vgg16(pretrained=True)


def test_cli_without_weights_exits_with_the_one_liner(tmp_path):
    """End to end, with the real download attempt (no network to the weights host here)."""
    from conftest import run_cli

    result = run_cli(
        "colorlab.train",
        "model=vgg16",
        "logger=none",
        "data.num_images=6",
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("colorlab: error: VGG-16 ImageNet weights unavailable")
    assert "model.pretrained=false" in last
