"""``colorlab.evaluate``: a table with every checkpoint and the gray row, and a comparison grid."""

import json

import pytest
import torch
from PIL import Image

from colorlab.inference import load_colorizer
from colorlab.inference.evaluation import evaluate_colorizers, markdown_table
from colorlab.pictures import _GAP, _LINE, MIN_CELL
from conftest import run_cli


@pytest.mark.slow
def test_two_checkpoints_give_table_and_grid(checkpoints, tmp_path):
    result = run_cli(
        "colorlab.evaluate",
        f"ckpt=[{checkpoints['baseline']},{checkpoints['classification']},{checkpoints['vgg16']}]",
        "data.num_images=40",
        "data.num_workers=0",
        "data.image_size=96",
        "num_images=3",
        "hydra.run.dir=eval",
        "device=cpu",
        "logger=wandb",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "eval"
    report = json.loads((out / "metrics.json").read_text())
    names = list(report["metrics"])
    assert names[0] == "gray" and len(names) == 4
    assert names[1].startswith("baseline-mse@") and names[2].startswith("baseline-classification@")
    assert names[3].startswith("vgg16-mse@")
    classification = report["metrics"][names[2]]
    assert 0 < classification["ab_mse"] < 1 and classification["colorfulness_pred"] > 0.5
    for values in report["metrics"].values():
        assert {
            "ab_mse",
            "psnr",
            "ssim",
            "auc",
            "seed_accuracy",
            "colorfulness_pred",
            "delta_colorfulness",
        } <= set(values)
    gray = report["metrics"]["gray"]
    assert gray["colorfulness_pred"] < 0.5 and gray["delta_colorfulness"] == pytest.approx(
        gray["colorfulness_target"], abs=0.5
    )
    table = (out / "metrics.md").read_text()
    assert all(f"| {name} |" in table for name in names)
    tables = {
        p.name.split("_")[0]
        for p in out.glob("wandb/offline-run-*/files/media/table/evaluate/*.table.json")
    }
    assert tables == {"metrics", "comparison"}  # offline W&B run with both tables
    with Image.open(out / "comparison.png") as grid:
        # 5 columns (gray | baseline | classification | vgg16 | ground truth) and 3 rows of
        # 96 px photos shown in readable 256 px cells, under a header of title lines
        width, height = grid.size
    assert width == 5 * MIN_CELL + 4 * _GAP
    header = height - (3 * MIN_CELL + 2 * _GAP)
    assert header >= _LINE and (header - 8) % _LINE == 0


def test_gray_row_equals_a_model_that_outputs_zero(checkpoints, tmp_path):
    checkpoint = torch.load(checkpoints["baseline"], weights_only=False)
    checkpoint["state_dict"]["net.head.conv.weight"].zero_()
    checkpoint["state_dict"]["net.head.conv.bias"].zero_()  # tanh(0) = 0 everywhere
    torch.save(checkpoint, tmp_path / "zero.ckpt")
    zero = load_colorizer(tmp_path / "zero.ckpt", device="cpu")
    from colorlab.data import SyntheticScenes

    images = torch.stack([SyntheticScenes(6, 64, seed=3)[i] for i in range(6)])
    results, rows = evaluate_colorizers(
        {"gray": None, "zero": zero}, [images[:4], images[4:]], torch.device("cpu"), num_images=5
    )
    assert results["zero"] == pytest.approx(results["gray"], rel=1e-5, abs=1e-6)
    assert len(rows) == 5 and all(len(row) == 3 for row in rows)
    assert "| zero |" in markdown_table(results)
