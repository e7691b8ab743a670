"""User-facing errors: what was wrong and what to do, in one line."""

from __future__ import annotations

from collections.abc import Iterable


class ColorlabError(Exception):
    """A mistake in the user's input (config, paths, files); entry points print it as one line."""


class RunInterrupted(Exception):
    """A run stopped by a signal after saving what resumes it; exits with ``exit_code``
    (130 for SIGINT / Ctrl-C, 143 for SIGTERM, as shells and schedulers expect)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def check_choice(key: str, value: object, allowed: Iterable[object]) -> None:
    """Raise a `ColorlabError` naming ``key`` and the allowed values unless ``value`` is one."""
    allowed = list(allowed)
    if value not in allowed:
        names = ", ".join(str(a) for a in allowed)
        raise ColorlabError(f"{key}={value!r} is not allowed; choose one of: {names}")
