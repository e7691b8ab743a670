"""The README's table of model configurations: parameters, trainable share and GFLOPs of one
forward pass at the native size (regression head, batch 1), counted with
`torch.utils.flop_counter` (a multiply-add = 2 FLOPs).

python experiments/model_table.py [model=NAME overrides ...]   (default: every conf/model/)
"""

from __future__ import annotations

import sys

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torch.utils.flop_counter import FlopCounterMode

from colorlab.configs import config_dir

DEFAULT_ROWS = [
    ["model=baseline"],
    ["model=vgg16"],
    ["model=vgg16_fusion"],
    ["model=fusion"],
    ["model=fusion", "model.backbone=efficientnet_b0"],
    ["model=unet"],
    ["model=unet", "model.backbone=resnet34"],
    ["model=unet", "model.backbone=convnext_tiny"],
    ["model=eccv16"],
    ["model=siggraph17"],
]


def describe(overrides: list[str]) -> str:
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train", overrides=[*overrides, "run_dir=."])
    model = dict(cfg.model)
    if "pretrained" in model:
        model["pretrained"] = False  # the same network; nothing to download
    net = instantiate(model).eval()
    total = sum(p.numel() for p in net.parameters())
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    size = net.native_size
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(torch.rand(1, 1, size, size) * 100)
    name = " ".join(o.removeprefix("model=") for o in overrides)
    return (
        f"| `{name}` | {total / 1e6:.1f} M | {100 * trainable / total:.0f} % | {size} "
        f"| {counter.get_total_flops() / 1e9:.1f} |"
    )


if __name__ == "__main__":
    rows = [sys.argv[1:]] if len(sys.argv) > 1 else DEFAULT_ROWS
    print("| model | parameters | trainable | native size | GFLOPs |")
    print("| --- | --- | --- | --- | --- |")
    for overrides in rows:
        print(describe(overrides), flush=True)
