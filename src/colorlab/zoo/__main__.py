"""``python -m colorlab.zoo``: the published networks, their papers, their authors' released
files (name, URL, parameters) and whether each file is where colorlab looks for it."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from colorlab.cli.runner import one_line_errors, run_app
from colorlab.configs import config_dir
from colorlab.zoo.files import PUBLISHED, ZOO_PREFIX


def listing() -> str:
    """One block per published network, as ``python -m colorlab.zoo`` prints it."""
    blocks = []
    for entry in PUBLISHED.values():
        present = "present" if entry.path.is_file() else "missing"
        blocks.append(
            "\n".join(
                [
                    f"{ZOO_PREFIX}{entry.name}  ({entry.parameters:.1f} M parameters)",
                    f"  paper: {entry.paper}",
                    f"  file:  {entry.file_name} ({present}: {entry.path})",
                    f"  url:   {entry.url}",
                ]
            )
        )
    return "\n\n".join(blocks)


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="zoo")
@one_line_errors
def _hydra_main(cfg: DictConfig) -> None:
    print(listing(), flush=True)


def main() -> None:
    run_app(_hydra_main)


if __name__ == "__main__":
    main()
