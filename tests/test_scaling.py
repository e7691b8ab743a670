"""Beyond one process: DDP on the CPU (gloo), the submitit launcher, and Optuna searches."""

import csv
import os
import subprocess
import sys

import lightning as L
import optuna
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from colorlab.data.transforms import prepare_batch
from colorlab.inference import load_colorizer
from colorlab.training.module import ColorizationModule
from colorlab.training.search import loss_options
from conftest import TINY, compose_train, run_cli

TINY_RUN = [*TINY, "~callbacks.progress_bar"]
# 80 scenes: 8 validation images, 4 for each of two ranks.
DDP_DATA = ["data.num_images=80", "seed=3"]


def _metrics_rows(run_dir):
    with open(run_dir / "csv" / "metrics.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["mse", "classification"])
def test_two_cpu_processes_train_as_one_run(tmp_path, loss):
    run_dir = tmp_path / "run"
    result = run_cli(
        "colorlab.train",
        *TINY_RUN,
        *DDP_DATA,
        f"loss={loss}",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.precision=32-true",
        "trainer.max_epochs=2",
        "logger=csv",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # One run's outputs, written once: the summary line, config, samples, metrics.
    summaries = [
        line for line in result.stdout.splitlines() if line.startswith("colorlab: run dir")
    ]
    assert len(summaries) == 1, summaries
    assert sorted(p.name for p in run_dir.glob("config*.yaml")) == ["config.yaml"]
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == [
        "epoch_000.png",
        "epoch_001.png",
        "test.png",
    ]
    assert len(list(run_dir.glob("csv/metrics.csv"))) == 1
    assert (run_dir / "train.log").read_text().count("colorlab: run dir") == 1

    # Both ranks trained: each saw half of the 64 training images per epoch (4 steps of 8).
    rows = _metrics_rows(run_dir)
    steps = {int(r["step"]) for r in rows if r.get("train/loss")}
    assert max(steps) == 2 * 4 - 1

    best = next((run_dir / "checkpoints").glob("best-*.ckpt"))
    epoch = int(best.stem.split("-")[1])
    logged = next(r for r in rows if r.get("val/psnr") and int(r["epoch"]) == epoch)

    # The same checkpoint evaluated by one process on the whole validation split.
    cfg = compose_train(f"loss={loss}", *TINY_RUN, *DDP_DATA, run_dir=tmp_path / "x")
    module = ColorizationModule.from_checkpoint(best)
    datamodule = instantiate(cfg.data)
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    (single,) = trainer.validate(module, datamodule=datamodule, verbose=False)
    for name in ("val/loss", "val/psnr", "val/ab_mse", "val/seed_accuracy"):
        assert float(logged[name]) == pytest.approx(single[name], rel=1e-4), name
    if loss == "classification":  # the colour prior counts both ranks' shards
        whole = instantiate(cfg.loss)
        whole.fit_prior(prepare_batch(raw)["ab"] for raw in datamodule.split_dataloader("train"))
        torch.testing.assert_close(module.loss_fn.prior, whole.prior)

    colorizer = load_colorizer(best)
    assert colorizer.colorize(torch.rand(30, 41).numpy()).size == (41, 30)


SWEEP_RUN = [*TINY_RUN, "data.num_images=40", "trainer.max_epochs=1", "logger=csv"]


@pytest.mark.slow
def test_submitit_local_runs_each_job_as_its_own_process(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli(
        "colorlab.train",
        "-m",
        "hydra/launcher=submitit_local",
        "loss=mse,l1",
        *SWEEP_RUN,
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for num, loss in (("0", "mse"), ("1", "l1")):
        run = sweep / num
        assert f"kind: {loss}" in (run / "config.yaml").read_text()
        assert (run / "checkpoints" / "last.ckpt").is_file()
        assert list((run / "checkpoints").glob("best-*.ckpt"))
        assert "colorlab: run dir" in (run / "train.log").read_text()
    # submitit's own logs of the two jobs (one process each), with each run's summary line
    logs = sorted((sweep / ".submitit").glob("*/*_log.out"))
    assert len(logs) == 2
    assert all("colorlab: run dir" in log.read_text() for log in logs)


def test_slurm_preset_asks_for_one_task_per_device_on_every_node():
    cfg = compose_train(
        "hydra/launcher=slurm",
        "trainer.devices=4",
        "trainer.num_nodes=2",
        "hydra.launcher.partition=gpu",
        run_dir="unused",
        return_hydra_config=True,
    )
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert launcher["_target_"].endswith("SlurmLauncher")
    assert (launcher["nodes"], launcher["gpus_per_node"], launcher["tasks_per_node"]) == (2, 4, 4)
    assert launcher["partition"] == "gpu"


def _trial_folders(sweep):
    return sorted(int(p.name) for p in sweep.iterdir() if p.name.isdigit())


@pytest.mark.slow
def test_optuna_search_reports_the_best_trial_and_continues_its_study(tmp_path):
    sweep = tmp_path / "search"
    search = ["-m", "hparams_search=optuna", *SWEEP_RUN, f"hydra.sweep.dir={sweep}"]
    first = run_cli("colorlab.train", *search, "hydra.sweeper.n_trials=3", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert _trial_folders(sweep) == [0, 1, 2]
    results = OmegaConf.load(sweep / "optimization_results.yaml")
    assert {"optimizer", "optimizer.lr", "loss"} <= set(results.best_params)
    assert "data.batch_size" not in results.best_params  # fixed on the command line
    best_line = first.stdout.strip().splitlines()[-1]
    assert best_line.startswith(f"colorlab: best val/psnr {results.best_value:.4f} with ")
    # the best value is the best val/psnr of a trial's checkpoint
    psnrs = [
        max(float(r["val/psnr"]) for r in _metrics_rows(sweep / str(n)) if r.get("val/psnr"))
        for n in range(3)
    ]
    assert results.best_value == pytest.approx(max(psnrs), rel=1e-6)

    again = run_cli("colorlab.train", *search, "hydra.sweeper.n_trials=2", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "after its 3 trials" in again.stdout
    assert _trial_folders(sweep) == [0, 1, 2, 3, 4]
    study = optuna.load_study(study_name="colorlab", storage=f"sqlite:///{sweep}/optuna.db")
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 5
    drawn = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(set(drawn)) == 5  # the continued study does not propose its first trials again


def test_a_search_draws_the_options_of_the_loss_it_draws():
    class Trial:
        def __init__(self, loss):
            self.params, self.user_attrs = {"loss": loss}, {}

        def suggest_float(self, name, low, high):
            self.params[name] = (low + high) / 2

    config = OmegaConf.create({"hydra": {"runtime": {"choices": {"loss": "mse"}}}})
    expected = {
        "classification": {"loss", "loss.rebalance", "loss.temperature"},
        "l1": {"loss", "loss.colorfulness_weight"},
    }
    for loss, names in expected.items():
        trial = Trial(loss)
        loss_options(config, trial)
        assert set(trial.params) == names
    fixed = Trial(None)  # the loss is not searched: the config's loss (mse) decides
    fixed.params = {}
    loss_options(config, fixed)
    assert set(fixed.params) == {"loss.colorfulness_weight"}


@pytest.mark.slow
def test_without_the_sweep_extra_a_plugin_config_is_one_line(tmp_path):
    # Hide the installed Hydra plugins from this process (as if the extra were not installed).
    (tmp_path / "sitecustomize.py").write_text(
        "import hydra_plugins\n"
        "hydra_plugins.__path__ = [p for p in hydra_plugins.__path__ if 'site-packages' not in p]\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    for choice in (
        "hparams_search=optuna",
        "hydra/launcher=submitit_local",
        "hydra/launcher=slurm",
    ):
        result = subprocess.run(
            [sys.executable, "-m", "colorlab.train", "-m", choice, "loss=mse,l1"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 2, result.stderr[-2000:]
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "pip install 'colorlab[sweep]'" in lines[0], lines


@pytest.mark.slow
def test_a_multirun_refuses_to_start_ddp_processes_itself(tmp_path):
    result = run_cli(
        "colorlab.train",
        "-m",
        "trainer.devices=2",
        "loss=mse,l1",
        *SWEEP_RUN,
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "hydra/launcher=slurm" in result.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_a_job_that_slurm_restarts_resumes_its_own_run(tmp_path):
    args = ["colorlab.train", *TINY_RUN, "data.num_images=40", "logger=csv", "hydra.run.dir=run"]
    first = run_cli(*args, "trainer.max_epochs=1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    # The same job again, as SLURM starts it after a requeue (preemption, time limit).
    env = {"SLURM_RESTART_COUNT": "1"}
    again = run_cli(*args, "trainer.max_epochs=2", cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "SLURM restarted this job (1 times): resuming from" in again.stdout
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["epoch"] == 1
    trained = {int(r["epoch"]) for r in _metrics_rows(tmp_path / "run") if r.get("train/loss")}
    assert trained == {0, 1}
    # Without the restart, the used folder is still refused.
    refused = run_cli(*args, "trainer.max_epochs=3", cwd=tmp_path)
    assert refused.returncode == 2 and "already holds a training run" in refused.stderr


@pytest.mark.slow
def test_an_adversarial_run_trains_under_ddp(tmp_path):
    # Manual optimization (the colorizer's and the critic's steps) across two gloo processes.
    run_dir = tmp_path / "run"
    result = run_cli(
        "colorlab.train",
        *TINY_RUN,
        *DDP_DATA,
        "loss=l1",
        "loss.adversarial_weight=0.05",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.precision=32-true",
        "trainer.max_epochs=2",
        "test_after_fit=false",
        "logger=csv",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    saved = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    critic_steps = [float(s["step"]) for s in saved["optimizer_states"][1]["state"].values()]
    assert critic_steps and all(s == 2 * 4 for s in critic_steps)  # 4 steps a rank, 2 epochs
    rows = _metrics_rows(run_dir)
    assert any(r.get("train/loss_discriminator") for r in rows)
    assert any(r.get("train/loss_adversarial") for r in rows)


@pytest.mark.slow
def test_a_corrupt_study_database_is_one_line_and_left_as_it_was(tmp_path):
    sweep = tmp_path / "search"
    sweep.mkdir()
    (sweep / "optuna.db").write_bytes(b"not a database, a half-copied file")
    result = run_cli(
        "colorlab.train",
        "-m",
        "hparams_search=optuna",
        *SWEEP_RUN,
        "hydra.sweeper.n_trials=1",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(
        f"colorlab: error: the study storage sqlite:///{sweep}/optuna.db cannot be opened ("
    )
    assert line.endswith(
        "move the file away to start a new study, or give a working one as hydra.sweeper.storage"
    )
    assert (sweep / "optuna.db").read_bytes() == b"not a database, a half-copied file"
    assert _trial_folders(sweep) == []


@pytest.mark.slow
def test_a_search_for_a_metric_training_does_not_log_stops_before_training(tmp_path):
    sweep = tmp_path / "search"
    result = run_cli(
        "colorlab.train",
        "-m",
        "hparams_search=optuna",
        "optimized_metric=val/psnrr",
        *SWEEP_RUN,
        "hydra.sweeper.n_trials=2",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "colorlab: error: optimized_metric='val/psnrr' is not a metric training logs; use one of"
        )
    )
    assert not list(sweep.glob("*/checkpoints/*.ckpt"))  # no trial trained


@pytest.mark.slow
def test_a_failed_submitit_job_is_one_line_and_the_others_keep_their_runs(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli(
        "colorlab.train",
        "-m",
        "hydra/launcher=submitit_local",
        "optimizer.lr=0.001,abc",
        *SWEEP_RUN,
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-2:] == [
        "colorlab: job #1 (optimizer.lr=abc) failed: optimizer.lr='abc' is not allowed; "
        "use a number in (0, 10]",
        "colorlab: error: 1 of 2 jobs failed (one line each above); the others finished and "
        "kept their runs",
    ]
    assert "UncompletedJobError" not in result.stderr and "Traceback" not in result.stderr
    assert (sweep / "0" / "checkpoints" / "last.ckpt").is_file()
    assert "colorlab: run dir" in (sweep / "0" / "train.log").read_text()
