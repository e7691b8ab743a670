"""``python -m colorlab.bench`` runs every row on the CPU and prints readable figures."""

import json

import pytest

from conftest import run_cli

TINY_BENCH = [
    "data.image_size=32",
    "data.num_images=40",
    "data.batch_size=8",
    "trainer.accelerator=cpu",
    "logger=none",
    "~callbacks.model_summary",
    "~callbacks.progress_bar",
    "bench.warmup=1",
    "bench.steps=3",
    "bench.epochs=1",
    "bench.colorize_images=3",
    "bench.colorize_size=96",
    "bench.megapixels=0.3",
    "bench.video_frames=6",
    "bench.video_size=[64,48]",
    "hydra.run.dir=bench",
]


@pytest.mark.slow
def test_bench_prints_a_table_and_a_json_line_per_row(tmp_path):
    result = run_cli(
        "colorlab.bench",
        *TINY_BENCH,
        "bench.rows=[model,train,epoch,colorize,onnx,video,memory]",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    printed = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    rows = ["model", "train", "epoch", "colorize", "onnx", "video", "memory"]
    assert [r["row"] for r in printed] == rows
    for record in printed[:4]:
        assert record["images_per_s"] > 0 and record["model"] == "baseline"
        assert record["image_size"] == 32 and record["device"].startswith("cpu")
    train, epoch = printed[1], printed[2]
    assert train["cache"] == "cpu"  # auto: the 40 tiny scenes fit in RAM
    for record in (train, epoch):
        ratio = record["images_per_s"] / printed[0]["images_per_s"]
        assert abs(record["vs_model"] - ratio) < 0.01
    assert epoch["epochs"] == 1 and epoch["wall_s"] >= epoch["seconds"]
    colorize = printed[3]
    assert colorize["photo_size"] == 96 and colorize["threads"] >= 1
    assert colorize["floor_images_per_s"] > 0 and colorize["network_images_per_s"] > 0
    ratio = colorize["images_per_s"] / colorize["floor_images_per_s"]
    assert abs(colorize["vs_floor"] - ratio) < 0.01
    onnx = printed[4]
    assert onnx["images_per_s"] > 0 and onnx["torch_images_per_s"] > 0
    assert onnx["network_images_per_s"] > 0 and onnx["photo_size"] == 96
    video = printed[5]
    assert video["video_size"] == "64x48" and video["images_per_s"] > 0
    for mode in ("none", "ema"):
        assert video[f"{mode}_frames_per_s"] > 0
    assert abs(video["flow_vs_none"] - video["images_per_s"] / video["none_frames_per_s"]) < 0.05
    assert 0 < printed[6]["peak_rss_gb"] < 8 and printed[6]["megapixels"] == 0.3
    assert "colorlab.bench on cpu" in result.stdout and "vs model" in result.stdout
    saved = (tmp_path / "bench" / "bench.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in saved] == printed
    assert (tmp_path / "bench" / "epoch_run" / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.slow
def test_bench_rows_are_checked_before_any_work(tmp_path):
    wrong = run_cli("colorlab.bench", *TINY_BENCH, "bench.rows=[model,speed]", cwd=tmp_path)
    assert wrong.returncode == 2
    assert wrong.stderr.strip().splitlines()[-1] == (
        "colorlab: error: bench.rows='speed' is not allowed; choose one of: "
        "model, train, epoch, colorize, onnx, video, data, memory"
    )
    for override, allowed in (
        ("bench.steps=0", "use an integer ≥ 1"),
        ("bench.rows=[]", "use a non-empty list of rows, e.g. [model,train]"),
    ):
        tiny = [a for a in TINY_BENCH if not a.startswith("bench.steps")]
        refused = run_cli("colorlab.bench", *tiny, override, cwd=tmp_path)
        assert refused.returncode == 2, refused.stderr[-2000:]
        key, value = override.split("=")
        assert refused.stderr.strip().splitlines()[-1] == (
            f"colorlab: error: {key}={value} is not allowed; {allowed}"
        )
        assert "img/s" not in refused.stdout  # no result recorded
    orphan = run_cli("colorlab.bench", *TINY_BENCH, "bench.rows=[colorize]", cwd=tmp_path)
    assert orphan.returncode == 2
    assert (
        orphan.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "colorlab: error: the colorize row needs a checkpoint: put the epoch row before it"
        )
    )
