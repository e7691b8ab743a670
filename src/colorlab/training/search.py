"""Hyper-parameter searches with the Hydra Optuna sweeper (``hparams_search=optuna``).

The sweeper (``pip install 'colorlab[sweep]'``) asks Optuna for each trial's overrides and
runs ``colorlab.train`` with them; a trial's value is the best of its checkpoint monitor,
``optimized_metric``. This module adds what the plugin leaves out: the conditional part of the
search space (a loss's own options), and `StudyFolder`, which keeps the study in an SQLite file
of the sweep folder so that running the same command with ``hydra.sweep.dir=THAT_FOLDER``
continues it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from colorlab.errors import ColorlabError, first_line

#: Search ranges of each loss's own options (conditional on the loss a trial draws).
LOSS_OPTIONS: dict[str, dict[str, tuple[float, float]]] = {
    "classification": {"loss.rebalance": (0.0, 0.9), "loss.temperature": (0.2, 1.0)},
    "mse": {"loss.colorfulness_weight": (0.0, 0.1)},
    "l1": {"loss.colorfulness_weight": (0.0, 0.1)},
    "huber": {"loss.colorfulness_weight": (0.0, 0.1)},
}


def loss_options(config: DictConfig, trial: Any) -> None:
    """``hydra.sweeper.custom_search_space``: draw the options of the trial's loss (the
    ``loss`` it drew, else the config's) from `LOSS_OPTIONS`."""
    loss = trial.params.get("loss") or trial.user_attrs.get("loss")
    loss = loss or config.hydra.runtime.choices.get("loss")
    for name, (low, high) in LOSS_OPTIONS.get(str(loss), {}).items():
        trial.suggest_float(name, low, high)


def _count_trials(storage: str, study_name: str) -> int:
    """Trials already in ``study_name`` at ``storage`` (0 for a new study)."""
    import optuna

    try:
        return len(optuna.load_study(study_name=study_name, storage=storage).trials)
    except KeyError:  # no such study yet
        return 0
    except Exception as error:  # not a database, another program's schema, a server down
        raise ColorlabError(
            f"the study storage {storage} cannot be opened ({first_line(error)}): move the "
            "file away to start a new study, or give a working one as hydra.sweeper.storage"
        ) from error


class StudyFolder(Callback):
    """Hydra callback of a search: make the sweep folder (the SQLite storage lives there);
    when the study already has N trials, continue it: the sampler's seed is shifted by N (so
    that it does not propose the first trials again) and the new trials' folders are numbered
    from N; at the end, print the best trial and where the results are."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        Path(config.hydra.sweep.dir).mkdir(parents=True, exist_ok=True)
        sweeper = config.hydra.sweeper
        storage = sweeper.get("storage")
        if not storage:
            return  # a study in memory: nothing to continue
        sqlite_file = Path(storage.removeprefix("sqlite:///"))
        new_file = storage.startswith("sqlite:///") and not sqlite_file.is_file()
        done = 0 if new_file else _count_trials(storage, sweeper.study_name)
        if not done:
            return
        with read_write(config.hydra), open_dict(config.hydra):
            if sweeper.sampler.get("seed") is not None:
                sweeper.sampler.seed = int(sweeper.sampler.seed) + done
            # each job's config is composed anew from these overrides
            config.hydra.overrides.hydra.append(
                "hydra.sweep.subdir='${colorlab.add:${hydra.job.num}," + str(done) + "}'"
            )
        print(f"colorlab: continuing the study in {storage} after its {done} trials", flush=True)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        results = Path(config.hydra.sweep.dir) / "optimization_results.yaml"
        if not results.is_file():
            return
        best = OmegaConf.load(results)
        params = " ".join(
            f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}"
            for name, value in best.best_params.items()
        )
        metric = config.get("optimized_metric", "objective")
        print(
            f"colorlab: best {metric} {best.best_value:.4f} with {params} | {results}", flush=True
        )
