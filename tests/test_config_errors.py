"""Every bad config value is one line naming the key, the value and what is allowed, raised
before any work; resuming from a checkpoint that cannot continue this run is one line too."""

import os

import pytest

from colorlab.cli.runner import exit_if_expected
from colorlab.errors import ColorlabError, RunInterrupted
from colorlab.inference import load_colorizer
from colorlab.train import train
from conftest import TINY, colourful, compose_train, run_cli

TINY_CLI = [
    "data.image_size=32",
    "data.num_images=24",
    "data.batch_size=8",
    "data.num_workers=0",
    "trainer.accelerator=cpu",
    "~callbacks.model_summary",
]

BAD_VALUES = [
    ("optimizer.lr=abc", "optimizer.lr='abc' is not allowed; use a number in (0, 10]"),
    ("optimizer.lr=-1", "optimizer.lr=-1 is not allowed; use a number in (0, 10]"),
    ("seed=abc", "seed='abc' is not allowed; use an integer"),
    ("data.num_images=1e9", "data.num_images=1000000000.0 is not allowed; use an integer from 3"),
    ("data.image_size=abc", "data.image_size='abc' is not allowed; use an integer from 8 to 4096"),
    ("data.image_size=12", "data.image_size=12 is not allowed for this model; use a multiple of 8"),
    ("channels_last=maybe", "channels_last='maybe' is not allowed; use auto, true or false"),
    ("data.flip=maybe", "data.flip='maybe' is not allowed; use true or false"),
    ("data.batch_size=0", "data.batch_size=0 is not allowed; use an integer ≥ 1"),
    ("trainer.max_epochs=0", "trainer.max_epochs=0 is not allowed; use an integer ≥ 1"),
    ("loss.kind=mae", "loss.kind='mae' is not allowed; choose one of: mse, l1, huber"),
    ("loss.colorfulness_weight=-1", "loss.colorfulness_weight=-1 is not allowed; use a number ≥ 0"),
    ("trainer.max_time=soon", "trainer.max_time='soon' is not allowed; use DD:HH:MM:SS"),
    (
        "+data.foo=1",
        "data.foo=1 is not an option of colorlab.data.SyntheticDataModule; its options",
    ),
    (
        "callbacks.model_checkpoint.monitor=val/nope",
        "callbacks.model_checkpoint.monitor='val/nope' is not a metric training logs; use one "
        "of train/loss, train/loss_mse,",
    ),
    (
        "+optimized_metric=val/psnr_",
        "optimized_metric='val/psnr_' is not a metric training logs; use one of train/loss,",
    ),
    (
        "scheduler=plateau scheduler.monitor=psnr",
        "scheduler.monitor='psnr' is not a metric training logs; use one of train/loss,",
    ),
]


@pytest.mark.parametrize(("override", "message"), BAD_VALUES, ids=[o for o, _ in BAD_VALUES])
def test_bad_value_is_one_line_before_any_work(tmp_path, override, message):
    run_dir = tmp_path / "run"
    cfg = compose_train(*TINY, "logger=none", *override.split(), run_dir=run_dir)
    with pytest.raises(ColorlabError) as error:
        train(cfg)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)
    assert not run_dir.exists()  # nothing written


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("loss.rebalance=2", "loss.rebalance=2 is not allowed; use λ in [0, 1]"),
        ("loss.temperature=0", "loss.temperature=0 is not allowed; use a number in (0, 10]"),
        ("loss.downsample=3", "loss.downsample=3 is not allowed; use 1, 2, 4 or 8"),
        ("loss.downsample=16", "loss.downsample=16 is not allowed; use 1, 2, 4 or 8"),
        ("loss.downsample=64", "loss.downsample=64 is not allowed; use 1, 2, 4 or 8"),  # 32 px
        ("loss.prior_sigma=-1", "loss.prior_sigma=-1 is not allowed; use a positive number"),
    ],
)
def test_bad_classification_value_is_one_line(tmp_path, override, message):
    cfg = compose_train(
        *TINY, "logger=none", "loss=classification", override, run_dir=tmp_path / "run"
    )
    with pytest.raises(ColorlabError, match="^" + message.replace("[", r"\[").replace("(", r"\(")):
        train(cfg)


