"""Checkpoints are never lost: atomic writes, last.ckpt = the last epoch, and interrupted
runs (SIGTERM, Ctrl-C) that save, say so in one line, exit non-zero and resume."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from hydra import compose, initialize_config_dir

from colorlab.configs import config_dir
from colorlab.errors import ColorlabError
from colorlab.training.checkpoints import AtomicCheckpointIO, atomic_torch_save
from conftest import default_sigint, run_cli

TINY = [
    "data.image_size=32",
    "data.num_images=40",
    "data.batch_size=8",
    "data.num_workers=0",
    "trainer.accelerator=cpu",
    "~callbacks.model_summary",
    "~callbacks.progress_bar",
    "logger=csv",
]


@pytest.mark.slow
def test_last_checkpoint_is_the_last_epoch_even_without_improvement(tmp_path):
    # The ground truth's colourfulness never changes: only epoch 0 is ever "best".
    result = run_cli(
        "colorlab.train",
        *TINY,
        "trainer.max_epochs=3",
        "callbacks.model_checkpoint.monitor=val/colorfulness_target",
        "test_after_fit=false",
        "hydra.run.dir=run",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoints = tmp_path / "run" / "checkpoints"
    assert [p.name for p in checkpoints.glob("best-*.ckpt")] == ["best-000.ckpt"]
    assert torch.load(checkpoints / "last.ckpt", weights_only=False)["epoch"] == 2
    assert not list(checkpoints.glob(".*"))  # no temporary files left behind


def test_a_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    atomic_torch_save({"epoch": 1}, path)

    def write_half_then_fail(obj, file):
        file.write(b"half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", write_half_then_fail)
    with pytest.raises(ColorlabError, match=f"cannot write checkpoint {path}: No space left"):
        atomic_torch_save({"epoch": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=False) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_a_write_torch_reports_as_runtime_error_is_one_line_and_keeps_the_file(
    tmp_path, monkeypatch
):
    path = tmp_path / "last.ckpt"
    atomic_torch_save({"epoch": 1}, path)

    def torch_on_a_full_disk(obj, file):  # what torch.save raises there (torch 2.x)
        file.write(b"half a checkpoint")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    monkeypatch.setattr(torch, "save", torch_on_a_full_disk)
    with pytest.raises(ColorlabError) as raised:
        atomic_torch_save({"epoch": 2}, path)
    monkeypatch.undo()
    message = str(raised.value)
    assert message.startswith(f"cannot write checkpoint {path}: the write failed ([enforce fail")
    assert "MiB free there); free space or choose another run dir" in message
    assert torch.load(path, weights_only=False) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs (needs root and the right to mount, as in CI's container)."""
    folder = tmp_path / "small"
    folder.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the stubbed write above covers the conversion")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.slow
