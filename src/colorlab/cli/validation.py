"""The one validation layer for config values: types, ranges and choices, checked before any
work starts, each failure a `ColorlabError` naming the key, the value and what is allowed."""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from omegaconf import DictConfig, ListConfig, OmegaConf

from colorlab.data.cache import CACHE_MODES
from colorlab.errors import ColorlabError, OptionError
from colorlab.perceptual_metrics import LPIPS_NETS

_MISSING = object()


@dataclass(frozen=True)
class Rule:
    """``key`` must satisfy ``check``; ``allowed`` says what that means, for the message."""

    key: str
    check: Callable[[object], bool]
    allowed: str
    optional: bool = False  # None / absent is fine


def _integer(low: int | None = None, high: int | None = None) -> Callable[[object], bool]:
    def check(value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, int):
            return False
        return (low is None or value >= low) and (high is None or value <= high)

    return check


def _point_counts(value: object) -> bool:
    return isinstance(value, (list, ListConfig)) and all(
        isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= 10_000 for n in value
    )


_POINT_COUNTS = "a list of hint point counts, e.g. [0,1,2,5,10,20,50,100]"


def _number(low: float, high: float | None = None, low_open: bool = True):
    def check(value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        above = value > low if low_open else value >= low
        return above and (high is None or value <= high)

    return check


def _boolean(value: object) -> bool:
    return isinstance(value, bool)


def _bool_or_auto(value: object) -> bool:
    return isinstance(value, bool) or value == "auto"


_TIMEDELTA_KEYS = {"days", "hours", "minutes", "seconds"}


def _duration(value: object) -> bool:
    """Lightning's ``max_time``: ``DD:HH:MM:SS`` or a dict of timedelta keys."""
    if isinstance(value, str):
        return re.fullmatch(r"\d+:\d{1,2}:\d{1,2}:\d{1,2}", value) is not None
    if isinstance(value, dict | DictConfig):
        return bool(value) and set(value) <= _TIMEDELTA_KEYS
    return False


#: Every entry point that opens a checkpoint: ``trust_checkpoint=true`` unpickles it in full.
TRUST_RULES = (Rule("trust_checkpoint", _boolean, "true or false"),)

#: Keys common to train, evaluate and colorize's data section.
DATA_RULES = (
    Rule("data.image_size", _integer(8, 4096), "an integer from 8 to 4096 (pixels)"),
    Rule("data.batch_size", _integer(1, 65536), "an integer ≥ 1"),
    Rule("data.num_workers", _integer(0, 256), "an integer ≥ 0"),
    Rule("data.flip", _boolean, "true or false"),
    Rule("data.pin_memory", _boolean, "true or false"),
    Rule("data.cache", lambda v: v in CACHE_MODES, "one of " + ", ".join(CACHE_MODES)),
    Rule("data.num_images", _integer(3, 10_000_000), "an integer from 3 to 10,000,000", True),
    Rule("data.limit", _integer(1), "a positive integer or null", True),
    Rule("data.min_colorfulness", _number(0, low_open=False), "a number ≥ 0", True),
    Rule("data.dusk_fraction", _number(0, 1, low_open=False), "a number in [0, 1]", True),
    Rule("data.prior_images", _integer(1), "a positive integer (photos)", True),
)

TRAIN_RULES = (
    Rule("seed", _integer(0, 2**32 - 1), "an integer from 0 to 4294967295"),
    Rule("channels_last", _bool_or_auto, "auto, true or false"),
    Rule("test_after_fit", _boolean, "true or false"),
    Rule("optimizer.lr", _number(0, 10), "a number in (0, 10]"),
    Rule("optimizer.weight_decay", _number(0, low_open=False), "a number ≥ 0", True),
    Rule("optimizer.backbone_lr_scale", _number(0, 10), "a number in (0, 10]", True),
    Rule("trainer.max_epochs", _integer(1), "an integer ≥ 1"),
    Rule("trainer.log_every_n_steps", _integer(1), "an integer ≥ 1"),
    Rule("trainer.check_val_every_n_epoch", _integer(1), "an integer ≥ 1"),
    Rule(
        "trainer.max_time",
        _duration,
        "DD:HH:MM:SS (e.g. 00:12:00:00 for 12 hours), {hours: 12} or null",
        True,
    ),
    Rule("callbacks.samples.num_samples", _integer(0, 256), "an integer from 0 to 256", True),
    Rule("callbacks.samples.table_size", _integer(0, 1024), "an integer from 0 to 1024", True),
    Rule("callbacks.samples.every_n_epochs", _integer(1), "an integer ≥ 1", True),
    *DATA_RULES,
    *TRUST_RULES,
)


def _temporal_rules(prefix: str) -> tuple[Rule, ...]:
    """Type rules of a video's temporal options under ``prefix`` (their ranges and choices
    are `colorlab.inference.temporal.TemporalSettings`'s to check)."""
    return (
        Rule(f"{prefix}.temporal_smoothing", _number(0, 1, low_open=False), "a number in [0, 1)"),
        Rule(f"{prefix}.flow.weight", _number(0, 1, low_open=False), "a number in [0, 1)"),
        Rule(f"{prefix}.flow.min_trusted", _number(0, 1, low_open=False), "a fraction in [0, 1]"),
        Rule(f"{prefix}.flow.max_l_error", _number(0), "a number > 0 (L units)"),
    )


EVALUATE_RULES = (
    Rule("seed", _integer(0, 2**32 - 1), "an integer from 0 to 4294967295"),
    Rule("num_images", _integer(1, 256), "an integer from 1 to 256"),
    Rule("temperature", _number(0, 10), "a number in (0, 10] or null", True),
    Rule("fid", _boolean, "true or false"),
    Rule("lpips", _boolean, "true or false"),
    Rule("lpips_net", lambda v: v in LPIPS_NETS, "one of " + ", ".join(LPIPS_NETS)),
    Rule("evaluate.hint_points", _point_counts, _POINT_COUNTS, True),
    Rule("evaluate.hint_square", _integer(1, 64), "an integer from 1 to 64 (pixels) or null", True),
    *_temporal_rules("evaluate"),
    Rule("evaluate.batch_size", _integer(1, 4096), "an integer ≥ 1"),
    *DATA_RULES,
    *TRUST_RULES,
)

REPORT_RULES = (
    Rule("num_images", _integer(1, 256), "an integer from 1 to 256"),
    Rule("hint_points", _point_counts, _POINT_COUNTS, True),
    Rule("grid_cell", _integer(32, 2048), "an integer from 32 to 2048 (pixels) or null", True),
    Rule("data.image_size", _integer(8, 4096), "an integer from 8 to 4096 (pixels) or null", True),
    Rule("data.batch_size", _integer(1, 65536), "an integer ≥ 1"),
    Rule("data.num_workers", _integer(0, 256), "an integer ≥ 0"),
    *TRUST_RULES,
)

PREPARE_RULES = (
    Rule(
        "prepare.image_size",
        _integer(8, 16384),
        "an integer from 8 to 16384 (pixels) or null",
        True,
    ),
    Rule("prepare.limit", _integer(1), "a positive integer or null", True),
    Rule("prepare.min_colorfulness", _number(0, low_open=False), "a number ≥ 0"),
    Rule("prepare.workers", _integer(1, 1024), "an integer ≥ 1"),
    Rule("seed", _integer(0, 2**32 - 1), "an integer from 0 to 4294967295"),
)

COLORIZE_RULES = (
    *_temporal_rules("colorize"),
    Rule("colorize.batch_size", _integer(1, 4096), "an integer ≥ 1"),
    Rule("colorize.size", _integer(8, 4096), "an integer from 8 to 4096 or null", True),
    Rule("colorize.temperature", _number(0, 10), "a number in (0, 10] or null", True),
    Rule("colorize.max_megapixels", _number(0), "a number > 0 (megapixels)"),
    Rule("colorize.hint_size", _integer(1, 64), "an integer from 1 to 64 (model pixels)"),
    *TRUST_RULES,
)

DEMO_RULES = (
    Rule("demo.port", _integer(1, 65535), "a port number from 1 to 65535"),
    Rule("demo.share", _boolean, "true or false"),
    Rule("demo.models_kept", _integer(1, 64), "an integer from 1 to 64 (models in memory)"),
    Rule("demo.queue_size", _integer(1, 10_000), "an integer ≥ 1 (requests waiting)"),
    Rule("colorize.max_megapixels", _number(0), "a number > 0 (megapixels)"),
    *TRUST_RULES,
)

EXPORT_RULES = (
    Rule("export.opset", _integer(17, 1000), "an integer ≥ 17"),
    Rule("export.temperature", _number(0, 10), "a number in (0, 10] or null", True),
    *TRUST_RULES,
)

BENCH_RULES = (
    Rule(
        "bench.rows",
        lambda v: isinstance(v, Sequence) and len(v) > 0,
        "a non-empty list of rows, e.g. [model,train]",
    ),
    Rule("bench.warmup", _integer(0, 100_000), "an integer ≥ 0"),
    Rule("bench.steps", _integer(1, 1_000_000), "an integer ≥ 1"),
    Rule("bench.epochs", _integer(1, 100_000), "an integer ≥ 1"),
    Rule("bench.colorize_images", _integer(1, 100_000), "an integer ≥ 1"),
    Rule("bench.colorize_size", _integer(8, 16384), "an integer from 8 to 16384 (pixels)"),
    Rule("bench.colorize_batch", _integer(1, 4096), "an integer ≥ 1"),
    Rule("bench.megapixels", _number(0, 1000), "a number in (0, 1000]"),
    Rule("bench.video_frames", _integer(2, 100_000), "an integer ≥ 2"),
    Rule("bench.data_images", _integer(3, 10_000_000), "an integer ≥ 3"),
    Rule("bench.data_photo_size", _integer(8, 16384), "an integer from 8 to 16384 (pixels)"),
    Rule("bench.data_epochs", _integer(1, 1000), "an integer ≥ 1"),
    Rule(
        "bench.video_size",
        lambda v: isinstance(v, Sequence) and len(v) == 2 and all(_integer(16, 8192)(x) for x in v),
        "[width, height], each from 16 to 8192 pixels",
    ),
)


def validate(cfg: DictConfig, rules: tuple[Rule, ...]) -> None:
    """Check that no value is NaN or infinite, then every rule whose key the config has;
    raise on the first value that breaks one."""
    check_finite(OmegaConf.to_container(cfg, resolve=False))
    for rule in rules:
        value = OmegaConf.select(cfg, rule.key, default=_MISSING, throw_on_resolution_failure=False)
        if value is _MISSING or (value is None and rule.optional):
            continue
        if not rule.check(value):
            raise ColorlabError(f"{rule.key}={value!r} is not allowed; use {rule.allowed}")


def check_finite(config: object, key: str = "") -> None:
    """A `ColorlabError` naming the first key (at any depth) whose value is NaN or ±infinity:
    no option of colorlab means anything with them (a NaN weight trains a NaN network)."""
    if isinstance(config, float) and not math.isfinite(config):
        raise ColorlabError(f"{key}={config!r} is not allowed; use a finite number")
    if isinstance(config, dict):
        for name, value in config.items():
            check_finite(value, f"{key}.{name}" if key else str(name))
    elif isinstance(config, list):
        for index, value in enumerate(config):
            check_finite(value, f"{key}[{index}]")


def check_metric_names(cfg: DictConfig, logged: list[str]) -> None:
    """Every metric a config refers to (a callback's ``monitor``, ``scheduler.monitor``, a
    search's ``optimized_metric``) must be one that training logs (``logged``): checked
    before any work, not after the first epoch."""
    keys = [f"callbacks.{name}.monitor" for name in (cfg.get("callbacks") or {})]
    for key in ["optimized_metric", "scheduler.monitor", *keys]:
        value = OmegaConf.select(cfg, key, default=None, throw_on_resolution_failure=False)
        if value is not None and value not in logged:
            raise ColorlabError(
                f"{key}={value!r} is not a metric training logs; use one of " + ", ".join(logged)
            )


@contextlib.contextmanager
def named(prefix: str, top_level: tuple[str, ...] = ()) -> Iterator[None]:
    """Name the `OptionError`s of the block as config keys: ``prefix.NAME``, except the names
    in ``top_level``, which are keys of their own (``input``, ``output``)."""
    try:
        yield
    except OptionError as error:
        if error.name in top_level:
            raise
        raise error.within(prefix) from None
