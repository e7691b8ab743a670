"""The entry points' runner: where conf/ is, one-line user errors and exit codes, the copy of
the console in train.log, and refusing folders that hold another run."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from colorlab.errors import ColorlabError, OptionError, RunInterrupted
from colorlab.training.distributed import launched_as_rank_zero

# ``${colorlab.add:A,B}`` = A + B (integers), e.g. the trial folders of a continued search.
OmegaConf.register_new_resolver(
    "colorlab.add", lambda *numbers: sum(int(n) for n in numbers), replace=True
)


#: Configs that the Hydra plugins of ``pip install 'colorlab[sweep]'`` provide.
SWEEP_PLUGIN_CONFIGS = (
    "hydra/sweeper/optuna",
    "hydra/sweeper/sampler/tpe",
    "hydra/launcher/submitit_local",
    "hydra/launcher/submitit_slurm",
)


def refuse_used_dir(folder: Path, outputs: tuple[str, ...], what: str, hint: str) -> None:
    """Raise a `ColorlabError` if ``folder`` already holds any of ``outputs`` (files or
    folders an earlier ``what`` wrote there): nothing another run made is overwritten."""
    held = [name for name in outputs if (folder / name).exists()]
    if held:
        raise ColorlabError(f"{folder} already holds {what} ({', '.join(held)}); {hint}")


def _causes(error: BaseException) -> Iterator[BaseException]:
    cause: BaseException | None = error
    while cause is not None:
        yield cause
        cause = cause.__cause__ or cause.__context__


def _user_message(error: BaseException) -> str | None:
    """The one-line message for a user error anywhere in ``error``'s cause chain, else None."""
    for cause in _causes(error):
        if isinstance(cause, (ColorlabError, OptionError)):
            return str(cause)
    for cause in _causes(error):
        if isinstance(cause, MissingConfigException):
            missing = cause.missing_cfg_file or "config/?"
            key, _, wrong = missing.rpartition("/")
            if missing in SWEEP_PLUGIN_CONFIGS:
                return (
                    f"{key}={wrong} needs a Hydra plugin that is not installed; "
                    "pip install 'colorlab[sweep]'"
                )
            if cause.options:
                options = ", ".join(sorted(cause.options))
                return f"{key}={wrong} does not exist; choose one of: {options}"
    for cause in _causes(error):
        if isinstance(cause, OverrideParseException):
            return _override_message(cause)
    for cause in _causes(error):
        if isinstance(cause, RuntimeError) and 'Could not detect "srun"' in str(cause):
            return "hydra/launcher=slurm submits SLURM jobs, and this machine has no SLURM (srun)"
    for cause in _causes(error):
        if isinstance(cause, OSError) and cause.filename and cause.strerror:
            # a path that cannot be written or read: no space, no permission, not a folder
            return f"{cause.filename}: {cause.strerror}"
    if isinstance(error, (HydraException, OmegaConfBaseException)):
        # Hydra's own messages span lines (the failing call, its cause, the key): join them.
        return (
            " ".join(line.strip() for line in str(error).splitlines() if line.strip())
            or type(error).__name__
        )
    return None


#: How a value with spaces, accents or brackets is written on the command line.
QUOTING_HINT = (
    "quote a value that holds spaces, accents or brackets (the override in single quotes, "
    """the value in double): 'ckpt="/my runs/été (2)/best.ckpt"'"""
)


def _override_message(error: OverrideParseException) -> str:
    """Hydra's grammar error for one override, with how to quote a path (the usual cause: a
    shell splits an unquoted path with a space into two overrides)."""
    lines = [line.strip() for line in error.message.splitlines() if line.strip()]
    reason = next((line for line in lines if not line.startswith(("See https", "^"))), "")
    if reason.startswith("LexerNoViableAltException"):
        reason = "a character the override grammar does not allow"
    return f"cannot parse the override {error.override!r} ({reason}); {QUOTING_HINT}"


def one_line_message(error: BaseException) -> str:
    """``error`` as one line: a user error's own message, else its type and first line."""
    message = _user_message(error)
    if message is not None:
        return message
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    first = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def exit_if_expected(error: BaseException) -> None:
    """Exit with one line for a user error (2) or an interruption (130 / 143); return for a
    programming error, which keeps its traceback."""
    # An interruption reaches every DDP rank at once: rank 0 alone says so.
    if isinstance(error, KeyboardInterrupt):
        if launched_as_rank_zero():
            print("colorlab: interrupted", file=sys.stderr)
        sys.exit(130)
    if isinstance(error, RunInterrupted):
        if launched_as_rank_zero():
            print(f"colorlab: {error}", file=sys.stderr)
        sys.exit(error.exit_code)
    message = _user_message(error)
    if message is not None:
        print(f"colorlab: error: {message}", file=sys.stderr)
        sys.exit(2)


def one_line_errors(task: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Decorate a Hydra task function so that its user errors end the process as one line
    (before Hydra adds its own "Error executing job" line). Where the config names a
    ``console_log`` file, all that the task prints, that line included, is copied there
    (by rank 0 of a distributed run; the other ranks print to their own consoles)."""

    @functools.wraps(task)
    def run(cfg: Any) -> Any:
        log = cfg.get("console_log") if hasattr(cfg, "get") and launched_as_rank_zero() else None
        with copy_console(Path(log)) if log else contextlib.nullcontext():
            try:
                return task(cfg)
            except (Exception, KeyboardInterrupt) as error:
                exit_if_expected(error)
                raise

    return run


_CURSOR_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-HJKSTfhl]")
_STYLE = re.compile(r"\x1b\[[0-9;]*m")


class _Tee:
    """A text stream that also appends what is written to a log file, without terminal
    styles and without live redraws (progress bars repaint with cursor controls)."""

    def __init__(self, stream: Any, log: Any) -> None:
        self._stream, self._log = stream, log

    def write(self, text: str) -> int:
        written = self._stream.write(text)
        if not _CURSOR_CONTROL.search(text):
            self._log.write(_STYLE.sub("", text))
            self._log.flush()
        return written

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, flush, ...
        return getattr(self._stream, name)


@contextlib.contextmanager
def copy_console(path: Path):
    """Copy sys.stdout and sys.stderr into ``path`` (appending) while the block runs."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        log = open(path, "a", encoding="utf-8", errors="backslashreplace")  # noqa: SIM115
    except OSError as error:
        raise ColorlabError(f"cannot write {path}: {error.strerror or error}") from error
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Tee(stdout, log), _Tee(stderr, log)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = stdout, stderr
        log.close()


def run_app(hydra_main: Callable[[], object]) -> None:
    """Run a ``@hydra.main`` function; print user errors as one line and exit with status 2,
    interruptions as one line with status 130 (SIGINT) or 143 (SIGTERM).

    Hydra is asked to let exceptions through (``HYDRA_FULL_ERROR``) so that this function,
    not Hydra, decides how they are shown. Programming errors keep their traceback.
    """
    os.environ["HYDRA_FULL_ERROR"] = "1"
    for stream in (sys.stdout, sys.stderr):  # file names that are not UTF-8 print escaped
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        hydra_main()
    except (Exception, KeyboardInterrupt) as error:
        exit_if_expected(error)
        raise