def test_a_full_disk_while_training_is_one_line_and_exit_2(small_disk, tmp_path):
    result = run_cli(
        "colorlab.train",
        *TINY,
        "logger=none",
        f"hydra.run.dir={small_disk / 'run'}",
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith(f"colorlab: error: cannot write checkpoint {small_disk / 'run'}")
    assert "the write failed (" in message and "Traceback" not in result.stderr
    checkpoints = small_disk / "run" / "checkpoints"
    assert not list(checkpoints.glob("*.ckpt")) and not list(checkpoints.glob(".*partial*"))


def test_background_writes_snapshot_the_weights_and_report_failures(tmp_path):
    io = AtomicCheckpointIO()
    weights = torch.zeros(1000)
    io.save_checkpoint({"w": weights}, tmp_path / "a.ckpt")
    weights += 1  # the next optimizer step, while the file may still be written
    io.save_checkpoint({"w": weights}, tmp_path / "b.ckpt")
    io.wait()
    assert torch.load(tmp_path / "a.ckpt")["w"].eq(0).all()
    assert torch.load(tmp_path / "b.ckpt")["w"].eq(1).all()
    io.save_checkpoint({"w": weights}, tmp_path / "c.ckpt")
    io.remove_checkpoint(tmp_path / "c.ckpt")  # waits for the write first
    assert not (tmp_path / "c.ckpt").exists()
    (tmp_path / "file").write_text("a file where a folder should be")
    io.save_checkpoint({"w": weights}, tmp_path / "file" / "d.ckpt")  # fails in the background
    with pytest.raises(ColorlabError, match="cannot write checkpoint .*file/d.ckpt"):
        io.teardown()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.ckpt", "b.ckpt", "file"]


def test_an_unwritable_checkpoint_folder_is_one_line(tmp_path):
    (tmp_path / "file").write_text("a file where a folder should be")
    with pytest.raises(ColorlabError, match="cannot write checkpoint .*file/last.ckpt"):
        atomic_torch_save({"epoch": 0}, tmp_path / "file" / "last.ckpt")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "code", "name"), [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "SIGINT")]
)
def test_an_interrupted_run_saves_says_so_exits_non_zero_and_resumes(tmp_path, signum, code, name):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    args = [
        sys.executable,
        "-m",
        "colorlab.train",
        *TINY,
        "trainer.max_epochs=200",
        "hydra.run.dir=run",
    ]
    with open(tmp_path / "out.txt", "w") as out, open(tmp_path / "err.txt", "w") as err:
        process = subprocess.Popen(
            args, cwd=tmp_path, env=env, stdout=out, stderr=err, preexec_fn=default_sigint
        )
        last = tmp_path / "run" / "checkpoints" / "last.ckpt"
        deadline = time.monotonic() + 120
        while not last.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
        assert last.exists(), (tmp_path / "err.txt").read_text()[-3000:]
        time.sleep(1.0)  # well into a later epoch
        process.send_signal(signum)
        returncode = process.wait(timeout=120)
    stderr = (tmp_path / "err.txt").read_text()
    assert returncode == code, stderr[-3000:]
    message = stderr.strip().splitlines()[-1]
    assert message.startswith(f"colorlab: interrupted by {name} in epoch ")
    assert message.endswith(f"resume with ckpt_path={last}")
    state = torch.load(last, weights_only=False)
    stopped_in = state["epoch"]
    # The signal lands in an epoch's batches (processed == epoch) or between its last batch
    # and its end-of-epoch hooks (processed == epoch + 1); Lightning resumes both.
    processed = state["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"]
    assert stopped_in >= 1 and processed in (stopped_in, stopped_in + 1)
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["status"] == "interrupted" and record["last_checkpoint"] == str(last)
    _assert_resumes(tmp_path, last, stopped_in)


def _assert_resumes(tmp_path, last, stopped_in):
    """Resuming from ``last`` with two epochs more to go ends at the epoch after ``stopped_in``."""
    resumed = run_cli(
        "colorlab.train",
        *TINY,
        f"trainer.max_epochs={stopped_in + 2}",
        f"ckpt_path={last}",
        "hydra.run.dir=resumed",
        cwd=tmp_path,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    final = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=False)
    assert final["epoch"] == stopped_in + 1


INTERRUPT_AT_EPOCH_END = """
import os, signal
import lightning as L

class InterruptAtEpochEnd(L.Callback):
    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch == 2:
            os.kill(os.getpid(), signal.SIGINT)
"""


@pytest.mark.slow
def test_an_interrupt_at_an_epochs_end_resumes_with_the_next_epoch(tmp_path):
    # Deterministic twin of the test above for its rarer timing: epoch 2 trained and validated,
    # its checkpoint hooks not yet run.
    (tmp_path / "interrupter.py").write_text(INTERRUPT_AT_EPOCH_END)
    interrupted = run_cli(
        "colorlab.train",
        *TINY,
        "trainer.max_epochs=200",
        "+callbacks.interrupt._target_=interrupter.InterruptAtEpochEnd",
        "hydra.run.dir=run",
        cwd=tmp_path,
    )
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert interrupted.returncode == 130, interrupted.stderr[-3000:]
    assert interrupted.stderr.strip().splitlines()[-1] == (
        f"colorlab: interrupted by SIGINT in epoch 2; resume with ckpt_path={last}"
    )
    assert torch.load(last, weights_only=False)["epoch"] == 2
    _assert_resumes(tmp_path, last, stopped_in=2)


