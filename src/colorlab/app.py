"""Shared plumbing of the Hydra entry points: where conf/ is, and one-line user errors."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from hydra.errors import HydraException, MissingConfigException
from omegaconf.errors import OmegaConfBaseException

from colorlab.errors import ColorlabError


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
    raise ColorlabError(f"colorlab's configuration folder is missing (looked in {packaged} and {checkout})")


def _user_message(error: BaseException) -> str | None:
    """The one-line message for a user error anywhere in ``error``'s cause chain, else None."""
    seen = error
    while seen is not None:
        if isinstance(seen, ColorlabError):
            return str(seen)
        if isinstance(seen, MissingConfigException) and seen.options:
            group = (seen.missing_cfg_file or "").rsplit("/", 1)
            key = group[0] if len(group) == 2 else "config"
            wrong = group[-1]
            return f"{key}={wrong} does not exist; choose one of: {', '.join(sorted(seen.options))}"
        if isinstance(seen, (HydraException, OmegaConfBaseException)):
            # Hydra's own messages can span lines (hints, search paths): keep the first.
            first = str(seen).strip().splitlines()
            return first[0] if first else type(seen).__name__
        seen = seen.__cause__
    return None


def run_app(hydra_main: Callable[[], object]) -> None:
    """Run a ``@hydra.main`` function; print user errors as one line and exit with status 2.

    Hydra is asked to let exceptions through (``HYDRA_FULL_ERROR``) so that this function,
    not Hydra, decides how they are shown. Programming errors keep their traceback.
    """
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        hydra_main()
    except KeyboardInterrupt:
        print("colorlab: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as error:  # noqa: BLE001 - sorted into user errors and bugs below
        message = _user_message(error)
        if message is None:
            raise
        print(f"colorlab: error: {message}", file=sys.stderr)
        sys.exit(2)
