"""Shared plumbing of the Hydra entry points: where conf/ is, and one-line user errors."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.errors import HydraException, MissingConfigException
from omegaconf.errors import OmegaConfBaseException

from colorlab.errors import ColorlabError, RunInterrupted


def config_dir() -> str:
    """Absolute path of the configuration folder.

    An installed wheel carries it as ``colorlab/conf``; an editable checkout uses the
    repository's ``conf/``.
    """
    packaged = Path(__file__).resolve().parent / "conf"
    if packaged.is_dir():
        return str(packaged)
    checkout = Path(__file__).resolve().parents[2] / "conf"
    if checkout.is_dir():
        return str(checkout)
    raise ColorlabError(
        f"colorlab's configuration folder is missing (looked in {packaged} and {checkout})"
    )


def refuse_used_dir(folder: Path, outputs: tuple[str, ...], what: str, hint: str) -> None:
    """Raise a `ColorlabError` if ``folder`` already holds any of ``outputs`` (files or
    folders an earlier ``what`` wrote there): nothing another run made is overwritten."""
    held = [name for name in outputs if (folder / name).exists()]
    if held:
        raise ColorlabError(f"{folder} already holds {what} ({', '.join(held)}); {hint}")


def _causes(error: BaseException):
    while error is not None:
        yield error
        error = error.__cause__ or error.__context__


def _user_message(error: BaseException) -> str | None:
    """The one-line message for a user error anywhere in ``error``'s cause chain, else None."""
    for cause in _causes(error):
        if isinstance(cause, ColorlabError):
            return str(cause)
    for cause in _causes(error):
        if isinstance(cause, MissingConfigException) and cause.options:
            key, _, wrong = (cause.missing_cfg_file or "config/?").rpartition("/")
            return (
                f"{key}={wrong} does not exist; choose one of: {', '.join(sorted(cause.options))}"
            )
    if isinstance(error, (HydraException, OmegaConfBaseException)):
        # Hydra's own messages span lines (the failing call, its cause, the key): join them.
        return (
            " ".join(line.strip() for line in str(error).splitlines() if line.strip())
            or type(error).__name__
        )
    return None


def _exit_if_expected(error: BaseException) -> None:
    """Exit with one line for a user error (2) or an interruption (130 / 143); return for a
    programming error, which keeps its traceback."""
    if isinstance(error, KeyboardInterrupt):
        print("colorlab: interrupted", file=sys.stderr)
        sys.exit(130)
    if isinstance(error, RunInterrupted):
        print(f"colorlab: {error}", file=sys.stderr)
        sys.exit(error.exit_code)
    message = _user_message(error)
    if message is not None:
        print(f"colorlab: error: {message}", file=sys.stderr)
        sys.exit(2)


def one_line_errors(task: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Decorate a Hydra task function so that its user errors end the process as one line
    (before Hydra adds its own "Error executing job" line)."""

    @functools.wraps(task)
    def run(cfg: Any) -> Any:
        try:
            return task(cfg)
        except (Exception, KeyboardInterrupt) as error:
            _exit_if_expected(error)
            raise

    return run


def run_app(hydra_main: Callable[[], object]) -> None:
    """Run a ``@hydra.main`` function; print user errors as one line and exit with status 2,
    interruptions as one line with status 130 (SIGINT) or 143 (SIGTERM).

    Hydra is asked to let exceptions through (``HYDRA_FULL_ERROR``) so that this function,
    not Hydra, decides how they are shown. Programming errors keep their traceback.
    """
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        hydra_main()
    except (Exception, KeyboardInterrupt) as error:
        _exit_if_expected(error)
        raise
