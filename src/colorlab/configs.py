"""Objects from ``_target_`` configs (Hydra's instantiate), with errors that name the option,
and where the configuration folder is.

A constructor raises `colorlab.errors.OptionError` about its own parameter (``kind``); `build`
names it as the config knows it (``loss.kind``), and turns a key the target does not take
(``+loss.foo=1``) into the same kind of error, listing the keys it does take.

A config read from a file (a checkpoint's hyperparameters, a run folder's config.yaml, an
exported file's metadata) can name any callable, and Hydra would call it: `check_targets`
allows only `allowed_targets` (what conf/ names, colorlab's own builders, torch's optimizers and
LR schedulers), at every depth, before anything of it is built.
"""

from __future__ import annotations

import functools
import inspect
import re
from pathlib import Path
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, OmegaConf

from colorlab.errors import ColorlabError, OptionError, UnsafeFileError


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


#: colorlab's own builders and classes a config from a file may name, beside conf/'s targets
#: (the classes the package exports for users who build models and losses in Python).
COLORLAB_TARGETS = (
    "colorlab.models.Colorizer",
    "colorlab.models.UNet",
    "colorlab.losses.ClassificationLoss",
    "colorlab.losses.RegressionLoss",
    "colorlab.data.FolderDataModule",
    "colorlab.data.SyntheticDataModule",
)
_CONF_TARGET = re.compile(r"^\s*_target_:\s*['\"]?([\w.]+)", re.MULTILINE)


@functools.cache
def allowed_targets() -> frozenset[str]:
    """Every ``_target_`` a config read from a file may name: those conf/ names, colorlab's
    `COLORLAB_TARGETS`, and torch's optimizers and LR schedulers (``torch.optim.NAME``,
    ``torch.optim.lr_scheduler.NAME``)."""
    import torch.optim
    import torch.optim.lr_scheduler as schedulers

    named = {
        match
        for path in Path(config_dir()).rglob("*.yaml")
        for match in _CONF_TARGET.findall(path.read_text(encoding="utf-8"))
    }
    optimizers = {
        f"torch.optim.{name}"
        for name, thing in vars(torch.optim).items()
        if isinstance(thing, type) and issubclass(thing, torch.optim.Optimizer)
    }
    scheduler_bases = (schedulers.LRScheduler, schedulers.ReduceLROnPlateau)
    lr_schedulers = {
        f"torch.optim.lr_scheduler.{name}"
        for name, thing in vars(schedulers).items()
        if isinstance(thing, type) and issubclass(thing, scheduler_bases)
    }
    return frozenset(named | set(COLORLAB_TARGETS) | optimizers | lr_schedulers)


def check_targets(config: Any, name: str, source: str | Path) -> None:
    """Raise an `UnsafeFileError` naming the key and the target where ``config`` (read from the
    file ``source``), at any depth, names a ``_target_`` outside `allowed_targets`, or holds an
    interpolation (``${…}``, resolved only as Hydra builds it)."""
    if isinstance(config, DictConfig):
        config = OmegaConf.to_container(config, resolve=False)
    if isinstance(config, dict):
        target = config.get("_target_")
        if target is not None and target not in allowed_targets():
            raise UnsafeFileError(
                f"{source}: {name}._target_={target!r} is not something colorlab builds from a "
                "file (its models, losses, data, torch's optimizers and LR schedulers); refused "
                "before building anything (trust_checkpoint=true if you wrote it yourself)"
            )
        for key, value in config.items():
            check_targets(value, f"{name}.{key}", source)
    elif isinstance(config, (list, tuple)):
        for index, value in enumerate(config):
            check_targets(value, f"{name}[{index}]", source)
    elif isinstance(config, str) and "${" in config:
        # resolved as Hydra builds the config (${oc.env:…} reads the environment, ${oc.decode:…}
        # makes new values): never in what colorlab writes
        raise UnsafeFileError(
            f"{source}: {name}={config!r} is an interpolation, which colorlab never writes into "
            "a file (it saves configs resolved); refused before building anything"
        )


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
            [vars(c)["__init__"] for c in thing.__mro__ if "__init__" in vars(c)]
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
