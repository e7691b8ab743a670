"""ONNX export: the whole prediction path in one file, run by onnxruntime behind load_colorizer."""

import re

import numpy as np
import pytest
import torch
from PIL import Image

from colorlab import load_colorizer
from colorlab.errors import ColorlabError
from colorlab.inference.onnx import export_onnx, read_metadata
from conftest import TINY, colourful, compose_train, run_cli, run_colorize


@pytest.fixture(scope="session")
def unet_resnet18(tmp_path_factory):
    from colorlab.train import train

    run_dir = tmp_path_factory.mktemp("run-unet")
    cfg = compose_train(
        "model=unet",
        "model.backbone=resnet18",
        "model.pretrained=false",
        *TINY,
        "data.num_images=16",
        "logger=none",
        "test_after_fit=false",
        "~callbacks.progress_bar",
        run_dir=run_dir,
    )
    return train(cfg)["best_checkpoint"]


@pytest.mark.parametrize("name", ["baseline", "classification", "unet_resnet18"])
def test_onnx_predicts_the_same_ab_as_pytorch_at_any_batch_and_size(
    name, checkpoints, unet_resnet18, tmp_path
):
    ckpt = unet_resnet18 if name == "unet_resnet18" else checkpoints[name]
    metadata = export_onnx(ckpt, tmp_path / "model.onnx")
    assert read_metadata(tmp_path / "model.onnx") == metadata
    assert metadata["head_kind"] == ("classification" if name == "classification" else "regression")
    torch_net = load_colorizer(ckpt, device="cpu")
    onnx_net = load_colorizer(tmp_path / "model.onnx", device="cpu")
    assert onnx_net.label == torch_net.label and onnx_net.head_kind == torch_net.head_kind
    generator = torch.Generator().manual_seed(0)
    for shape in [(1, 1, 32, 32), (3, 1, 64, 96)]:  # dynamic batch, height and width
        L = torch.rand(*shape, generator=generator) * 100
        reference = torch_net.net.predict_ab(L)
        assert (onnx_net.net.predict_ab(L) - reference).abs().max() < 1e-3


def test_the_temperature_is_baked_in_and_another_one_is_refused(checkpoints, tmp_path):
    export_onnx(checkpoints["classification"], tmp_path / "t1.onnx", temperature=1.0)
    export_onnx(checkpoints["classification"], tmp_path / "t01.onnx", temperature=0.1)
    L = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(1)) * 100
    torch_net = load_colorizer(checkpoints["classification"], device="cpu").net
    for file, temperature in (("t1.onnx", 1.0), ("t01.onnx", 0.1)):
        onnx_net = load_colorizer(tmp_path / file, device="cpu").net
        expected = torch_net.predict_ab(L, temperature)
        assert (onnx_net.predict_ab(L) - expected).abs().max() < 1e-3
    with pytest.raises(ColorlabError, match="exported with temperature 0.1; export again"):
        load_colorizer(tmp_path / "t01.onnx", device="cpu", temperature=0.5).colorize(colourful())


