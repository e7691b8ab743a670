"""End to end: ``python -m colorlab.train`` as a user runs it (tiny images, 1–2 epochs)."""

import csv
import json
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from colorlab.models import model_name
from colorlab.train import train
from colorlab.training.callbacks import ColorizationSamples
from colorlab.training.loggers import build_loggers, wandb_offline_reason
from colorlab.training.module import ColorizationModule
from conftest import TINY, UNREADABLE, compose_train, run_cli
from wandb_files import history_keys, model_artifacts, run_names

TINY_CLI = [
    "data.image_size=64",
    "data.batch_size=8",
    "data.num_workers=0",
    "trainer.accelerator=cpu",
    "trainer.log_every_n_steps=1",
    "callbacks.samples.num_samples=3",
    "~callbacks.model_summary",
]
SYNTHETIC = [*TINY_CLI, "data.num_images=40"]


def _only(paths):
    paths = list(paths)
    assert len(paths) == 1, paths
    return paths[0]


def _csv_rows(run_dir):
    with open(run_dir / "csv" / "metrics.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_tiny_run_writes_checkpoints_config_and_samples(tmp_path):
    result = run_cli(
        "colorlab.train", *SYNTHETIC, "trainer.max_epochs=2", "logger=csv", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = _only(tmp_path.glob("outputs/*/*"))
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    best = _only((run_dir / "checkpoints").glob("best-*.ckpt"))
    config = (run_dir / "config.yaml").read_text()
    assert "image_size: 64" in config and "${" not in config  # resolved
    assert (run_dir / ".hydra" / "overrides.yaml").is_file()
    for name in ("epoch_000.png", "epoch_001.png", "test.png"):
        with Image.open(run_dir / "samples" / name) as picture:
            assert picture.width > 3 * 64  # gray | prediction | ground truth
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith(f"colorlab: run dir {run_dir}") and str(best) in summary
    rows = _csv_rows(run_dir)
    assert any(r.get("train/loss") for r in rows) and any(r.get("val/loss") for r in rows)
    test_row = next(r for r in rows if r.get("test/psnr"))
    assert 5 < float(test_row["test/psnr"]) < 60 and 0 <= float(test_row["test/seed_accuracy"]) <= 1
    module = ColorizationModule.from_checkpoint(best)
    assert module.image_size == 64
    ab = module(torch.rand(1, 1, 64, 64) * 100)
    assert ab.shape == (1, 2, 64, 64)
    # The run's own account, whatever the logger: run.json and one metrics line per epoch.
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "finished" and record["name"] == "baseline-mse-2ep"
    assert record["command"].startswith("python -m colorlab.train data.image_size=64 ")
    assert record["best_checkpoint"] == str(best) and record["epochs"] == 2
    assert record["train_images_per_s"] > 0 and record["wall_s"] > 0
    assert 5 < record["test"]["test/psnr"] < 60
    epochs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in epochs] == [0, 1]
    for entry in epochs:
        for key in ("train/seed_accuracy", "val/seed_accuracy"):
            assert 0 <= entry[key] <= 1, (key, entry)
        assert entry["train/loss"] > 0 and entry["val/psnr"] > 5


def test_sample_pictures_are_due_in_the_first_every_nth_and_the_last_epoch():
    samples = ColorizationSamples("unused", every_n_epochs=10)

    def due(epoch, sanity_checking=False):
        trainer = SimpleNamespace(
            current_epoch=epoch, max_epochs=25, sanity_checking=sanity_checking
        )
        return samples._due(trainer)

    assert [epoch for epoch in range(25) if due(epoch)] == [0, 10, 20, 24]
    assert not due(0, sanity_checking=True)


@pytest.mark.slow
def test_wandb_offline_writes_media_and_history(tmp_path):
    result = run_cli("colorlab.train", *SYNTHETIC, "trainer.max_epochs=2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "W&B runs offline: no W&B API key" in result.stdout + result.stderr
    run = _only(tmp_path.glob("outputs/*/*/wandb/offline-run-*"))
    images = list((run / "files" / "media" / "images" / "val").glob("samples_*.png"))
    assert len(images) == 2 * 3  # 3 samples, 2 epochs
    table = json.loads(
        _only((run / "files" / "media" / "table" / "test").glob("*.table.json")).read_text()
    )
    # Per-image numbers beside the pictures, so that the table sorts.
    metrics = ["psnr", "ab_mse", "colorfulness_pred", "delta_colorfulness"]
    assert table["columns"] == ["gray", "prediction", "ground truth", *metrics]
    assert len(table["data"]) >= 1
    for row in table["data"]:
        psnr, ab_mse, colorfulness, delta = row[3:]
        assert 5 < psnr < 60 and 0 <= ab_mse < 1 and colorfulness >= 0 and delta >= 0
    assert len({row[3] for row in table["data"]}) > 1  # each image its own number
    run_file = _only(run.glob("run-*.wandb"))
    rows = history_keys(run_file)
    assert sum("train/loss" in row for row in rows) == 2
    assert sum("val/loss" in row for row in rows) == 2
    assert {name for _, name in run_names(run_file)} == {"baseline-mse-2ep"}


@pytest.mark.slow
def test_a_resumed_run_continues_its_wandb_run_and_logs_best_and_last_models(tmp_path):
    common = [*SYNTHETIC, "logger.wandb.log_model=true", "hydra.run.dir=run"]
    first = run_cli("colorlab.train", *common, "trainer.max_epochs=1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    wandb_id = json.loads((tmp_path / "run" / "run.json").read_text())["wandb_id"]
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    second = run_cli(
        "colorlab.train", *common, "trainer.max_epochs=2", f"ckpt_path={last}", cwd=tmp_path
    )
    assert second.returncode == 0, second.stderr[-3000:]
    runs = sorted((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert len(runs) == 2
    ids = {run_id for run in runs for run_id, _ in run_names(_only(run.glob("run-*.wandb")))}
    assert ids == {wandb_id}, "the resumed run must continue the same W&B run"
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["wandb_id"] == wandb_id and record["epochs"] == 2
    epochs = [json.loads(line)["epoch"] for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert epochs == [0, 1]
    for run in runs:  # each segment logged its best and last checkpoints as model artifacts
        aliases = model_artifacts(_only(run.glob("run-*.wandb")))
        assert any("best" in a for a in aliases) and any("last" in a for a in aliases), aliases


@pytest.mark.slow
def test_multirun_sweeps_two_runs(tmp_path):
    result = run_cli(
        "colorlab.train",
        "-m",
        *SYNTHETIC,
        "trainer.max_epochs=1",
        "logger=csv",
        "loss=mse,l1",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = sorted(tmp_path.glob("multirun/*/*/[0-9]*"))
    assert [r.name for r in runs] == ["0", "1"]
    losses = []
    for run in runs:
        assert (run / "checkpoints" / "last.ckpt").is_file()
        losses.append(
            next(line for line in (run / "config.yaml").read_text().splitlines() if "kind:" in line)
        )
    assert "mse" in losses[0] and "l1" in losses[1]


@pytest.mark.slow
def test_resume_continues_at_the_next_epoch(tmp_path):
    first = run_cli(
        "colorlab.train",
        *SYNTHETIC,
        "trainer.max_epochs=1",
        "logger=csv",
        "hydra.run.dir=first",
        cwd=tmp_path,
    )
    assert first.returncode == 0, first.stderr[-3000:]
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=False)["epoch"] == 0
    second = run_cli(
        "colorlab.train",
        *SYNTHETIC,
        "trainer.max_epochs=2",
        "logger=csv",
        f"ckpt_path={last}",
        "hydra.run.dir=second",
        cwd=tmp_path,
    )
    assert second.returncode == 0, second.stderr[-3000:]
    epochs = {int(r["epoch"]) for r in _csv_rows(tmp_path / "second") if r.get("train/loss")}
    assert epochs == {1}, "the resumed run must train epoch 1 only"
    assert (
        torch.load(tmp_path / "second" / "checkpoints" / "last.ckpt", weights_only=False)["epoch"]
        == 1
    )


@pytest.mark.slow
def test_compiled_training_runs_and_saves_plain_checkpoints(tmp_path):
    import torch._dynamo

    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    cfg = compose_train(
        *TINY,
        "compile=true",
        "data.num_images=24",
        "logger=none",
        "test_after_fit=false",
        run_dir=tmp_path,
    )
    summary = train(cfg)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1  # the network was compiled
    module = ColorizationModule.from_checkpoint(summary["best_checkpoint"])
    assert module(torch.rand(1, 1, 32, 32) * 100).shape == (1, 2, 32, 32)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["compile=maybe"],
            "compile='maybe' is not allowed; use false, true or one of default, reduce-overhead, max-autotune, max-autotune-no-cudagraphs",
        ),
        (["data.cache=disk"], "data.cache='disk' is not allowed; use one of auto, gpu, cpu, none"),
        (
            ["model=nope"],
            "model=nope does not exist; choose one of: baseline, eccv16, fusion, siggraph17, unet, vgg16, vgg16_fusion",
        ),
        (
            ["data=folder", "data.root=/missing"],
            "data.root='/missing' is not a folder; give a folder of photos",
        ),
        (
            ["ckpt_path=/missing.ckpt", "logger=none"],
            "ckpt_path=/missing.ckpt does not exist; give the path of a .ckpt file to resume",
        ),
        (
            ["data=folder", "data.root=.", "data.resize=stretch"],
            "data.resize='stretch' is not allowed; choose one of: squash, crop",
        ),
    ],
)
def test_user_errors_are_one_line_and_non_zero(tmp_path, args, expected):
    result = run_cli("colorlab.train", *args, cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"colorlab: error: {expected}"


@pytest.mark.slow
def test_training_on_a_folder_of_awkward_files(tmp_path, awkward_folder):
    result = run_cli(
        "colorlab.train",
        *TINY_CLI,
        "data=folder",
        f"data.root={awkward_folder}",
        "data.image_size=32",
        "data.val_fraction=0.2",
        "data.test_fraction=0.2",
        "trainer.max_epochs=1",
        "logger=csv",
        cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    for name in UNREADABLE:
        assert f"skipped unreadable image {awkward_folder / name}" in output
    assert (
        "11 images used; left out: 3 unreadable, 2 entirely black or white, 0 nearly colourless"
        in output
    )
    assert (_only(tmp_path.glob("outputs/*/*")) / "checkpoints" / "last.ckpt").is_file()


# -- W&B behaviour without network ------------------------------------------------------------
def test_wandb_mode_follows_credentials_and_network(monkeypatch, tmp_path):
    assert "no W&B API key" in wandb_offline_reason()
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    assert "unreachable" in wandb_offline_reason()
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_offline_reason() is None  # the user's explicit choice wins


def test_sweep_runs_share_a_wandb_group(tmp_path):
    cfg = compose_train("logger=wandb", run_dir=tmp_path)
    (logger,) = build_loggers(cfg.logger, group="sweep-2026-01-01_10-00-00")
    assert logger._wandb_init["group"] == "sweep-2026-01-01_10-00-00"
    assert logger._offline
    assert logger._wandb_init["dir"] == str(tmp_path)


@pytest.mark.parametrize(
    ("experiment", "model", "size"),
    [("seed_baseline", "baseline", 256), ("seed_vgg16", "vgg16", 224)],
)
def test_seed_experiments_are_the_references(tmp_path, experiment, model, size):
    cfg = compose_train(f"experiment={experiment}", run_dir=tmp_path)
    assert model_name(cfg.model) == model
    assert cfg.data.image_size == size
    assert cfg.loss._target_ == "colorlab.losses.RegressionLoss" and cfg.loss.kind == "mse"
    assert cfg.loss.colorfulness_weight == 0
    assert cfg.optimizer._target_ == "torch.optim.RMSprop" and cfg.optimizer.alpha == 0.9
    assert cfg.trainer.max_epochs == 100


def test_demo_experiment_is_small_and_cpu_friendly(tmp_path):
    cfg = compose_train("experiment=demo", run_dir=tmp_path)
    assert cfg.data._target_.endswith("SyntheticDataModule") and cfg.data.image_size == 64
    assert cfg.data.num_images * cfg.trainer.max_epochs <= 5000
