"""Every bad config value is one line naming the key, the value and what is allowed, raised
before any work; resuming from a checkpoint that cannot continue this run is one line too."""

import pytest

from colorlab.errors import ColorlabError
from colorlab.train import train
from conftest import TINY, compose_train, run_cli

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
    ("loss.colorfulness_weight=-1", "loss.colorfulness_weight=-1 must be a number ≥ 0"),
]


@pytest.mark.parametrize(("override", "message"), BAD_VALUES, ids=[o for o, _ in BAD_VALUES])
def test_bad_value_is_one_line_before_any_work(tmp_path, override, message):
    run_dir = tmp_path / "run"
    cfg = compose_train(*TINY, "logger=none", override, run_dir=run_dir)
    with pytest.raises(ColorlabError) as error:
        train(cfg)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)
    assert not run_dir.exists()  # nothing written


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("loss.rebalance=2", "loss.rebalance=2 must be λ in [0, 1]"),
        ("loss.temperature=0", "loss.temperature=0 must be a number in (0, 10]"),
        ("loss.downsample=3", "loss.downsample=3 must be 1, 2, 4 or 8"),
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
