"""``loss=classification`` end to end: training with its colour prior, resuming, checkpoints
that colorize alone (photos and videos), and checkpoints from before output heads."""

import json
import subprocess
import sys

import av
import pytest
import torch
from PIL import Image

from colorlab.inference import load_colorizer
from colorlab.losses import ClassificationLoss, RegressionLoss
from colorlab.models.heads import make_head
from colorlab.training.module import ColorizationModule
from conftest import colourful, run_cli, write_clip

TINY_CLASSIFICATION = [
    "loss=classification",
    "data.image_size=32",
    "data.num_images=40",
    "data.batch_size=8",
    "data.num_workers=0",
    "trainer.accelerator=cpu",
    "callbacks.samples.num_samples=3",
    "~callbacks.model_summary",
    "logger=csv",
]


@pytest.mark.slow
def test_prior_is_fitted_once_stored_and_restored_on_resume(tmp_path):
    first = run_cli(
        "colorlab.train",
        *TINY_CLASSIFICATION,
        "trainer.max_epochs=1",
        "hydra.run.dir=first",
        cwd=tmp_path,
    )
    assert first.returncode == 0, first.stderr[-3000:]
    assert "colour prior over 261 bins from 32 training images" in first.stdout + first.stderr
    checkpoint = torch.load(tmp_path / "first" / "checkpoints" / "last.ckpt", weights_only=False)
    prior = checkpoint["state_dict"]["loss_fn.prior"]
    assert prior.shape == (261,) and abs(prior.sum().item() - 1) < 1e-4
    weights = checkpoint["state_dict"]["loss_fn.class_weights"]
    assert abs((prior * weights).sum().item() - 1) < 1e-4 and weights.max() > 2 * weights.min()
    for name in ("epoch_000.png", "test.png"):
        with Image.open(tmp_path / "first" / "samples" / name) as picture:
            assert picture.width >= 3 * 256  # gray | prediction | ground truth, readable cells

    second = run_cli(
        "colorlab.train",
        *TINY_CLASSIFICATION,
        "trainer.max_epochs=2",
        f"ckpt_path={tmp_path / 'first' / 'checkpoints' / 'last.ckpt'}",
        "hydra.run.dir=second",
        cwd=tmp_path,
    )
    assert second.returncode == 0, second.stderr[-3000:]
    assert "colour prior" not in second.stdout + second.stderr  # restored, not recomputed
    resumed = torch.load(tmp_path / "second" / "checkpoints" / "last.ckpt", weights_only=False)
    assert resumed["epoch"] == 1
    assert torch.equal(resumed["state_dict"]["loss_fn.prior"], prior)


FRESH_PROCESS = """
import json, sys
import numpy as np
from colorlab import load_colorizer
ckpt, photo = sys.argv[1], sys.argv[2]
chroma = {}
for t in (0.1, None, 1.0):
    picture = load_colorizer(ckpt, device="cpu", temperature=t).colorize(photo)
    hsv = np.asarray(picture.convert("HSV"), np.float32)
    chroma[str(t)] = float(hsv[..., 1].mean())
print(json.dumps({"size": list(picture.size), "saturation": chroma}))
"""


@pytest.mark.slow
def test_classification_checkpoint_colorizes_photos_and_videos_in_a_fresh_process(
    checkpoints, tmp_path
):
    ckpt = checkpoints["classification"]
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    colourful((101, 77), seed=2).save(inputs / "photo.png")
    write_clip(inputs / "clip.mp4", frames=9, size=(64, 48), fps=12)
    api = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(ckpt), str(inputs / "photo.png")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert api.returncode == 0, api.stderr[-3000:]
    facts = json.loads(api.stdout.strip().splitlines()[-1])
    assert facts["size"] == [101, 77]
    saturation = facts["saturation"]
    assert saturation["0.1"] != saturation["1.0"]  # the temperature reaches the decoding

    cli = run_cli(
        "colorlab.colorize",
        f"ckpt={ckpt}",
        f"input={inputs}",
        "output=out",
        "colorize.temperature=0.2",
        "colorize.batch_size=4",
        cwd=tmp_path,
    )
    assert cli.returncode == 0, cli.stderr[-3000:]
    assert "1 images and 1 videos (9 frames)" in cli.stdout
    with Image.open(tmp_path / "out" / "photo.png") as picture:
        assert picture.size == (101, 77)
    with av.open(str(tmp_path / "out" / "clip.mp4")) as video:
        assert sum(1 for _ in video.decode(video=0)) == 9

    bad = run_cli(
        "colorlab.colorize",
        f"ckpt={ckpt}",
        f"input={inputs}",
        "output=o2",
        "colorize.temperature=0",
        cwd=tmp_path,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1] == (
        "colorlab: error: colorize.temperature=0 is not allowed; use a number in (0, 10] or null"
    )


