"""FID and LPIPS (`colorlab.perceptual_metrics`) with weights files the tests write (nothing can be
downloaded here), their offline messages, and ``colorlab.evaluate`` with them and with the
papers' protocol (``protocol=imagenet_val5k``)."""

import json
import os
import urllib.error
from pathlib import Path

import pytest
import torch
import torchvision.models as tv
from PIL import Image

from colorlab.data import SyntheticScenes
from colorlab.errors import ColorlabError
from colorlab.inference.evaluation import evaluate_colorizers
from colorlab.models.backbone import weights_file
from colorlab.perceptual_metrics import (
    INCEPTION_FILE,
    FrechetDistances,
    hub_file,
    inception_weights,
    lpips_metric,
)
from conftest import colourful, run_cli


@pytest.fixture(scope="session")
def inception_file(tmp_path_factory) -> Path:
    """torch-fidelity's Inception with He-initialised random weights (features that differ
    between picture sets), written once for the session."""
    import torch_fidelity.feature_extractor_inceptionv3 as fidelity

    cls = fidelity.FeatureExtractorInceptionV3
    with pytest.MonkeyPatch.context() as patch:  # build it without fetching the real weights
        patch.setattr(fidelity, "load_state_dict_from_url", lambda *a, **k: {})
        patch.setattr(cls, "load_state_dict", lambda self, state, **k: None)
        network = cls("inception-v3-compat", ["2048"])
    generator = torch.Generator().manual_seed(0)
    for module in network.modules():
        if isinstance(module, torch.nn.Conv2d):
            fan_in = module.weight[0].numel()
            module.weight.data = (
                torch.randn(module.weight.shape, generator=generator) * (2 / fan_in) ** 0.5
            )
    path = tmp_path_factory.mktemp("inception") / INCEPTION_FILE
    torch.save(network.state_dict(), path)
    return path


