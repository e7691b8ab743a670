"""ImageNet-sized data: photos prepared once into LitData shards (``colorlab.prepare``) and
streamed (``data=streaming``): counts and refusals, training with the photos gone, DDP with
equal batches per rank, a SIGTERM mid-epoch resumed at its position, the bench's data row."""

import csv
import io
import json
import shutil

import pytest
import torch

from colorlab.benchmarks.colorizing import write_photos
from colorlab.data.shards import PARTIAL, PREPARED, prepare
from colorlab.data.streaming import StreamingDataModule
from colorlab.errors import ColorlabError, OptionError
from conftest import TINY, run_cli

# One worker runs this module's tests (pytest-xdist --dist loadgroup): the photos and shards
# are prepared once a session.
pytestmark = pytest.mark.xdist_group("streaming")

STREAM = ["data=streaming", "data.image_size=32", "data.batch_size=8", "data.num_workers=1"]


@pytest.fixture(scope="session")
def photos(tmp_path_factory):
    """40 synthetic JPEG photos of 48 px: train/ (32) and val/ (8); one broken, one black."""
    root = tmp_path_factory.mktemp("photos")
    write_photos(root / "train", 32, 48, torch.device("cpu"))
    write_photos(root / "val", 8, 48, torch.device("cpu"))
    (root / "train" / "broken.jpg").write_bytes(b"not a jpeg")
    from PIL import Image

    Image.new("RGB", (48, 48)).save(root / "train" / "black.png")
    return root