def test_checkpoints_from_before_output_heads_still_load(checkpoints, tmp_path):
    current = torch.load(checkpoints["baseline"], weights_only=False)
    old = dict(current)
    # then: the decoder's last conv (after 4 conv blocks and 3 upsamplings) held (a, b)
    old["state_dict"] = {
        key.replace("net.head.conv.", "net.decoder.7."): value
        for key, value in current["state_dict"].items()
    }
    old["hyper_parameters"] = {
        **current["hyper_parameters"],
        "loss": {"_target_": "torch.nn.MSELoss"},
    }
    torch.save(old, tmp_path / "old.ckpt")
    upgraded = ColorizationModule.from_checkpoint(tmp_path / "old.ckpt")
    assert upgraded.hparams.loss["kind"] == "mse"
    reference = ColorizationModule.from_checkpoint(checkpoints["baseline"])
    L = torch.rand(2, 1, 32, 32) * 100
    with torch.no_grad():
        assert torch.equal(upgraded(L), reference(L))
    assert load_colorizer(tmp_path / "old.ckpt", device="cpu").colorize(colourful()).size == (
        48,
        40,
    )


def _fit_constant(loss, steps: int = 400) -> torch.Tensor:
    """Train a network that ignores its input (one learnable output map) with ``loss`` on
    pixels that are, from gray, the same: 2/3 a pale day-sky blue, 1/3 a dusk peach (of the
    same lightness); return the ab it predicts."""
    torch.manual_seed(0)
    day, dusk = torch.tensor([-2.0, -14.0]) / 128, torch.tensor([10.0, 25.0]) / 128
    head = make_head(8, loss.head)
    channels = len(head.bins) if hasattr(head, "bins") else 2
    size = 8 // loss.head.get("downsample", 1)
    output = torch.zeros(1, channels, size, size, requires_grad=True)
    optimizer = torch.optim.Adam([output], lr=0.05)
    pick = (torch.arange(12) % 3 == 0).float().view(12, 1, 1, 1)  # every third image at dusk
    ab = (pick * dusk.view(1, 2, 1, 1) + (1 - pick) * day.view(1, 2, 1, 1)).expand(12, 2, 8, 8)
    for _ in range(steps):
        raw = output.expand(12, -1, -1, -1)
        prediction = torch.tanh(raw) if channels == 2 else raw
        optimizer.zero_grad()
        loss(prediction, {"ab": ab, "L": torch.full((12, 1, 8, 8), 84.0)}).backward()
        optimizer.step()
    with torch.no_grad():
        prediction = torch.tanh(output) if channels == 2 else head.decode(output)
    return prediction.mean(dim=(0, 2, 3)) * 128


def test_where_gray_cannot_tell_mse_averages_to_grey_and_classification_picks_a_colour():
    mse = _fit_constant(RegressionLoss("mse"))
    classification = ClassificationLoss(rebalance=None)
    classification.fit_prior([torch.zeros(1, 2, 8, 8)])
    picked = _fit_constant(classification)
    # the mean of the two colours, (2, −1): nearly grey; the annealed mean (soft targets,
    # T 0.38) leans to the likelier blue: about (1, −7)
    assert mse.norm() < 4, mse
    assert picked.norm() > 2.5 * mse.norm() and picked[1] < -5, (picked, mse)


def test_checkpoints_of_the_version_before_the_restructuring_load_and_colorize_identically(
    checkpoints, tmp_path
):
    # As colorlab wrote them before losses became weighted terms (fe030ea): hyperparameters
    # without the added terms' keys, a classification loss with its prior buffers; the class
    # paths colorlab.losses.* / colorlab.models.* stored in them.
    for name in ("baseline", "classification"):
        current = torch.load(checkpoints[name], weights_only=False)
        loss = dict(current["hyper_parameters"]["loss"])
        for key in (
            "l1_weight",
            "perceptual_weight",
            "adversarial_weight",
            "adversarial_start_epoch",
            "adversarial_mode",
            "discriminator_lr",
        ):
            loss.pop(key)
        if name == "classification":
            loss.pop("colorfulness_weight")
        assert loss["_target_"].startswith("colorlab.losses.")
        old = {**current, "hyper_parameters": {**current["hyper_parameters"], "loss": loss}}
        torch.save(old, tmp_path / f"{name}-old.ckpt")
        then = load_colorizer(tmp_path / f"{name}-old.ckpt", device="cpu")
        now = load_colorizer(checkpoints[name], device="cpu")
        picture = colourful((61, 45), seed=3)
        assert then.colorize(picture).tobytes() == now.colorize(picture).tobytes()
        module = ColorizationModule.from_checkpoint(tmp_path / f"{name}-old.ckpt")
        L = torch.rand(1, 1, 32, 32) * 100
        with torch.no_grad():
            assert torch.equal(module(L), then.net.predict_ab(L))
