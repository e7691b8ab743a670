"""User-facing errors: what was wrong and what to do, in one line."""

from __future__ import annotations

from collections.abc import Iterable


class ColorlabError(Exception):
    """A mistake in the user's input (config, paths, files); entry points print it as one line."""


def check_choice(key: str, value: object, allowed: Iterable[object]) -> None:
    """Raise a `ColorlabError` naming ``key`` and the allowed values unless ``value`` is one."""
    allowed = list(allowed)
    if value not in allowed:
        names = ", ".join(str(a) for a in allowed)
        raise ColorlabError(f"{key}={value!r} is not allowed; choose one of: {names}")
