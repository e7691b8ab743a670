"""Files that cannot run code: a checkpoint with a pickled payload, one that loads under
weights_only but whose configs name a hostile ``_target_``, and a run folder whose config.yaml
does, through every path that opens them; safetensors files; trusted files."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from colorlab import load_colorizer
from colorlab.errors import ColorlabError, UnsafeFileError
from colorlab.loading import read_checkpoint
from conftest import TINY, colourful, compose_config, compose_train, run_cli, run_colorize


class Payload:
    """Unpickling it runs a shell command that creates ``victim``."""

    def __init__(self, victim: Path):
        self.victim = victim

    def __reduce__(self):
        return (os.system, (f"touch {self.victim}",))


def with_payload(checkpoint: Path, out: Path, victim: Path) -> Path:
    """A real colorlab checkpoint with one pickled object beside its weights."""
    contents = torch.load(checkpoint, weights_only=True)
    contents["callbacks"]["Payload"] = Payload(victim)
    torch.save(contents, out)
    return out


def with_hostile_target(checkpoint: Path, out: Path, victim: Path) -> Path:
    """A checkpoint that loads under weights_only=True, whose model config would empty
    ``victim`` through ``builtins.open(victim, "w")`` if Hydra built it."""
    contents = torch.load(checkpoint, weights_only=True)
    model = dict(contents["hyper_parameters"]["model"])
    model["native_size"] = {"_target_": "builtins.open", "_args_": [str(victim), "w"]}
    contents["hyper_parameters"]["model"] = model
    torch.save(contents, out)
    return out


@pytest.fixture
def victim(tmp_path) -> Path:
    path = tmp_path / "victim.txt"
    path.write_text("precious\n")
    return path


@pytest.fixture
def hostile(checkpoints, tmp_path, victim) -> dict[str, Path]:
    """kind -> a hostile file: ``pickle`` (creates ``victim``.created) and ``target``
    (empties ``victim``)."""
    return {
        "pickle": with_payload(
            checkpoints["baseline"], tmp_path / "pickle.ckpt", victim.with_suffix(".created")
        ),
        "target": with_hostile_target(checkpoints["baseline"], tmp_path / "target.ckpt", victim),
    }


def untouched(victim: Path) -> bool:
    return victim.read_text() == "precious\n" and not victim.with_suffix(".created").exists()


def test_todays_checkpoints_need_no_class_beyond_torchs(checkpoints):
    for path in checkpoints.values():
        assert torch.serialization.get_unsafe_globals_in_checkpoint(str(path)) == []
        hparams, state_dict = read_checkpoint(path)
        assert hparams["model"]["_target_"].startswith("colorlab.models.")
        assert state_dict


@pytest.mark.parametrize("kind", ["pickle", "target"])
def test_every_python_reader_refuses_a_hostile_file_and_runs_nothing(kind, hostile, victim):
    from colorlab.inference.onnx import export_onnx
    from colorlab.training.checkpoints import check_resumable
    from colorlab.training.module import ColorizationModule

    path = hostile[kind]
    readers = [
        lambda: load_colorizer(path, device="cpu"),
        lambda: read_checkpoint(path),
        lambda: ColorizationModule.from_checkpoint(path),
        lambda: check_resumable(path, {}),
        lambda: export_onnx(path, path.with_suffix(".onnx")),
    ]
    for read in readers:
        with pytest.raises(UnsafeFileError) as refused:
            read()
        message = str(refused.value)
        assert "\n" not in message and str(path) in message
        assert (
            ("os.system" in message or "posix.system" in message)
            if kind == "pickle"
            else ("model.native_size._target_='builtins.open'" in message)
        )
    assert untouched(victim)


@pytest.mark.parametrize("kind", ["pickle", "target"])
def test_every_entry_point_refuses_a_hostile_file_in_one_line(kind, hostile, victim, tmp_path):
    from colorlab.bench import bench
    from colorlab.colorize import colorize
    from colorlab.demo import serve
    from colorlab.evaluate import evaluate
    from colorlab.export import export
    from colorlab.report import report
    from colorlab.train import train

    path = hostile[kind]
    colourful().save(tmp_path / "photo.png")
    sweep = tmp_path / "sweep" / "0"
    (sweep / "checkpoints").mkdir(parents=True)
    shutil.copy(path, sweep / "checkpoints" / "best-000.ckpt")
    (sweep / "run.json").write_text(json.dumps({"status": "finished", "name": "hostile"}))
    OmegaConf.save(
        {"data": {"_target_": "colorlab.data.SyntheticDataModule", "image_size": 32}},
        sweep / "config.yaml",
    )
    runs = {
        "colorize": lambda: colorize(
            compose_config(
                "colorize",
                f"ckpt={path}",
                f"input={tmp_path / 'photo.png'}",
                f"output={tmp_path / 'c'}",
            )
        ),
        "evaluate": lambda: evaluate(
            compose_config(
                "evaluate", f"ckpt={path}", f"run_dir={tmp_path / 'e'}", "data.num_images=6"
            )
        ),
        "export": lambda: export(
            compose_config("export", f"ckpt={path}", f"output={tmp_path / 'm.safetensors'}")
        ),
        "report": lambda: report(
            compose_config("report", f"runs={tmp_path / 'sweep'}", f"output={tmp_path / 'r'}")
        ),
        "demo": lambda: serve(
            compose_config("demo", f"ckpt={tmp_path / 'sweep'}", "demo.port=7991"), block=False
        ),
        "bench": lambda: bench(
            compose_config(
                "bench", f"bench.ckpt={path}", "bench.rows=[colorize]", f"run_dir={tmp_path / 'b'}"
            )
        ),
        "train": lambda: train(
            compose_train(*TINY, "logger=none", f"ckpt_path={path}", run_dir=tmp_path / "t")
        ),
    }
    for name, run in runs.items():
        with pytest.raises(UnsafeFileError):
            run()
        assert untouched(victim), name
    assert not (tmp_path / "t" / "config.yaml").exists()  # the refused resume wrote nothing
    assert not (tmp_path / "m.safetensors").exists() and not (tmp_path / "r").exists()


@pytest.mark.slow
def test_a_hostile_file_through_the_command_line_is_one_line_and_exit_2(hostile, victim, tmp_path):
    colourful().save(tmp_path / "photo.png")
    for kind, path in hostile.items():
        result = run_colorize(path, tmp_path / "photo.png", tmp_path / kind, tmp_path)
        assert result.returncode == 2, result.stderr[-2000:]
        lines = result.stderr.strip().splitlines()
        assert lines[-1].startswith("colorlab: error: ") and "Traceback" not in result.stderr
        assert "trust_checkpoint=true" in lines[-1]
        assert not (tmp_path / kind).exists()
    assert untouched(victim)


@pytest.mark.slow
def test_a_run_folder_with_a_hostile_config_yaml_is_refused_by_the_report(
    checkpoints, victim, tmp_path
):
    run = tmp_path / "sweep" / "0"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(checkpoints["baseline"], run / "checkpoints" / "best-000.ckpt")
    (run / "run.json").write_text(json.dumps({"status": "finished", "name": "r0"}))
    OmegaConf.save(
        {
            "data": {
                "_target_": "colorlab.data.SyntheticDataModule",
                "image_size": {"_target_": "builtins.open", "_args_": [str(victim), "w"]},
            }
        },
        run / "config.yaml",
    )
    result = run_cli(
        "colorlab.report", f"runs={tmp_path / 'sweep'}", f"output={tmp_path / 'r'}", cwd=tmp_path
    )
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert "data.image_size._target_='builtins.open'" in last and "config.yaml" in last
    assert untouched(victim) and not (tmp_path / "r" / "report.html").exists()


def test_a_trusted_file_is_unpickled_in_full_with_a_warning(hostile, victim, caplog):
    colorizer = load_colorizer(hostile["pickle"], device="cpu", trusted=True)
    assert victim.with_suffix(".created").exists()  # what trusting a file means
    assert "unpickled in full" in caplog.text
    assert colorizer.colorize(colourful()).size == (48, 40)


def test_a_checkpoint_naming_torch_load_is_refused_not_chained(checkpoints, tmp_path, victim):
    contents = torch.load(checkpoints["baseline"], weights_only=True)
    contents["hyper_parameters"]["loss"] = {
        "_target_": "torch.load",
        "f": str(with_payload(checkpoints["baseline"], tmp_path / "p.ckpt", victim)),
        "weights_only": False,
    }
    torch.save(contents, tmp_path / "chain.ckpt")
    with pytest.raises(UnsafeFileError, match=r"loss._target_='torch.load'"):
        load_colorizer(tmp_path / "chain.ckpt", device="cpu")
    assert untouched(victim)


def test_an_interpolation_in_a_files_config_is_refused(checkpoints, tmp_path, victim):
    # colorlab saves configs resolved: ${oc.env:…} or ${oc.decode:…} in a file is someone else's
    contents = torch.load(checkpoints["baseline"], weights_only=True)
    decoded = f"{{_target_: builtins.open, _args_: [{victim}, w]}}"
    contents["hyper_parameters"]["model"]["native_size"] = f"${{oc.decode:'{decoded}'}}"
    torch.save(contents, tmp_path / "decode.ckpt")
    with pytest.raises(UnsafeFileError, match=r"model.native_size=.* is an interpolation"):
        load_colorizer(tmp_path / "decode.ckpt", device="cpu")
    assert untouched(victim)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["baseline", "classification", "vgg16"])
def test_safetensors_export_colorizes_exactly_like_its_checkpoint(name, checkpoints, tmp_path):
    from safetensors import safe_open

    output = tmp_path / f"{name}.safetensors"
    result = run_cli(
        "colorlab.export", f"ckpt={checkpoints[name]}", f"output={output}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "(safetensors)" in result.stdout
    with safe_open(str(output), framework="pt") as file:
        metadata = json.loads(file.metadata()["colorlab"])
    assert set(metadata) == {"image_size", "model", "loss", "label"}
    from_ckpt = load_colorizer(checkpoints[name], device="cpu")
    from_file = load_colorizer(output, device="cpu")
    assert from_file.label == from_ckpt.label and from_file.size == from_ckpt.size
    picture = colourful((61, 45), seed=2)
    assert from_file.colorize(picture).tobytes() == from_ckpt.colorize(picture).tobytes()
    # the safetensors file runs through colorize's command line too
    picture.save(tmp_path / "p.png")
    result = run_colorize(output, tmp_path / "p.png", tmp_path / "o", tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "o" / "p.png").is_file()


def test_a_safetensors_file_cannot_resume_and_a_damaged_one_is_one_line(checkpoints, tmp_path):
    from colorlab.export import export_safetensors
    from colorlab.training.checkpoints import check_resumable

    output = tmp_path / "m.safetensors"
    export_safetensors(checkpoints["baseline"], output)
    with pytest.raises(ColorlabError, match="holds weights only"):
        check_resumable(output, {})
    (tmp_path / "bad.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(ColorlabError, match="cannot be read as safetensors"):
        load_colorizer(tmp_path / "bad.safetensors", device="cpu")
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(ColorlabError, match="not a safetensors file written by colorlab"):
        load_colorizer(tmp_path / "foreign.safetensors", device="cpu")


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides",
    [
        ["model=unet", "model.backbone=resnet18", "model.pretrained=false", "loss=huber"],
        ["model=fusion", "model.pretrained=false", "loss=l1", "optimizer=adam", "scheduler=cosine"],
        ["model=vgg16_fusion", "model.pretrained=false", "optimizer=adamw", "scheduler=plateau"],
        ["loss=classification", "loss.l1_weight=1", "optimizer=adam"],
        ["loss=l1", "loss.adversarial_weight=0.1", "loss.adversarial_mode=lsgan"],
    ],
    ids=["unet-huber", "fusion-l1-adam-cosine", "vgg16_fusion-adamw-plateau", "cls-l1", "adv"],
)
def test_checkpoints_of_every_kind_load_safely_and_resume(overrides, tmp_path):
    """Each model, loss, optimizer and scheduler once: its checkpoint passes the safe reader,
    the resume (through Lightning's loading) and the colorizer."""
    from colorlab.train import train

    tiny = [*TINY, "data.num_images=16", "logger=none", "test_after_fit=false"]
    first = train(compose_train(*tiny, *overrides, run_dir=tmp_path / "first"))
    last = Path(first["run_dir"]) / "checkpoints" / "last.ckpt"
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(last)) == []
    resumed = train(
        compose_train(
            *tiny,
            *overrides,
            "trainer.max_epochs=2",
            f"ckpt_path={last}",
            run_dir=tmp_path / "second",
        )
    )
    assert resumed["epochs"] == 2
    assert load_colorizer(resumed["best_checkpoint"], device="cpu").colorize(colourful()).size == (
        48,
        40,
    )


@pytest.mark.slow
def test_a_safetensors_file_serves_evaluate_the_demo_and_the_bench(checkpoints, tmp_path):
    from colorlab.bench import bench
    from colorlab.evaluate import evaluate
    from colorlab.export import export_safetensors
    from colorlab.web import find_checkpoints

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    model = run / "model.safetensors"
    export_safetensors(checkpoints["baseline"], model)
    results = evaluate(
        compose_config(
            "evaluate",
            f"ckpt=[{model},{checkpoints['baseline']}]",
            f"run_dir={tmp_path / 'e'}",
            "data.num_images=6",
            "data.image_size=32",
        )
    )["metrics"]
    first, second = (scores for label, scores in results.items() if label != "gray")
    assert first == second  # the same network: the same scores
    assert model in find_checkpoints([str(run)])  # the demo over a folder finds it
    records = bench(
        compose_config(
            "bench",
            f"bench.ckpt={model}",
            "bench.rows=[colorize]",
            "bench.colorize_images=4",
            "bench.colorize_size=64",
            "bench.colorize_batch=2",
            f"run_dir={tmp_path / 'b'}",
            "trainer.accelerator=cpu",
        )
    )
    assert records[0]["row"] == "colorize" and records[0]["images_per_s"] > 0
