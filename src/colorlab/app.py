"""Shared plumbing of the Hydra entry points: where conf/ is, and one-line user errors."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

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


def run_app(hydra_main: Callable[[], object]) -> None:
    """Run a ``@hydra.main`` function; print user errors as one line and exit with status 2,
    interruptions as one line with status 130 (SIGINT) or 143 (SIGTERM).

    Hydra is asked to let exceptions through (``HYDRA_FULL_ERROR``) so that this function,
    not Hydra, decides how they are shown. Programming errors keep their traceback.
    """
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        hydra_main()
    except KeyboardInterrupt:
        print("colorlab: interrupted", file=sys.stderr)
        sys.exit(130)
    except RunInterrupted as interrupted:
        print(f"colorlab: {interrupted}", file=sys.stderr)
        sys.exit(interrupted.exit_code)
    except Exception as error:  # noqa: BLE001 - sorted into user errors and bugs below
        message = _user_message(error)
        if message is None:
            raise
        print(f"colorlab: error: {message}", file=sys.stderr)
        sys.exit(2)