@pytest.fixture(scope="session")
def shards(photos, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared") / "shards"
    prepare(photos, out, workers=1)
    return out


def test_prepare_counts_names_what_it_left_out_and_refuses_a_used_output(photos, shards):
    summary = json.loads((shards / PREPARED).read_text())
    assert summary["splits"] == {"train": 32, "val": 8, "test": 8}  # no test/: val's photos
    assert summary["skipped"] == {"unreadable": 1, "black_or_white": 1, "colourless": 0}
    assert summary["skipped_files"]["unreadable"] == [str(photos / "train" / "broken.jpg")]
    assert summary["skipped_files"]["black_or_white"] == [str(photos / "train" / "black.png")]
    assert summary["photos"] == 40 and summary["bytes"] > 0 and not (shards / PARTIAL).exists()
    datamodule = StreamingDataModule(input_dir=str(shards), image_size=32, batch_size=8)
    datamodule.setup()
    images = torch.cat(list(datamodule.split_dataloader("train")))
    assert images.shape == (32, 3, 32, 32) and images.dtype == torch.uint8
    assert len({int(i.sum()) for i in images}) == 32  # every photo once
    with pytest.raises(ColorlabError, match="already holds a prepared set"):
        prepare(photos, shards)


def test_an_interrupted_prepare_starts_over_never_holds_a_photo_twice_and_shrinks_them(
    photos, tmp_path
):
    out = tmp_path / "shards"
    (out / PARTIAL / "val").mkdir(parents=True)  # what a prepare killed while moving leaves
    (out / PARTIAL / "val" / "chunk-0-0.bin").write_bytes(b"half a chunk")
    (out / "train").mkdir()
    (out / "train" / "index.json").write_text("{}")
    summary = prepare(photos, out, image_size=24, workers=1)  # and shrunk to 24 px first
    assert summary["splits"]["train"] == 32 and not (out / PARTIAL).exists()
    assert sorted(p.name for p in out.iterdir()) == [PREPARED, "test", "train", "val"]
    from litdata import StreamingDataset
    from PIL import Image

    stored = StreamingDataset(str(out / "train"))
    sizes = {Image.open(io.BytesIO(stored[i]["jpeg"])).size for i in range(len(stored))}
    assert sizes == {(24, 24)}  # the 48 px photos, stored at the training size
    kept = tmp_path / "kept"
    prepare(photos, kept, image_size=64, workers=1)  # larger than the photos: their own bytes
    files = {p.read_bytes() for p in (photos / "train").glob("*.jpg")}
    stored = StreamingDataset(str(kept / "train"))
    assert {stored[i]["jpeg"] for i in range(len(stored))} <= files
    half_done = tmp_path / "other"
    half_done.mkdir()
    (half_done / "notes.txt").write_text("mine")
    with pytest.raises(ColorlabError, match="is not empty and holds no prepared set"):
        prepare(photos, half_done)
    assert sorted(p.name for p in half_done.iterdir()) == ["notes.txt"]


def test_a_folder_that_holds_no_prepared_set_is_named(tmp_path):
    with pytest.raises(OptionError, match="input_dir=.* holds no prepared set"):
        StreamingDataModule(input_dir=str(tmp_path))


@pytest.mark.slow
def test_prepare_cli_and_training_from_the_shards_with_the_photos_gone(photos, tmp_path):
    copy = tmp_path / "photos"
    shutil.copytree(photos, copy)
    prepared = run_cli(
        "colorlab.prepare", f"input={copy}", f"output={tmp_path / 'shards'}", cwd=tmp_path
    )
    assert prepared.returncode == 0, prepared.stderr[-3000:]
    assert "40 photos prepared" in prepared.stdout  # 32 + 8: test/ reuses val/
    assert "(32 train, 8 val, 8 test;" in prepared.stdout and "1 unreadable" in prepared.stdout
    again = run_cli(
        "colorlab.prepare", f"input={copy}", f"output={tmp_path / 'shards'}", cwd=tmp_path
    )
    assert again.returncode == 2
    assert "already holds a prepared set" in again.stderr.strip().splitlines()[-1]
    shutil.rmtree(copy)
    trained = run_cli(
        "colorlab.train",
        *TINY,
        *STREAM,
        f"data.input_dir={tmp_path / 'shards'}",
        "loss=classification",
        "logger=none",
        "hydra.run.dir=run",
        cwd=tmp_path,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
    assert "colour prior over" in trained.stdout + trained.stderr


def _steps(run_dir):
    with open(run_dir / "csv" / "metrics.csv") as f:
        return sorted({int(r["step"]) for r in csv.DictReader(f) if r.get("train/loss")})


@pytest.mark.slow
def test_two_processes_stream_their_own_shares_with_equal_batches(shards, tmp_path):
    result = run_cli(
        "colorlab.train",
        *TINY,
        *STREAM,
        f"data.input_dir={shards}",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.precision=32-true",
        "trainer.max_epochs=2",
        "logger=csv",
        "hydra.run.dir=run",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # 32 training photos over 2 ranks: 16 each, 2 batches of 8 an epoch on both ranks (a rank
    # with a batch more would hang the other at its gradient all-reduce).
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["global_step"] == 4 and last["epoch"] == 1
    assert max(_steps(tmp_path / "run")) == 3


RECORDER = """
import json, os, signal
import lightning as L

class Recorder(L.Callback):
    '''Writes each training image's signature (its pixel sum: unchanged by the batch's order)
    per epoch; SIGTERMs the run at the third batch of epoch 1 when STOP_AT is set.'''

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        sums = [round(float(x) * 255) for x in batch["rgb"].flatten(1).sum(1)]
        with open("seen.jsonl", "a") as out:
            out.write(json.dumps({"epoch": trainer.current_epoch, "sums": sums}) + "\\n")
        if os.environ.get("STOP_AT") and trainer.current_epoch == 1 and batch_idx == 2:
            os.kill(os.getpid(), signal.SIGTERM)
"""


@pytest.mark.slow
def test_a_sigterm_mid_epoch_resumes_at_its_position(shards, tmp_path):
    (tmp_path / "recorder.py").write_text(RECORDER)
    common = [
        *TINY,
        *STREAM,
        "data.batch_size=4",
        "data.flip=false",
        f"data.input_dir={shards}",
        "+callbacks.recorder._target_=recorder.Recorder",
        "logger=none",
    ]
    stopped = run_cli(
        "colorlab.train",
        *common,
        "trainer.max_epochs=3",
        "hydra.run.dir=run",
        cwd=tmp_path,
        env={"STOP_AT": "1"},
    )
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert "interrupted by SIGTERM in epoch 1" in stopped.stderr.strip().splitlines()[-1]
    resumed = run_cli(
        "colorlab.train",
        *common,
        "trainer.max_epochs=3",
        f"ckpt_path={last}",
        "hydra.run.dir=resumed",
        cwd=tmp_path,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    records = [json.loads(line) for line in (tmp_path / "seen.jsonl").read_text().splitlines()]
    every = sorted(s for r in records if r["epoch"] == 0 for s in r["sums"])
    assert len(every) == 32 and len(set(every)) == 32
    epoch1 = [s for r in records if r["epoch"] == 1 for s in r["sums"]]
    # the batches before the signal (3 of 8) and after the resume (5): each photo once
    assert sorted(epoch1) == every
    assert sorted(s for r in records if r["epoch"] == 2 for s in r["sums"]) == every


@pytest.mark.slow
def test_the_bench_data_row_compares_the_three_sources(tmp_path):
    result = run_cli(
        "colorlab.bench",
        "bench.rows=[data]",
        "bench.data_images=24",
        "bench.data_photo_size=48",
        "bench.data_epochs=1",
        "data.image_size=32",
        "data.batch_size=8",
        "data.num_workers=1",
        "trainer.accelerator=cpu",
        "logger=none",
        "hydra.run.dir=bench",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (record,) = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert record["row"] == "data" and record["images"] == 24
    for key in ("images_per_s", "folder_images_per_s", "cache_images_per_s", "batches_per_s"):
        assert record[key] > 0
    ratio = record["images_per_s"] / record["folder_images_per_s"]
    assert abs(record["vs_folder"] - ratio) < 0.05
    assert record["sized_images_per_s"] > 0  # shards prepared at data.image_size (32 px)
    sized = record["sized_images_per_s"] / record["folder_images_per_s"]
    assert abs(record["sized_vs_folder"] - sized) < 0.05