def test_the_command_line_prints_it_as_one_line_with_exit_status_2(tmp_path):
    result = run_cli("colorlab.train", "optimizer.lr=abc", "hydra.run.dir=run", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "colorlab: error: optimizer.lr='abc' is not allowed; use a number in (0, 10]"
    ]
    assert not (tmp_path / "run" / "config.yaml").exists()


def test_resuming_with_another_optimizer_or_from_a_broken_checkpoint_is_one_line(tmp_path):
    first = compose_train(
        *TINY, "logger=none", "data.num_images=24", "test_after_fit=false", run_dir=tmp_path / "a"
    )
    last = tmp_path / "a" / "checkpoints" / "last.ckpt"
    train(first)
    before = last.read_bytes()
    other = compose_train(
        *TINY,
        "logger=none",
        "data.num_images=24",
        "optimizer=adam",
        f"ckpt_path={last}",
        run_dir=tmp_path / "b",
    )
    with pytest.raises(ColorlabError) as error:
        train(other)
    assert str(error.value).startswith(
        f"ckpt_path={last} was trained with optimizer torch.optim.RMSprop, this run has torch.optim.Adam"
    )
    assert not (tmp_path / "b").exists() and last.read_bytes() == before
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(before[: len(before) // 2])
    broken = compose_train(*TINY, "logger=none", f"ckpt_path={truncated}", run_dir=tmp_path / "c")
    with pytest.raises(ColorlabError, match=f"^checkpoint {truncated} cannot be read"):
        train(broken)


@pytest.mark.slow
def test_train_log_holds_the_console_and_errors(tmp_path):
    ok = run_cli(
        "colorlab.train",
        *TINY_CLI,
        "trainer.max_epochs=1",
        "logger=csv",
        "hydra.run.dir=run",
        cwd=tmp_path,
    )
    assert ok.returncode == 0, ok.stderr[-3000:]
    log = (tmp_path / "run" / "train.log").read_text()
    assert "colorlab: run dir" in log  # the closing summary
    assert "Trainable params" in log  # Lightning's model summary
    bad = run_cli("colorlab.train", "seed=abc", "hydra.run.dir=bad", cwd=tmp_path)
    assert bad.returncode == 2
    assert (
        "colorlab: error: seed='abc' is not allowed" in (tmp_path / "bad" / "train.log").read_text()
    )


@pytest.mark.slow
def test_a_file_where_the_run_dir_should_be_is_one_line(tmp_path):
    (tmp_path / "taken").write_text("a file")
    result = run_cli("colorlab.train", "hydra.run.dir=taken/run", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1].startswith("colorlab: error: ")
    assert "taken" in result.stderr.strip().splitlines()[-1]
    assert (tmp_path / "taken").read_text() == "a file"


def test_wandb_online_without_a_key_fails_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "online")
    result = run_cli("colorlab.train", *TINY_CLI, "hydra.run.dir=run", cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "colorlab: error: WANDB_MODE=online but no W&B API key is configured (WANDB_API_KEY or "
        "`wandb login`); log in, or unset WANDB_MODE to log offline"
    )


@pytest.mark.slow
def test_file_names_that_are_not_utf8_are_logged_escaped(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    for i in range(6):
        colourful(seed=i).save(root / f"p{i}.png")
    (root / os.fsdecode(b"bad-\xff.jpg")).write_bytes(b"not a picture")
    result = run_cli(
        "colorlab.train",
        *(a for a in TINY_CLI if not a.startswith("data.num_images")),
        "data=folder",
        f"data.root={root}",
        "data.limit=null",
        "trainer.max_epochs=1",
        "data.val_fraction=0.2",
        "data.test_fraction=0.2",
        "logger=none",
        "hydra.run.dir=run",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert "Logging error" not in output and "UnicodeEncodeError" not in output
    assert "bad-\\udcff.jpg" in output or "bad-\\xff.jpg" in output
    assert "Logging error" not in (tmp_path / "run" / "train.log").read_text(errors="replace")


@pytest.mark.slow
def test_evaluate_with_no_rows_is_one_line_before_writing(checkpoints, tmp_path):
    result = run_cli(
        "colorlab.evaluate",
        f"ckpt={checkpoints['baseline']}",
        "num_images=0",
        "hydra.run.dir=eval",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "colorlab: error: num_images=0 is not allowed; use an integer from 1 to 256"
    )
    assert not (tmp_path / "eval" / "metrics.json").exists()


def test_resuming_from_a_foreign_checkpoint_is_one_line(tmp_path):
    import torch

    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "epoch": 3}, foreign)
    cfg = compose_train(*TINY, "logger=none", f"ckpt_path={foreign}", run_dir=tmp_path / "run")
    with pytest.raises(ColorlabError, match=f"^{foreign} is not a colorlab checkpoint"):
        train(cfg)
    assert not (tmp_path / "run").exists()


def test_a_folder_given_as_a_checkpoint_is_named_as_a_folder(checkpoints, tmp_path):
    folder = checkpoints["baseline"].parent
    with pytest.raises(ColorlabError, match=f"^checkpoint {folder} is a folder; give a .ckpt file"):
        load_colorizer(folder)
    cfg = compose_train(*TINY, "logger=none", f"ckpt_path={folder}", run_dir=tmp_path / "run")
    with pytest.raises(ColorlabError, match=f"^ckpt_path={folder} is a folder; give the .ckpt"):
        train(cfg)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("override", "bad"),
    [
        # a shell splits the unquoted path at its space: Hydra sees "run/best.ckpt" alone
        (["ckpt=/tmp/my", "run/best.ckpt"], "run/best.ckpt"),
        (["ckpt=/tmp/été/best.ckpt"], "ckpt=/tmp/été/best.ckpt"),
        (["ckpt=/tmp/run (2)/best.ckpt"], "ckpt=/tmp/run (2)/best.ckpt"),
    ],
    ids=["space", "accent", "brackets"],
)
def test_an_unquoted_path_is_one_line_that_shows_how_to_quote_it(tmp_path, override, bad):
    result = run_cli("colorlab.evaluate", *override, "hydra.run.dir=eval", cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"colorlab: error: cannot parse the override {bad!r} (")
    assert line.endswith("""'ckpt="/my runs/été (2)/best.ckpt"'""")
    assert not (tmp_path / "eval").exists()


