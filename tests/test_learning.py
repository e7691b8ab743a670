"""Do the models learn? At 64 px on CPU, trained identically but for the loss (about 35 s
each on 2 cores for the synthetic scenes, about a minute for 1,000 real photos). Batch 8 with Adam: within this budget the many small steps matter more than
the optimizer the reference used (see experiments/README.md)."""

import sys

import pytest

from conftest import REPO, SCENES

sys.path.insert(0, str(REPO / "experiments"))
from learning_check import learning_check  # noqa: E402

# One worker runs this module's tests (pytest-xdist --dist loadgroup): they share its fixtures,
# built once a session (session scope: kept while other modules' tests run in between).
pytestmark = pytest.mark.xdist_group("learning")

FAST = ["data.batch_size=8", "optimizer=adam", "~callbacks.samples"]
SYNTHETIC = [*FAST, "data.num_images=400", "trainer.max_epochs=3"]
REAL = [*FAST, "data.limit=1000", "trainer.max_epochs=3"]
needs_scenes = pytest.mark.skipif(
    not SCENES.is_dir(), reason="real photos not present (../shared/data/scenes)"
)


@pytest.fixture(scope="session")
def synthetic_mse(tmp_path_factory) -> dict:
    return learning_check(
        "synthetic", 5, run_dir=tmp_path_factory.mktemp("syn-mse"), extra=SYNTHETIC
    )


@pytest.fixture(scope="session")
def real_mse(tmp_path_factory) -> dict:
    return learning_check(
        "scenes", 5, root=SCENES, run_dir=tmp_path_factory.mktemp("real-mse"), extra=REAL
    )


@pytest.mark.slow
def test_baseline_beats_gray_on_synthetic_scenes(synthetic_mse):
    assert synthetic_mse["val_ab_mse_model"] < 0.5 * synthetic_mse["val_ab_mse_gray"], synthetic_mse


@pytest.mark.slow
@needs_scenes
def test_baseline_beats_gray_on_real_scenes(real_mse):
    assert real_mse["val_ab_mse_model"] < 0.95 * real_mse["val_ab_mse_gray"], real_mse


@pytest.mark.slow
@needs_scenes
def test_classification_is_more_colourful_than_mse_on_real_photos(real_mse, tmp_path):
    # MSE desaturates real photos (an eighth to a quarter of their colourfulness at this
    # budget); rebalanced classification less, while its ab error stays near the gray
    # prediction's. How much more colourful it is at 3 epochs varies from run to run on the
    # CPU (1.1 to 2.4 times mse's seen on 2 cores: torch's CPU kernels are not bitwise
    # reproducible under load), so the test asks only for more; it beats gray on ab error and
    # reaches the photos' colourfulness with more training (experiments/README.md, §5 and §9).
    result = learning_check(
        "scenes", 5, root=SCENES, run_dir=tmp_path, extra=[*REAL, "loss=classification"]
    )
    assert result["val_colorfulness_model"] > real_mse["val_colorfulness_model"], (
        result,
        real_mse,
    )
    # At 3 epochs its ab error lands between 1.0 and 1.15 times gray's, by the data order.
    assert result["val_ab_mse_model"] < 1.25 * result["val_ab_mse_gray"], result