@pytest.fixture
def fid_weights(inception_file) -> Path:
    """The session's Inception file in this test's $TORCH_HOME cache."""
    path = hub_file(INCEPTION_FILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(inception_file)
    return path


def _scenes(seed: int, count: int = 12, size: int = 64) -> torch.Tensor:
    scenes = SyntheticScenes(count, size, seed=seed)
    return torch.stack([scenes[i] for i in range(count)]).float() / 255


@pytest.mark.slow
def test_fid_of_photos_against_themselves_is_zero_and_matches_torchmetrics(fid_weights):
    from torchmetrics.image.fid import FrechetInceptionDistance

    photos, others = _scenes(1), _scenes(2)
    distances = FrechetDistances(["same", "other"])
    for half in (photos[:6], photos[6:]):  # statistics accumulated over batches
        distances.update_photos(half)
        distances.update("same", half)
    distances.update("other", others)
    fid = distances.compute()
    assert distances.count == 12
    assert abs(fid["same"]) < 1e-4
    assert fid["other"] > 1e-2
    reference = FrechetInceptionDistance(
        feature=2048, normalize=True, feature_extractor_weights_path=str(fid_weights)
    )
    reference.update(photos, real=True)
    reference.update(others, real=False)
    assert fid["other"] == pytest.approx(float(reference.compute()), rel=1e-4)


def test_lpips_of_identical_pictures_is_zero(tmp_path):
    state = tv.alexnet().state_dict()
    path = weights_file("alexnet")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    metric = lpips_metric("alex")
    pictures, others = _scenes(1, 4), _scenes(2, 4)
    metric.update(pictures, pictures)
    assert float(metric.compute()) == 0.0
    metric.reset()
    metric.update(pictures, others)
    assert 0 < float(metric.compute()) < 10


def test_offline_without_weights_one_line_names_the_file(monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(ColorlabError) as fid_error:
        inception_weights()
    message = str(fid_error.value)
    assert "\n" not in message and INCEPTION_FILE in message
    assert str(hub_file(INCEPTION_FILE)) in message and "name resolution" in message
    assert not hub_file(INCEPTION_FILE).exists()  # nothing half-written
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)  # torchvision's download
    with pytest.raises(ColorlabError) as lpips_error:
        lpips_metric("alex")
    message = str(lpips_error.value)
    assert "\n" not in message and str(weights_file("alexnet")) in message
    assert "name resolution" in message
    monkeypatch.setenv("COLORLAB_OFFLINE", "1")  # no download tried at all
    with pytest.raises(ColorlabError, match="COLORLAB_OFFLINE is set"):
        inception_weights()


@pytest.mark.slow
def test_gray_row_and_checkpoints_get_fid_and_lpips(checkpoints, fid_weights):
    from colorlab.inference import load_colorizer

    squeeze = weights_file("squeezenet1_1")
    torch.save(tv.squeezenet1_1().state_dict(), squeeze)
    images = (_scenes(3, 8) * 255).to(torch.uint8)
    colorizers = {"gray": None, "baseline": load_colorizer(checkpoints["baseline"], device="cpu")}
    results, _ = evaluate_colorizers(
        colorizers, [images[:4], images[4:]], torch.device("cpu"), 2, fid=True, lpips="squeeze"
    )
    for values in results.values():
        assert values["fid"] > 0 and 0 < values["lpips"] < 10
        assert {"psnr", "ssim", "delta_colorfulness"} <= set(values)
    assert results["gray"]["fid"] != results["baseline"]["fid"]


def _photo_folder(root: Path, count: int) -> Path:
    """``count`` colourful photos, wide ones (so centre crop and squash differ), named in order."""
    root.mkdir()
    for i in range(count):
        colourful((96, 64), seed=i).save(root / f"val_{i:05d}.jpg", quality=95)
    return root


@pytest.mark.slow
def test_imagenet_val5k_protocol_scores_the_first_files_centre_cropped(
    checkpoints, fid_weights, tmp_path
):
    photos = _photo_folder(tmp_path / "val", 7)
    torch.save(tv.squeezenet1_1().state_dict(), weights_file("squeezenet1_1"))
    result = run_cli(
        "colorlab.evaluate",
        "protocol=imagenet_val5k",
        f"data.root={photos}",
        "data.limit=5",  # the first 5 by name, as the preset takes the first 5,000
        "data.image_size=64",
        "data.num_workers=0",
        "lpips_net=squeeze",
        f"ckpt={checkpoints['baseline']}",
        "device=cpu",
        "num_images=2",
        "hydra.run.dir=eval",
        cwd=tmp_path,
        env={"TORCH_HOME": os.environ["TORCH_HOME"]},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert report["split"] == "all" and report["images"] == 5
    assert report["protocol"]["name"] == "imagenet_val5k"
    assert (
        report["protocol"]["resize"] == "crop" and "Inception" in report["protocol"]["fid_network"]
    )
    for values in report["metrics"].values():
        assert values["fid"] > 0 and values["lpips"] > 0
    table = (tmp_path / "eval" / "metrics.md").read_text()
    assert "| fid | lpips |" in table and "over 5 photos" in table
    # 5 photos: FID said not comparable to papers'.
    assert "biased upwards" in result.stdout + result.stderr


@pytest.mark.slow
def test_evaluate_offline_reports_the_other_metrics(checkpoints, tmp_path):
    result = run_cli(
        "colorlab.evaluate",
        f"ckpt={checkpoints['baseline']}",
        "fid=true",
        "lpips=true",
        "data.num_images=6",
        "data.image_size=32",
        "data.num_workers=0",
        "device=cpu",
        "hydra.run.dir=eval",
        cwd=tmp_path,
        env={"TORCH_HOME": str(tmp_path / "empty-torch-home"), "COLORLAB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    lines = [line for line in output.splitlines() if "skipped" in line]
    assert len(lines) == 2, result.stderr[-3000:]
    assert INCEPTION_FILE in lines[0] and "alexnet-owt-7be5be79.pth" in lines[1]
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())["metrics"]
    assert all("fid" not in v and "lpips" not in v and v["psnr"] > 0 for v in metrics.values())


def test_crop_and_squash_differ_on_wide_photos(tmp_path):
    from colorlab.data.images import load_uint8

    path = tmp_path / "wide.jpg"
    Image.new("RGB", (96, 48), (200, 30, 30)).save(path)
    with Image.open(path) as image:
        image.paste((30, 30, 200), (0, 0, 24, 48))  # a blue band the centre crop cuts away
        image.save(path)
    crop, squash = load_uint8(path, 32, "crop"), load_uint8(path, 32, "squash")
    assert crop[2, :, 0].float().mean() < 100 < squash[2, :, 0].float().mean()
