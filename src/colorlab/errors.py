"""User-facing errors: what was wrong and what to do, in one line.

Library code raises `OptionError` (a `ValueError`) about its own parameters, e.g.
``kind='nope' is not allowed; choose one of: mse, l1, huber``; whoever passed the value on
prefixes the name it knows it by (`OptionError.within`), so that the entry points print the
full config key (``loss.kind='nope' …``). `ColorlabError` is for everything else the user can
mend: a missing file, a folder that holds another run, a checkpoint that does not fit.
"""

from __future__ import annotations

from collections.abc import Iterable


class ColorlabError(Exception):
    """A mistake in the user's input (config, paths, files); entry points print it as one line."""


class UnsafeFileError(ColorlabError):
    """A file asks for something that could run code when it is read (a pickled object, a
    config naming a callable colorlab does not build): refused before anything of it is built;
    no caller may pass over it as a merely unreadable file."""


class OptionError(ColorlabError, ValueError):
    """``name=value`` is not allowed, and what is: raised by a constructor or function about
    one of its own arguments (``name``); `within` names it as its caller knows it."""

    def __init__(
        self, name: str, value: object, allowed: str, problem: str = "is not allowed"
    ) -> None:
        super().__init__(name, value, allowed, problem)
        self.name, self.value, self.allowed, self.problem = name, value, allowed, problem

    def __str__(self) -> str:
        return f"{self.name}={self.value!r} {self.problem}; {self.allowed}"

    def within(self, prefix: str) -> OptionError:
        """The same error with ``prefix.`` before the name (``kind`` -> ``loss.kind``)."""
        return OptionError(f"{prefix}.{self.name}", self.value, self.allowed, self.problem)


class RunInterrupted(Exception):
    """A run stopped by a signal after saving what resumes it; exits with ``exit_code``
    (130 for SIGINT / Ctrl-C, 143 for SIGTERM, as shells and schedulers expect)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def first_line(error: BaseException) -> str:
    """An exception's message, first line only (its type's name where it has none)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def check_choice(name: str, value: object, allowed: Iterable[object]) -> None:
    """Raise an `OptionError` naming ``name`` and the allowed values unless ``value`` is one."""
    allowed = list(allowed)
    if value not in allowed:
        raise OptionError(name, value, "choose one of: " + ", ".join(str(a) for a in allowed))
