"""Scoring trained colorizers on a data split."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from colorlab.data import ColorizationDataModule
from colorlab.module import ColorizationModule


@torch.no_grad()
def ab_mse_against_gray(module: ColorizationModule, loader: DataLoader) -> dict[str, float]:
    """Mean squared ab error of ``module`` and of the gray prediction (ab = 0) on ``loader``.

    Returns:
        ``{"model": …, "gray": …}`` in (ab / 128)² units, averaged over all pixels.
    """
    module.eval()
    device = module.device
    model_sum = gray_sum = 0.0
    count = 0
    for raw in loader:
        batch = ColorizationDataModule.prepare_batch(raw.to(device))
        ab = batch["ab"]
        model_sum += float((module(batch["L"]).float() - ab).square().sum())
        gray_sum += float(ab.square().sum())
        count += ab.numel()
    return {"model": model_sum / count, "gray": gray_sum / count}