def _snapshot(folder):
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_a_second_run_into_a_used_run_dir_is_refused_and_changes_nothing(tmp_path):
    first = run_cli(
        "colorlab.train", *TINY, "trainer.max_epochs=1", "hydra.run.dir=run", cwd=tmp_path
    )
    assert first.returncode == 0, first.stderr[-3000:]
    ours = _snapshot(tmp_path / "run")  # Hydra's .hydra/ record and train.log included
    assert any(".hydra" in p.parts for p in ours) and any(p.name == "train.log" for p in ours)
    second = run_cli(
        "colorlab.train", *TINY, "trainer.max_epochs=1", "seed=7", "hydra.run.dir=run", cwd=tmp_path
    )
    assert second.returncode == 2
    message = second.stderr.strip().splitlines()[-1]
    run = tmp_path / "run"
    assert message == (
        f"colorlab: error: {run} already holds a training run (config.yaml, run.json, metrics.jsonl, "
        f"checkpoints, samples, "
        f"csv); choose another hydra.run.dir, or resume that run with ckpt_path={run}/checkpoints/last.ckpt"
    )
    assert _snapshot(tmp_path / "run") == ours, "a refused run must change nothing"
    # resuming that run in place is allowed
    resumed = run_cli(
        "colorlab.train",
        *TINY,
        "trainer.max_epochs=2",
        "ckpt_path=run/checkpoints/last.ckpt",
        "hydra.run.dir=run",
        cwd=tmp_path,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (
        torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)["epoch"] == 1
    )


@pytest.mark.slow
def test_a_sweep_into_a_used_sweep_folder_is_refused_before_any_job(tmp_path):
    common = [*TINY, "trainer.max_epochs=1", "logger=none", "hydra.sweep.dir=sweep"]
    first = run_cli("colorlab.train", "-m", *common, "seed=1,2", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    ours = _snapshot(tmp_path / "sweep")
    second = run_cli("colorlab.train", "-m", *common, "seed=3,4", cwd=tmp_path)
    assert second.returncode == 2
    assert second.stderr.strip().splitlines()[-1] == (
        f"colorlab: error: {tmp_path / 'sweep'} already holds a sweep (multirun.yaml); "
        "choose another hydra.sweep.dir"
    )
    assert _snapshot(tmp_path / "sweep") == ours


@pytest.mark.slow
def test_an_evaluation_into_a_used_folder_changes_nothing(tmp_path, checkpoints):
    args = [f"ckpt={checkpoints['baseline']}", "data.num_images=40", "data.num_workers=0"]
    args += ["data.image_size=32"]
    args += ["num_images=2", "device=cpu", "hydra.run.dir=evaluation"]
    first = run_cli("colorlab.evaluate", *args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    ours = _snapshot(tmp_path / "evaluation")
    second = run_cli("colorlab.evaluate", *args, "num_images=3", cwd=tmp_path)
    assert second.returncode == 2 and "already holds an evaluation" in second.stderr
    assert _snapshot(tmp_path / "evaluation") == ours


def test_default_run_dirs_of_runs_started_together_differ(tmp_path):
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        dirs = {compose("train", return_hydra_config=True).hydra.run.dir for _ in range(3)}
        evaluations = {
            compose("evaluate", overrides=["ckpt=x"], return_hydra_config=True).hydra.run.dir
            for _ in range(3)
        }
    assert len(dirs) == 3 and len(evaluations) == 3


@pytest.mark.slow
def test_evaluate_refuses_a_folder_holding_an_evaluation(checkpoints, tmp_path):
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "metrics.json").write_text("{}")
    result = run_cli(
        "colorlab.evaluate",
        f"ckpt={checkpoints['baseline']}",
        "hydra.run.dir=eval",
        "data.num_images=20",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"colorlab: error: {tmp_path / 'eval'} already holds an evaluation (metrics.json); "
        "choose another hydra.run.dir"
    )
    assert (tmp_path / "eval" / "metrics.json").read_text() == "{}"
