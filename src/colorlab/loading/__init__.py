"""Reading the files a user hands over (checkpoints, safetensors files), safely and in today's
layout, whatever colorlab version wrote them: every reader (training's resume, inference, the
report, the demo, the bench) goes through `read_checkpoint` (`checkpoint`), which applies the
upgrades of earlier versions' files (`upgrades`)."""

from colorlab.loading.checkpoint import (
    SAFETENSORS,
    load_checkpoint,
    load_weights,
    model_without_download,
    read_checkpoint,
    read_safetensors,
    read_state_dict,
    state_dict_problem,
    write_safetensors,
)
from colorlab.loading.upgrades import upgrade_checkpoint

__all__ = [
    "SAFETENSORS",
    "load_checkpoint",
    "load_weights",
    "model_without_download",
    "read_checkpoint",
    "read_safetensors",
    "read_state_dict",
    "state_dict_problem",
    "upgrade_checkpoint",
    "write_safetensors",
]
