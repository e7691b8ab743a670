"""Losses as weighted terms: colourfulness, perceptual, adversarial and classification + L1
train and log their terms; an adversarial run resumes with its critic; inference never
needs the critic or the perceptual network."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
import torchvision

from colorlab import load_colorizer
from colorlab.errors import ColorlabError
from colorlab.losses import RegressionLoss, loss_name
from colorlab.losses.perceptual import PerceptualTerm
from colorlab.models import ColorizerBase
from colorlab.train import train
from conftest import TINY, compose_train, run_cli

QUICK = [
    *TINY,
    "data.num_images=24",
    "logger=csv",
    "test_after_fit=false",
    "~callbacks.progress_bar",
]


@pytest.fixture
def vgg16_file(tmp_path) -> Path:
    """VGG-16 convolution weights (random) where torchvision looks for the ImageNet file."""
    torch.manual_seed(0)
    features = torchvision.models.vgg16(weights=None).features
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "vgg16-397923af.pth"
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    return path


def _logged(run_dir: Path) -> dict[str, list[float]]:
    """Every column of the run's csv/metrics.csv -> its logged values."""
    with open(run_dir / "csv" / "metrics.csv") as file:
        rows = list(csv.DictReader(file))
    return {key: [float(r[key]) for r in rows if r[key]] for key in rows[0]}


@pytest.mark.parametrize(
    ("overrides", "terms"),
    [
        (["loss=l1", "loss.colorfulness_weight=0.5"], ["l1", "colorfulness"]),
        (["loss=l1", "loss.perceptual_weight=0.1"], ["l1", "perceptual"]),
        (["loss=mse", "loss.adversarial_weight=0.05"], ["mse", "adversarial", "discriminator"]),
        (["loss=classification", "loss.l1_weight=1.0"], ["classification", "l1"]),
        (
            [
                "loss=l1",
                "loss.perceptual_weight=0.1",
                "loss.adversarial_weight=0.01",
                "loss.colorfulness_weight=0.5",
                "loss.adversarial_mode=lsgan",
            ],
            ["l1", "perceptual", "adversarial", "discriminator", "colorfulness"],
        ),
    ],
    ids=["l1+cf", "l1+perceptual", "mse+adversarial", "classification+l1", "all"],
)
def test_each_term_trains_and_is_logged(overrides, terms, vgg16_file, tmp_path):
    summary = train(compose_train(*QUICK, *overrides, run_dir=tmp_path))
    logged = _logged(tmp_path)
    for term in terms:
        values = logged[f"train/loss_{term}"]
        assert values and all(math.isfinite(v) for v in values), term
    total = logged["train/loss"][-1]
    own = sum(logged[f"train/loss_{t}"][-1] for t in terms if t != "discriminator")
    assert total == pytest.approx(own, rel=1e-4)  # the terms are the loss
    assert summary["best_checkpoint"]


def test_added_terms_change_the_gradient_and_name_the_loss():
    torch.manual_seed(0)
    batch = {"L": torch.rand(2, 1, 16, 16) * 100, "ab": torch.rand(2, 2, 16, 16) - 0.5}
    batch["rgb"] = torch.rand(2, 3, 16, 16)
    output = torch.zeros(2, 2, 16, 16, requires_grad=True)
    plain = RegressionLoss("mse")
    with_terms = RegressionLoss("mse", l1_weight=1.0, colorfulness_weight=1.0)
    terms = with_terms.terms(output, batch)
    assert set(terms) == {"mse", "l1", "colorfulness"} and all(t > 0 for t in terms.values())
    assert with_terms(output, batch) > plain(output, batch)
    assert loss_name({"kind": "l1", "adversarial_weight": 0.1, "perceptual_weight": 1}) == (
        "l1+perceptual+adversarial"
    )
    with pytest.raises(ColorlabError, match="^perceptual_weight=-1 is not allowed"):
        RegressionLoss("mse", perceptual_weight=-1)
    with pytest.raises(ColorlabError, match="^adversarial_mode='wgan' is not allowed"):
        RegressionLoss("mse", adversarial_weight=1, adversarial_mode="wgan")


def test_perceptual_term_keeps_its_network_out_of_checkpoints(vgg16_file):
    term = PerceptualTerm()
    assert term.state_dict() == {} and list(term.parameters()) == []
    rgb = torch.rand(2, 3, 32, 32)
    assert term(rgb, rgb).item() == pytest.approx(0.0, abs=1e-6)
    assert term(torch.rand(2, 3, 32, 32), rgb).item() > 0


@pytest.mark.slow
def test_perceptual_term_without_weights_is_one_line(tmp_path):
    result = run_cli(
        "colorlab.train",
        *QUICK,
        "loss=l1",
        "loss.perceptual_weight=0.1",
        "hydra.run.dir=run",
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("colorlab: error: pretrained vgg16 weights unavailable")
    assert "vgg16-397923af.pth" in last and last.endswith("loss.perceptual_weight=0)")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_an_adversarial_run_resumes_with_its_critic_and_colorizes_without_it(tmp_path):
    adversarial = ["loss=l1", "loss.adversarial_weight=0.05", "loss.adversarial_start_epoch=1"]
    first = train(
        compose_train(*QUICK, *adversarial, "trainer.max_epochs=2", run_dir=tmp_path / "a")
    )
    last = tmp_path / "a" / "checkpoints" / "last.ckpt"
    saved = torch.load(last, weights_only=False)
    critic_keys = [k for k in saved["state_dict"] if k.startswith("loss_fn.adversarial.")]
    assert critic_keys and len(saved["optimizer_states"]) == 2
    steps_per_epoch = first["train_batches"] // 2
    # epoch 0 trains the colorizer alone (adversarial_start_epoch=1), epoch 1 the critic too
    critic_steps = [s["step"] for s in saved["optimizer_states"][1]["state"].values()]
    assert critic_steps and all(float(s) == steps_per_epoch for s in critic_steps)

    train(
        compose_train(
            *QUICK,
            *adversarial,
            "trainer.max_epochs=3",
            f"ckpt_path={last}",
            run_dir=tmp_path / "b",
        )
    )
    resumed = torch.load(tmp_path / "b" / "checkpoints" / "last.ckpt", weights_only=False)
    assert resumed["epoch"] == 2
    critic_steps = [s["step"] for s in resumed["optimizer_states"][1]["state"].values()]
    assert all(float(s) == 2 * steps_per_epoch for s in critic_steps)  # it went on counting
    changed = [
        not torch.equal(saved["state_dict"][k], resumed["state_dict"][k]) for k in critic_keys
    ]
    assert any(changed)

    colorizer = load_colorizer(last, device="cpu")
    assert isinstance(colorizer.net, ColorizerBase)
    assert not any("discriminator" in name for name, _ in colorizer.net.named_modules())
    picture = colorizer.colorize(torch.rand(40, 56, 3).numpy())
    assert picture.size == (56, 40)


def test_the_vivid_recipe_trains_with_the_usual_overrides(tmp_path):
    cfg = compose_train("experiment=vivid", *QUICK, "trainer.max_epochs=1", run_dir=tmp_path)
    assert cfg.model._target_ == "colorlab.models.unet" and cfg.loss.l1_weight == 5.0
    assert cfg.data.image_size == 32 and cfg.scheduler is not None
    summary = train(cfg)
    logged = _logged(tmp_path)
    assert logged["train/loss_classification"] and logged["train/loss_l1"]
    colorizer = load_colorizer(summary["best_checkpoint"], device="cpu")
    assert colorizer.head_kind == "classification"
