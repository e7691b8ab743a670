"""The third reliability pass: each case one line before any work (or a warning and the rest
kept), where the code before it failed with a traceback, a silent NaN run or a wrong word."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import torch

from colorlab import load_colorizer
from colorlab.errors import ColorlabError
from conftest import TINY, compose_train, run_cli


def _train(tmp_path: Path, *overrides: str, name: str = "run") -> dict:
    from colorlab.train import train

    cfg = compose_train(
        *TINY,
        "data.num_images=16",
        "logger=none",
        "test_after_fit=false",
        "~callbacks.progress_bar",
        *overrides,
        run_dir=tmp_path / name,
    )
    return train(cfg)


@pytest.fixture(scope="session")
def adversarial_run(tmp_path_factory) -> Path:
    """last.ckpt of a tiny run with an adversarial critic (hinge)."""
    summary = _train(
        tmp_path_factory.mktemp("adversarial"), "loss=l1", "loss.adversarial_weight=0.1"
    )
    return Path(summary["run_dir"]) / "checkpoints" / "last.ckpt"


@pytest.mark.parametrize(
    ("overrides", "then", "now"),
    [
        (["loss=l1"], "with an adversarial critic", "without an adversarial critic"),
        (
            ["loss=l1", "loss.adversarial_weight=0.1", "loss.adversarial_mode=lsgan"],
            "loss.adversarial_mode=hinge",
            "loss.adversarial_mode=lsgan",
        ),
    ],
)
def test_resuming_with_another_critic_is_one_line_and_leaves_no_run_folder(
    adversarial_run, tmp_path, overrides, then, now
):
    with pytest.raises(ColorlabError) as refused:
        _train(tmp_path, *overrides, f"ckpt_path={adversarial_run}", name="resumed")
    message = str(refused.value)
    assert then in message and now in message and "\n" not in message
    # nothing of the refused run is left to block the next try
    assert not (tmp_path / "resumed" / "config.yaml").exists()
    assert not (tmp_path / "resumed" / "run.json").exists()


def test_resuming_a_run_without_a_critic_with_one_is_one_line(checkpoints, tmp_path):
    last = checkpoints["baseline"].parent / "last.ckpt"
    with pytest.raises(ColorlabError, match="was trained without an adversarial critic"):
        _train(tmp_path, "loss.adversarial_weight=0.1", f"ckpt_path={last}")


@pytest.mark.parametrize(
    "override",
    [
        "loss.adversarial_weight=nan",
        "loss.adversarial_weight=inf",
        "loss.perceptual_weight=inf",
        "loss.l1_weight=-inf",
        "optimizer.lr=nan",
        "optimizer.eps=nan",
        "callbacks.samples.num_samples=inf",
    ],
)
def test_a_value_that_is_not_finite_is_refused_before_any_work(override, tmp_path):
    from colorlab.train import train

    cfg = compose_train(*TINY, "logger=none", override, run_dir=tmp_path / "run")
    with pytest.raises(ColorlabError) as refused:
        train(cfg)
    key = override.split("=")[0]
    assert str(refused.value).startswith(f"{key}=") and "finite" in str(refused.value)
    assert not (tmp_path / "run").exists()


def test_the_library_refuses_a_nan_weight_too():
    from colorlab.losses import RegressionLoss

    with pytest.raises(ValueError, match="l1_weight=nan"):
        RegressionLoss(kind="mse", l1_weight=float("nan"))


@pytest.mark.slow
def test_a_loss_that_becomes_nan_stops_the_run_and_is_never_kept_as_best(tmp_path, monkeypatch):
    from colorlab.training.module import ColorizationModule
    from colorlab.training.record import read_record

    step = ColorizationModule.model_step

    def nan_from_epoch_1(self, batch):
        loss, terms, output = step(self, batch)
        if self.current_epoch >= 1:
            loss = loss * float("nan")
        return loss, terms, output

    monkeypatch.setattr(ColorizationModule, "model_step", nan_from_epoch_1)
    with pytest.raises(ColorlabError) as stopped:
        _train(tmp_path, "trainer.max_epochs=3")
    assert "became nan in epoch 1" in str(stopped.value)
    run = tmp_path / "run"
    record = read_record(run)
    assert record["status"] == "failed" and "epoch 1" in record["error"]
    assert sorted(p.name for p in (run / "checkpoints").glob("*.ckpt")) == [
        "best-000.ckpt",
        "last.ckpt",
    ]
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0
    result = run_cli(
        "colorlab.train",
        *TINY,
        "data.num_images=16",
        "logger=none",
        "trainer.max_epochs=2",
        "loss.l1_weight=1e308",  # finite, and the gradients overflow: a real NaN
        "hydra.run.dir=nan-run",
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("colorlab: error: ") and "in epoch 0" in last, last
    assert not list((tmp_path / "nan-run" / "checkpoints").glob("best*.ckpt"))


def test_a_checkpoint_without_a_loss_config_is_one_line(checkpoints, tmp_path):
    contents = torch.load(checkpoints["baseline"], weights_only=True)
    del contents["hyper_parameters"]["loss"]
    torch.save(contents, tmp_path / "no-loss.ckpt")
    with pytest.raises(ColorlabError, match="has no loss config in its hyperparameters"):
        load_colorizer(tmp_path / "no-loss.ckpt", device="cpu")


def _copy_run(checkpoints, tmp_path: Path) -> Path:
    run = tmp_path / "runs" / "r0"
    shutil.copytree(checkpoints["baseline"].parent.parent, run)
    return run


def _report(tmp_path: Path):
    from colorlab.reporting import write_report

    return write_report([tmp_path / "runs"], tmp_path / "report", torch.device("cpu"))


def test_the_report_names_a_corrupt_run_json_as_corrupt(checkpoints, tmp_path):
    run = _copy_run(checkpoints, tmp_path)
    (run / "run.json").write_text('{"status": "finished", "na')
    row = next(r for r in _report(tmp_path)["runs"] if r["status"] != "reference")
    assert row["status"] == "unknown (corrupt run.json)"
    assert "run.json is corrupt" in str(row.get("error"))


def test_the_report_skips_a_metrics_line_without_an_integer_epoch(checkpoints, tmp_path, caplog):
    run = _copy_run(checkpoints, tmp_path)
    lines = (run / "metrics.jsonl").read_text().splitlines()
    bad = json.loads(lines[0]) | {"epoch": "first"}
    (run / "metrics.jsonl").write_text("\n".join([json.dumps(bad), *lines]) + "\n")
    with caplog.at_level(logging.WARNING):
        report = _report(tmp_path)
    assert "line 1: epoch 'first' is not an integer; line skipped" in caplog.text
    assert report["curves"]["val/loss"]  # the other lines still drawn


def test_the_report_says_it_scored_last_ckpt_when_the_best_is_gone(checkpoints, tmp_path):
    run = _copy_run(checkpoints, tmp_path)
    record = json.loads((run / "run.json").read_text())
    record["best_checkpoint"] = str(run / "checkpoints" / "best-000.ckpt")
    record["last_checkpoint"] = str(run / "checkpoints" / "last.ckpt")
    (run / "run.json").write_text(json.dumps(record))
    (run / "checkpoints" / "best-000.ckpt").unlink()
    _report(tmp_path)
    page = (tmp_path / "report" / "report.md").read_text()
    assert "its best checkpoint" in page and "is gone; last.ckpt was scored instead" in page