@pytest.mark.slow
def test_colorize_with_the_onnx_file_writes_the_same_pictures(checkpoints, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, size in enumerate([(517, 333), (48, 40), (64, 64)]):
        colourful(size, seed=i).save(photos / f"p{i}.png")
    exported = run_cli(
        "colorlab.export", f"ckpt={checkpoints['baseline']}", "output=model.onnx", cwd=tmp_path
    )
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert "exported to model.onnx (opset 17)" in exported.stdout
    for ckpt, out in ((checkpoints["baseline"], "torch"), (tmp_path / "model.onnx", "onnx")):
        result = run_cli(
            "colorlab.colorize", f"ckpt={ckpt}", f"input={photos}", f"output={out}", cwd=tmp_path
        )
        assert result.returncode == 0, result.stderr[-2000:]
    for i in range(3):
        a = np.asarray(Image.open(tmp_path / "torch" / f"p{i}.png")).astype(int)
        b = np.asarray(Image.open(tmp_path / "onnx" / f"p{i}.png")).astype(int)
        assert a.shape == b.shape and np.abs(a - b).max() <= 1


@pytest.mark.slow
def test_export_refusals_are_one_line(checkpoints, tmp_path):
    (tmp_path / "taken.onnx").write_bytes(b"x")
    (tmp_path / "dangling.onnx").symlink_to(tmp_path / "elsewhere.onnx")
    (tmp_path / "a-file").write_text("not a folder")
    cases = {
        "output=model.pt": "colorlab: error: output='model.pt' is not allowed; give a file name ending in .onnx or .safetensors",
        "output=taken.onnx": "colorlab: error: taken.onnx exists; choose another output or remove it",
        "export.opset=11": "colorlab: error: export.opset=11 is not allowed; use an integer ≥ 17",
        "output=dangling.onnx": f"colorlab: error: dangling.onnx is a link to {tmp_path / 'elsewhere.onnx'}, which does not exist; writing would create that file: choose another output or remove the link",
        "output=a-file/model.safetensors": "colorlab: error: cannot write a-file/model.safetensors: a-file is a file, not a folder; choose another output",
        "trust_checkpoint=maybe": "colorlab: error: trust_checkpoint='maybe' is not allowed; use true or false",
    }
    for override, message in cases.items():
        result = run_cli(
            "colorlab.export", f"ckpt={checkpoints['baseline']}", override, cwd=tmp_path
        )
        assert result.returncode == 2 and result.stderr.strip().splitlines()[-1] == message
    assert not (tmp_path / "elsewhere.onnx").exists()
    with pytest.raises(ColorlabError, match="cannot read .*taken.onnx as an ONNX file"):
        load_colorizer(tmp_path / "taken.onnx")
    import onnx

    export_onnx(checkpoints["baseline"], tmp_path / "plain.onnx")
    plain = onnx.load(str(tmp_path / "plain.onnx"))
    del plain.metadata_props[:]
    onnx.save(plain, str(tmp_path / "plain.onnx"))
    with pytest.raises(ColorlabError, match="not an ONNX file exported by colorlab.export"):
        load_colorizer(tmp_path / "plain.onnx")


def test_a_network_the_exporter_cannot_trace_is_one_line(checkpoints, tmp_path, monkeypatch):
    def unsupported(*args, **kwargs):
        raise RuntimeError(
            "Exporting the operator 'aten::weird' to ONNX opset 17 is not supported\nmore"
        )

    monkeypatch.setattr(torch.onnx, "export", unsupported)
    with pytest.raises(ColorlabError) as error:
        export_onnx(checkpoints["baseline"], tmp_path / "model.onnx")
    assert re.fullmatch(
        r"cannot export baseline-mse@\S+ to ONNX: RuntimeError: "
        r"Exporting the operator 'aten::weird' to ONNX opset 17 is not supported",
        str(error.value),
    )


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("{not json", "its colorlab metadata is corrupt \\(Expecting"),
        ('{"image_size": 32}', "multiple=None, not a positive integer"),
        ('{"image_size": 32, "multiple": 0, "model": {}, "loss": {}}', "multiple=0"),
        ('{"image_size": 32, "multiple": 8, "model": [], "loss": {}}', "model is not a config"),
        ("[1, 2]", "not a mapping"),
        (
            '{"image_size": 32, "multiple": 8, "model": {"_target_": "os.system"}, "loss": {}}',
            "model._target_='os.system' is not something colorlab builds",
        ),
    ],
)
def test_corrupt_onnx_metadata_is_one_line(checkpoints, tmp_path, value, problem):
    import onnx

    export_onnx(checkpoints["baseline"], tmp_path / "m.onnx")
    model = onnx.load(str(tmp_path / "m.onnx"))
    del model.metadata_props[:]
    model.metadata_props.add(key="colorlab", value=value)
    onnx.save(model, str(tmp_path / "m.onnx"))
    with pytest.raises(ColorlabError, match=problem):
        load_colorizer(tmp_path / "m.onnx", device="cpu")


@pytest.mark.slow
def test_onnxruntime_refusing_a_file_is_one_line_through_colorize(checkpoints, tmp_path):
    import onnx

    export_onnx(checkpoints["baseline"], tmp_path / "m.onnx")
    model = onnx.load(str(tmp_path / "m.onnx"))
    # the weights moved to an external data file that is then lost
    onnx.save(model, str(tmp_path / "ext.onnx"), save_as_external_data=True, location="ext.data")
    (tmp_path / "ext.data").unlink()
    colourful().save(tmp_path / "p.png")
    result = run_colorize(tmp_path / "ext.onnx", tmp_path / "p.png", tmp_path / "out", tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert (
        last.startswith("colorlab: error: onnxruntime cannot run")
        and "Traceback" not in result.stderr
    )
