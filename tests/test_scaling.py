"""Beyond one process: DDP on the CPU (gloo), the submitit launcher, and Optuna searches."""

import csv

import lightning as L
import pytest
import torch
from hydra.utils import instantiate

from colorlab.inference import load_colorizer
from colorlab.module import ColorizationModule
from conftest import compose_train, run_cli

TINY_RUN = [
    "data.image_size=32",
    "data.batch_size=8",
    "data.num_workers=0",
    "trainer.accelerator=cpu",
    "trainer.log_every_n_steps=1",
    "callbacks.samples.num_samples=3",
    "~callbacks.model_summary",
    "~callbacks.progress_bar",
]
# 80 scenes: 8 validation images, 4 for each of two ranks.
DDP_DATA = ["data.num_images=80", "seed=3"]


def _metrics_rows(run_dir):
    with open(run_dir / "csv" / "metrics.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("loss", ["mse", "classification"])
def test_two_cpu_processes_train_as_one_run(tmp_path, loss):
    run_dir = tmp_path / "run"
    result = run_cli(
        "colorlab.train",
        f"loss={loss}",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.precision=32-true",
        "trainer.max_epochs=2",
        "logger=csv",
        *TINY_RUN,
        *DDP_DATA,
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
        whole.fit_prior(
            datamodule.prepare_batch(raw)["ab"] for raw in datamodule.split_dataloader("train")
        )
        torch.testing.assert_close(module.loss_fn.prior, whole.prior)

    colorizer = load_colorizer(best)
    assert colorizer.colorize(torch.rand(30, 41).numpy()).size == (41, 30)
