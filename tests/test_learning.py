"""Does the baseline learn? At 64 px on CPU it must beat the gray prediction (ab = 0).

About 35 s each on 2 cores. Batch 8 with Adam: within this budget the many small steps
matter more than the optimizer the reference used (see experiments/README.md).
"""

import sys
from pathlib import Path

import pytest

from conftest import REPO, SCENES

sys.path.insert(0, str(REPO / "experiments"))
from learning_check import learning_check  # noqa: E402

FAST = ["data.batch_size=8", "optimizer=adam", "~callbacks.samples"]


@pytest.mark.slow
def test_baseline_beats_gray_on_synthetic_scenes(tmp_path: Path):
    result = learning_check(
        "synthetic",
        5,
        run_dir=tmp_path,
        extra=[*FAST, "data.num_images=400", "trainer.max_epochs=3"],
    )
    assert result["val_ab_mse_model"] < 0.5 * result["val_ab_mse_gray"], result


@pytest.mark.slow
@pytest.mark.skipif(not SCENES.is_dir(), reason="real photos not present (../shared/data/scenes)")
def test_baseline_beats_gray_on_real_scenes(tmp_path: Path):
    result = learning_check(
        "scenes",
        5,
        root=SCENES,
        run_dir=tmp_path,
        extra=[*FAST, "data.limit=600", "trainer.max_epochs=3"],
    )
    assert result["val_ab_mse_model"] < 0.95 * result["val_ab_mse_gray"], result
