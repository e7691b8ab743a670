import math

import pytest
import torch
from torchmetrics.functional.image import (
    peak_signal_noise_ratio,
    structural_similarity_index_measure,
)

from colorlab.metrics import ColorizationMetrics, ab_error_auc, colorfulness, seed_accuracy


def test_seed_accuracy_by_hand():
    # 1×2×2×2: pixels (a, b). argmax of target: [a, b, b, a]; of prediction: [a, a, b, b]
    target = torch.tensor([[[[0.5, -0.2], [0.1, 0.3]], [[0.1, 0.4], [0.2, 0.0]]]])
    pred = torch.tensor([[[[0.3, 0.6], [-0.5, 0.0]], [[0.2, 0.1], [0.1, 0.2]]]])
    assert seed_accuracy(pred, target).item() == pytest.approx(0.5)  # pixels 0 and 2 agree


def test_seed_accuracy_ties_go_to_a_like_keras():
    zeros = torch.zeros(1, 2, 3, 3)
    target = torch.zeros(1, 2, 3, 3)
    target[:, 1] = 1.0  # b wins everywhere
    assert seed_accuracy(zeros, target).item() == 0.0
    assert seed_accuracy(zeros, zeros).item() == 1.0


def test_colorfulness_by_hand():
    # Two pixels: pure red and black (0..1); on 0..255: rg = [255, 0], yb = [127.5, 0]
    rgb = torch.tensor([[[[1.0, 0.0]], [[0.0, 0.0]], [[0.0, 0.0]]]])
    sigma = math.sqrt(127.5**2 + 63.75**2)
    mu = math.sqrt(127.5**2 + 63.75**2)
    assert colorfulness(rgb).item() == pytest.approx(sigma + 0.3 * mu, rel=1e-5)
    assert colorfulness(torch.full((2, 3, 4, 4), 0.4)).abs().max().item() == pytest.approx(
        0.0, abs=1e-4
    )


def test_auc_perfect_and_by_hand():
    ab = torch.rand(2, 2, 5, 5) * 2 - 1
    assert torch.allclose(ab_error_auc(ab, ab), torch.ones(2))
    # One image, two pixels: errors 0 and 75 Lab units (along a), thresholds 0..150.
    pred = torch.zeros(1, 2, 1, 2)
    target = torch.zeros(1, 2, 1, 2)
    target[0, 0, 0, 1] = 75 / 128
    # fraction = 0.5 for t < 75, 1 for t >= 75 -> area = 0.5*75 + 0.5 (trapezoid 74..75) ... by hand:
    fractions = [0.5 if t < 75 else 1.0 for t in range(151)]
    area = sum((fractions[i] + fractions[i + 1]) / 2 for i in range(150)) / 150
    assert ab_error_auc(pred, target).item() == pytest.approx(area, abs=1e-4)


def test_accumulator_matches_torchmetrics():
    gen = torch.Generator().manual_seed(3)
    rgb = torch.rand(6, 3, 32, 32, generator=gen)
    rgb_pred = (rgb + 0.1 * torch.randn(6, 3, 32, 32, generator=gen)).clamp(0, 1)
    ab = torch.rand(6, 2, 32, 32, generator=gen) - 0.5
    ab_pred = ab * 0.5
    metrics = ColorizationMetrics(ssim=True, auc=True)
    for i in (0, 3):  # two batches
        metrics.update(ab_pred[i : i + 3], ab[i : i + 3], rgb_pred[i : i + 3], rgb[i : i + 3])
    values = metrics.compute()
    per_image_psnr = torch.stack(
        [peak_signal_noise_ratio(p[None], t[None], data_range=1.0) for p, t in zip(rgb_pred, rgb)]
    )
    assert values["psnr"] == pytest.approx(per_image_psnr.mean().item(), rel=1e-5)
    assert values["ssim"] == pytest.approx(
        structural_similarity_index_measure(rgb_pred, rgb, data_range=1.0).item(), rel=1e-4
    )
    assert values["ab_mse"] == pytest.approx(((ab_pred - ab) ** 2).mean().item(), rel=1e-5)
    assert values["delta_colorfulness"] == pytest.approx(
        abs(colorfulness(rgb_pred).mean().item() - colorfulness(rgb).mean().item()), rel=1e-4
    )
    metrics.reset()
    metrics.update(ab, ab, rgb, rgb)
    assert metrics.compute()["auc"] == pytest.approx(1.0)


def test_seed_accuracy_is_keras_argmax_accuracy_on_random_ab_with_ties():
    torch.manual_seed(0)
    pred, target = torch.rand(4, 2, 9, 11) * 2 - 1, torch.rand(4, 2, 9, 11) * 2 - 1
    tie = torch.rand(4, 9, 11) < 0.2
    pred[:, 1] = torch.where(tie, pred[:, 0], pred[:, 1])
    keras = (pred.argmax(dim=1) == target.argmax(dim=1)).float().mean()
    assert seed_accuracy(pred, target).item() == pytest.approx(keras.item(), abs=1e-7)
