"""Objects from ``_target_`` configs (Hydra's instantiate), with errors that name the option.

A constructor raises `colorlab.errors.OptionError` about its own parameter (``kind``); `build`
names it as the config knows it (``loss.kind``), and turns a key the target does not take
(``+loss.foo=1``) into the same kind of error, listing the keys it does take.
"""

from __future__ import annotations

import inspect
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, OmegaConf

from colorlab.errors import ColorlabError, OptionError


def plain(config: Any) -> Any:
    """A config node as plain Python containers, interpolations resolved."""
    return (
        OmegaConf.to_container(config, resolve=True) if isinstance(config, DictConfig) else config
    )


def target_options(target: str) -> list[str] | None:
    """The keyword arguments ``target`` takes (None where it takes any: ``**kwargs``)."""
    try:
        thing = get_object(target)
        # a class passing **kwargs on to its base: the options of the bases' __init__ too
        callables = (
            [c.__init__ for c in thing.__mro__ if "__init__" in vars(c)]
            if isinstance(thing, type)
            else [thing]
        )
        signatures = [inspect.signature(c) for c in callables]
    except (ImportError, AttributeError, TypeError, ValueError):
        return None
    names: list[str] = []
    for signature in signatures:
        parameters = list(signature.parameters.values())
        names += [
            p.name
            for p in parameters
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in ("self", *names)
        ]
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            return names
    return None


def check_keys(config: dict[str, Any], name: str, ignore: tuple[str, ...] = ()) -> None:
    """`OptionError` for a key of ``config`` that its ``_target_`` does not take."""
    target = config.get("_target_")
    options = target_options(target) if target else None
    if options is None:
        return
    for key in config:
        if not key.startswith("_") and key not in options and key not in ignore:
            taken = ", ".join(o for o in options if o not in ignore) or "none"
            raise OptionError(
                f"{name}.{key}",
                config[key],
                f"its options are: {taken}",
                f"is not an option of {target}",
            )


def build(config: Any, name: str, **kwargs: Any) -> Any:
    """``instantiate(config, **kwargs)``; an `OptionError` of the target comes out named
    within ``name``, a `ColorlabError` as itself, an unknown key as an `OptionError`."""
    config = plain(config)
    if isinstance(config, dict):
        check_keys(config, name, ignore=tuple(kwargs))
    try:
        return instantiate(config, **kwargs, _convert_="all")
    except InstantiationException as error:
        cause = error.__cause__
        if isinstance(cause, OptionError):
            raise cause.within(name) from None
        if isinstance(cause, ColorlabError):
            raise cause from None
        raise
    except OptionError as error:
        raise error.within(name) from None