@pytest.mark.slow
def test_the_quoted_form_the_hint_shows_reaches_the_checkpoint(checkpoints, tmp_path):
    odd = tmp_path / "my runs" / "été (2)"
    odd.mkdir(parents=True)
    (odd / "best.ckpt").write_bytes(checkpoints["baseline"].read_bytes())
    colourful().save(tmp_path / "photo.png")
    result = run_cli(
        "colorlab.colorize",
        f'ckpt="{odd / "best.ckpt"}"',
        f"input={tmp_path / 'photo.png'}",
        "output=out",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "out" / "photo.png").is_file()


@pytest.mark.parametrize("rank", ["0", "1"])
def test_an_interruption_is_said_once_by_rank_zero(monkeypatch, capsys, rank):
    for name in ("RANK", "SLURM_PROCID", "NODE_RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOCAL_RANK", rank)  # as Lightning's DDP launcher sets it per process
    for error, code in (
        (RunInterrupted("SIGTERM: saved last.ckpt", 143), 143),
        (KeyboardInterrupt(), 130),
    ):
        with pytest.raises(SystemExit) as exit_:
            exit_if_expected(error)
        assert exit_.value.code == code
    said = capsys.readouterr().err.strip().splitlines()
    assert said == (
        [] if rank == "1" else ["colorlab: SIGTERM: saved last.ckpt", "colorlab: interrupted"]
    )
