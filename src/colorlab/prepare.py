"""``python -m colorlab.prepare input=PHOTOS output=DIR``: a folder of photos written once as
LitData shards (`colorlab.data.shards`), for ``data=streaming data.input_dir=DIR``."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from colorlab.cli.runner import one_line_errors, run_app
from colorlab.cli.validation import PREPARE_RULES, named, validate
from colorlab.configs import config_dir
from colorlab.data.shards import prepare as prepare_shards


def prepare(cfg: DictConfig) -> dict:
    """Prepare ``cfg.input`` into ``cfg.output``; returns the summary of prepared.json."""
    validate(cfg, PREPARE_RULES)
    options = cfg.prepare
    with named("prepare", ("input",)):
        summary = prepare_shards(
            str(cfg.input),
            str(cfg.output),
            image_size=options.image_size,
            val_fraction=options.val_fraction,
            test_fraction=options.test_fraction,
            limit=options.limit,
            min_colorfulness=options.min_colorfulness,
            seed=cfg.seed,
            workers=options.workers,
            chunk_bytes=str(options.chunk_bytes),
        )
    splits = ", ".join(f"{n} {split}" for split, n in summary["splits"].items())
    skipped = summary["skipped"]
    print(
        f"colorlab: {summary['photos']} photos prepared into {cfg.output} ({splits}; "
        f"{summary['bytes'] / 1e6:.1f} MB in {summary['seconds']} s); left out: "
        f"{skipped['unreadable']} unreadable, {skipped['black_or_white']} entirely black or "
        f"white, {skipped['colourless']} nearly colourless. Train with data=streaming "
        f"data.input_dir={cfg.output}",
        flush=True,
    )
    return summary


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="prepare")
@one_line_errors
def _hydra_main(cfg: DictConfig) -> None:
    prepare(cfg)


def main() -> None:
    run_app(_hydra_main)


if __name__ == "__main__":
    main()
