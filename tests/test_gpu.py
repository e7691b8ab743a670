"""On a CUDA machine: ``trainer=gpu`` (bf16, channels_last) trains and colorizes."""

import pytest
import torch

from colorlab.inference import load_colorizer
from colorlab.train import train
from conftest import TINY, compose_train, run_cli


@pytest.mark.gpu
@pytest.mark.parametrize(
    ("model", "loss"),
    [
        ("baseline", "mse"),
        ("vgg16", "mse"),
        ("baseline", "classification"),
        ("unet", "classification"),
    ],
)
def test_gpu_bf16_training_and_inference(tmp_path, model, loss):
    extra = ["model.pretrained=false"] if model != "baseline" else []
    cfg = compose_train(
        f"model={model}",
        f"loss={loss}",
        *extra,
        *TINY,
        "trainer=gpu",
        "data.image_size=64",
        "data.num_images=40",
        "logger=none",
        run_dir=tmp_path,
    )
    cfg.trainer.accelerator = "gpu"
    summary = train(cfg)
    assert summary["best_checkpoint"]
    colorizer = load_colorizer(summary["best_checkpoint"], device="cuda")
    assert colorizer.device.type == "cuda"
    out = colorizer.colorize(torch.rand(77, 93).numpy())
    assert out.size == (93, 77)


@pytest.mark.gpu
def test_scenes_painted_on_the_gpu_equal_the_cpu_ones():
    from colorlab.data.painting import render_scenes

    cpu = render_scenes(0, range(64), 96, dusk_fraction=0.3).int()
    gpu = render_scenes(0, range(64), 96, dusk_fraction=0.3, device="cuda").cpu().int()
    difference = (cpu - gpu).abs()
    # Float rounding only: a few pixels on sharp edges (ridge lines, window borders) flip.
    assert difference.float().mean() < 0.05 and (difference > 1).float().mean() < 1e-3


@pytest.mark.gpu
def test_ddp_with_nccl_trains_tests_and_writes_once(tmp_path):
    """trainer=ddp on the GPUs there are (NCCL): reductions, the colour prior, the
    checkpoint broadcast before testing."""
    run_dir = tmp_path / "run"
    result = run_cli(
        "colorlab.train",
        "trainer=ddp",
        "loss=classification",
        f"trainer.devices={torch.cuda.device_count()}",
        *(o for o in TINY if not o.startswith("trainer.accelerator")),
        "trainer.max_epochs=2",
        "data.image_size=64",
        "data.num_images=80",
        "logger=csv",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summaries = [
        line for line in result.stdout.splitlines() if line.startswith("colorlab: run dir")
    ]
    assert len(summaries) == 1
    best = next((run_dir / "checkpoints").glob("best-*.ckpt"))
    assert load_colorizer(best, device="cuda").colorize(torch.rand(40, 50).numpy()).size == (50, 40)
