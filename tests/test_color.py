import numpy as np
import pytest
import torch
from skimage.color import rgb2lab

from colorlab.color import AB_SCALE, gray_rgb, lab_batch, rgb_to_l_ab, to_rgb


def test_round_trip_rgb_lab_rgb():
    rgb = torch.rand(4, 3, 17, 23, generator=torch.Generator().manual_seed(1))
    L, ab = rgb_to_l_ab(rgb)
    assert L.shape == (4, 1, 17, 23) and ab.shape == (4, 2, 17, 23)
    assert (to_rgb(L, ab) - rgb).abs().max() < 1e-3


def test_agrees_with_skimage():
    rgb = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    L, ab = rgb_to_l_ab(rgb.float())
    expected = np.stack([rgb2lab(img.permute(1, 2, 0).numpy()) for img in rgb])  # B×H×W×3
    ours = torch.cat([L, ab * AB_SCALE], 1).permute(0, 2, 3, 1).double().numpy()
    assert np.abs(ours - expected).max() < 0.01


def test_ranges_and_scale():
    rgb = torch.tensor(
        [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    ).T.reshape(1, 3, 2, 2)
    L, ab = rgb_to_l_ab(rgb)
    assert L.min() >= 0 and L.max() <= 100.0001
    assert ab.abs().max() < 1.0
    # pure red has a* ≈ 80 in Lab, so ≈ 0.63 after the /128 scale
    assert ab[0, 0, 1, 0].item() == pytest.approx(80.1 / 128, abs=0.01)


def test_lab_batch_from_uint8_and_gray():
    rgb8 = torch.randint(0, 256, (3, 3, 8, 8), dtype=torch.uint8)
    batch = lab_batch(rgb8)
    assert set(batch) == {"L", "ab", "rgb"}
    assert torch.allclose(batch["rgb"], rgb8.float() / 255)
    gray = gray_rgb(batch["L"])
    assert gray.shape == (3, 3, 8, 8)
    assert (gray[:, 0] - gray[:, 1]).abs().max() < 2e-3 and (
        gray[:, 1] - gray[:, 2]
    ).abs().max() < 2e-3
