"""The published networks (`colorlab.zoo`): the authors' released layouts load, forward as the
authors' code does, and serve wherever a checkpoint is taken; ``model=eccv16`` and
``model=siggraph17`` train, resume, reload and export like any model.

No file can be downloaded here: each test writes weights in the released layout itself, from
an independent re-statement of the authors' networks (``AuthorsECCV16``, ``AuthorsSIGGRAPH17``,
written from richzhang/colorization's ``colorizers/`` without calling colorlab)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from colorlab import load_colorizer
from colorlab.errors import ColorlabError
from colorlab.zoo import PUBLISHED, eccv16, load_published, siggraph17
from colorlab.zoo.__main__ import listing
from conftest import TINY, colourful, compose_train, run_cli, run_colorize


# -- the authors' networks, restated -------------------------------------------------------------
def _stage(cin: int, cout: int, convs: int, stride: int = 1, dilation: int = 1) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i in range(convs):
        layers.append(
            nn.Conv2d(
                cin if i == 0 else cout,
                cout,
                3,
                stride=stride if i == convs - 1 else 1,
                padding=dilation,
                dilation=dilation,
            )
        )
        layers.append(nn.ReLU(True))
    return layers


class AuthorsECCV16(nn.Module):
    """colorizers/eccv16.py's ECCVGenerator."""

    def __init__(self) -> None:
        super().__init__()
        self.model1 = nn.Sequential(*_stage(1, 64, 2, stride=2), nn.BatchNorm2d(64))
        self.model2 = nn.Sequential(*_stage(64, 128, 2, stride=2), nn.BatchNorm2d(128))
        self.model3 = nn.Sequential(*_stage(128, 256, 3, stride=2), nn.BatchNorm2d(256))
        self.model4 = nn.Sequential(*_stage(256, 512, 3), nn.BatchNorm2d(512))
        self.model5 = nn.Sequential(*_stage(512, 512, 3, dilation=2), nn.BatchNorm2d(512))
        self.model6 = nn.Sequential(*_stage(512, 512, 3, dilation=2), nn.BatchNorm2d(512))
        self.model7 = nn.Sequential(*_stage(512, 512, 3), nn.BatchNorm2d(512))
        self.model8 = nn.Sequential(
            nn.ConvTranspose2d(512, 256, kernel_size=4, stride=2, padding=1),
            nn.ReLU(True),
            *_stage(256, 256, 2),
            nn.Conv2d(256, 313, kernel_size=1),
        )
        self.model_out = nn.Conv2d(313, 2, kernel_size=1, bias=False)

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        x = (L - 50.0) / 100.0
        for block in (
            self.model1, self.model2, self.model3, self.model4,
            self.model5, self.model6, self.model7, self.model8,
        ):  # fmt: skip
            x = block(x)
        ab = self.model_out(torch.softmax(x, dim=1))
        return F.interpolate(ab, scale_factor=4, mode="bilinear") * 110.0


class AuthorsSIGGRAPH17(nn.Module):
    """colorizers/siggraph17.py's SIGGRAPHGenerator."""

    def __init__(self) -> None:
        super().__init__()
        self.model1 = nn.Sequential(*_stage(4, 64, 2), nn.BatchNorm2d(64))
        self.model2 = nn.Sequential(*_stage(64, 128, 2), nn.BatchNorm2d(128))
        self.model3 = nn.Sequential(*_stage(128, 256, 3), nn.BatchNorm2d(256))
        self.model4 = nn.Sequential(*_stage(256, 512, 3), nn.BatchNorm2d(512))
        self.model5 = nn.Sequential(*_stage(512, 512, 3, dilation=2), nn.BatchNorm2d(512))
        self.model6 = nn.Sequential(*_stage(512, 512, 3, dilation=2), nn.BatchNorm2d(512))
        self.model7 = nn.Sequential(*_stage(512, 512, 3), nn.BatchNorm2d(512))
        self.model8up = nn.Sequential(nn.ConvTranspose2d(512, 256, 4, stride=2, padding=1))
        self.model8 = nn.Sequential(nn.ReLU(True), *_stage(256, 256, 2), nn.BatchNorm2d(256))
        self.model9up = nn.Sequential(nn.ConvTranspose2d(256, 128, 4, stride=2, padding=1))
        self.model9 = nn.Sequential(nn.ReLU(True), *_stage(128, 128, 1), nn.BatchNorm2d(128))
        self.model10up = nn.Sequential(nn.ConvTranspose2d(128, 128, 4, stride=2, padding=1))
        self.model10 = nn.Sequential(
            nn.ReLU(True), nn.Conv2d(128, 128, 3, padding=1), nn.LeakyReLU(negative_slope=0.2)
        )
        self.model3short8 = nn.Sequential(nn.Conv2d(256, 256, 3, padding=1))
        self.model2short9 = nn.Sequential(nn.Conv2d(128, 128, 3, padding=1))
        self.model1short10 = nn.Sequential(nn.Conv2d(64, 128, 3, padding=1))
        self.model_class = nn.Sequential(nn.Conv2d(256, 529, kernel_size=1))
        self.model_out = nn.Sequential(nn.Conv2d(128, 2, kernel_size=1), nn.Tanh())

    def forward(self, L, ab=None, mask=None):
        ab = torch.cat((L * 0, L * 0), dim=1) if ab is None else ab
        mask = L * 0 if mask is None else mask
        conv1_2 = self.model1(torch.cat(((L - 50.0) / 100.0, ab / 110.0, mask), dim=1))
        conv2_2 = self.model2(conv1_2[:, :, ::2, ::2])
        conv3_3 = self.model3(conv2_2[:, :, ::2, ::2])
        conv4_3 = self.model4(conv3_3[:, :, ::2, ::2])
        conv7_3 = self.model7(self.model6(self.model5(conv4_3)))
        conv8_3 = self.model8(self.model8up(conv7_3) + self.model3short8(conv3_3))
        conv9_3 = self.model9(self.model9up(conv8_3) + self.model2short9(conv2_2))
        conv10_2 = self.model10(self.model10up(conv9_3) + self.model1short10(conv1_2))
        return self.model_out(conv10_2) * 110.0


AUTHORS = {"eccv16": AuthorsECCV16, "siggraph17": AuthorsSIGGRAPH17}


def _released(name: str, seed: int = 0) -> nn.Module:
    """The authors' network with random weights and non-trivial BatchNorm statistics (and, for
    ECCV16, 313 bin centres on the 10-unit grid in its output conv and logits sharp enough to
    prefer some), in eval mode."""
    torch.manual_seed(seed)
    net = AUTHORS[name]()
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.2)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.2)
                module.num_batches_tracked.fill_(1000)
        if name == "eccv16":
            grid = torch.stack(
                torch.meshgrid(
                    torch.arange(-110, 111, 10), torch.arange(-110, 111, 10), indexing="ij"
                ),
                dim=-1,
            ).reshape(-1, 2)
            centres = grid[torch.randperm(len(grid))[:313]].float()
            net.model_out.weight.copy_((centres / 110.0).t()[:, :, None, None])
            net.model8[-1].weight.mul_(200.0)  # a peaked distribution over the bins, not uniform
    return net.eval()


@pytest.fixture(scope="session")
def hub(tmp_path_factory) -> Path:
    """A ``$TORCH_HOME`` whose hub folder holds both released files (as written by the
    authors' networks restated above, seeds 0)."""
    home = tmp_path_factory.mktemp("torch-home")
    folder = home / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    for name, entry in PUBLISHED.items():
        torch.save(_released(name).state_dict(), folder / entry.file_name)
    return home


def _L(size: int = 64, batch: int = 2, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    smooth = F.interpolate(torch.rand(batch, 1, 8, 8, generator=generator), size=(size, size))
    return smooth * 100


# -- the released layouts ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["eccv16", "siggraph17"])
def test_released_layout_loads_and_forwards_as_the_authors(name, hub, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(hub))
    reference = _released(name)
    net = load_published(name)  # from torch.hub's folder, strictly: no missing/unexpected key
    L = _L()
    with torch.no_grad():
        ours, theirs = net(L), reference(L)
    assert ours.shape == theirs.shape == (2, 2, 64, 64)
    assert theirs.abs().max() > 5  # colours in Lab units, not a degenerate output
    assert (ours - theirs).abs().max() < 1e-4
    if name == "siggraph17":  # a few hint points, and their mask
        ab = torch.zeros(2, 2, 64, 64)
        mask = torch.zeros(2, 1, 64, 64)
        ab[:, 0, 10:12, 20:22], ab[:, 1, 10:12, 20:22] = 60.0, -40.0
        mask[:, :, 10:12, 20:22] = 1.0
        with torch.no_grad():
            hinted, reference_hinted = net(L, ab, mask), reference(L, ab, mask)
        assert (hinted - reference_hinted).abs().max() < 1e-4
        assert (hinted - ours).abs().max() > 1e-3  # the hints change the prediction
    else:
        with pytest.raises(ValueError, match="no hints"):
            net(L, torch.zeros(2, 2, 64, 64))


@pytest.mark.parametrize(("name", "millions"), [("eccv16", 32.2), ("siggraph17", 34.2)])
def test_parameter_counts_are_the_papers(name, millions, hub, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(hub))
    authors = sum(p.numel() for p in AUTHORS[name]().parameters())
    ours = load_published(name)
    ours_count = sum(p.numel() for p in ours.parameters()) + sum(
        b.numel() for n, b in ours.named_buffers() if n.endswith("head.bins")
    )  # ECCV16's output conv is kept as its bins' centres
    assert abs(authors / 1e6 - millions) <= 0.1 and ours_count == authors
    assert PUBLISHED[name].parameters == millions


def test_a_wrong_or_missing_file_is_one_line_naming_it(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-home"))
    monkeypatch.setenv("COLORLAB_OFFLINE", "1")
    entry = PUBLISHED["eccv16"]
    with pytest.raises(ColorlabError) as missing:
        load_published("eccv16")
    message = str(missing.value)
    assert entry.file_name in message and entry.url in message and str(entry.path) in message
    state = torch.load(hub / "hub" / "checkpoints" / entry.file_name, weights_only=True)
    del state["model4.2.weight"]
    torch.save(state, tmp_path / "short.pth")
    with pytest.raises(
        ColorlabError, match=r"short\.pth is not eccv16's released layout.*model4\.2\.weight"
    ):
        load_published("eccv16", tmp_path / "short.pth")
    (tmp_path / "text.pth").write_text("not weights")
    with pytest.raises(ColorlabError, match=r"text\.pth cannot be read"):
        load_published("siggraph17", tmp_path / "text.pth")
    sig = torch.load(hub / "hub" / "checkpoints" / PUBLISHED["siggraph17"].file_name)
    torch.save(sig, tmp_path / "swapped.pth")
    with pytest.raises(ColorlabError, match="not eccv16's released layout"):
        load_published("eccv16", tmp_path / "swapped.pth")
    with pytest.raises(ColorlabError, match="choose one of: eccv16, siggraph17"):
        load_published("eccv17")


def test_zoo_lists_the_published_networks_and_their_files(hub, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(hub))
    text = listing()
    for entry in PUBLISHED.values():
        assert f"zoo:{entry.name}" in text and entry.url in text and entry.file_name in text
    assert text.count("present") == 2 and "32.2 M" in text and "34.2 M" in text
    result = run_cli("colorlab.zoo", cwd=tmp_path, env={"TORCH_HOME": str(tmp_path / "none")})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("missing") == 2 and "SIGGRAPH 2017" in result.stdout
    assert list(tmp_path.iterdir()) == []  # lists, writes nothing


# -- zoo:NAME wherever a checkpoint is taken ---------------------------------------------------
@pytest.mark.slow
def test_zoo_names_colorize_on_the_command_line(hub, tmp_path):
    photo = tmp_path / "photo.png"
    colourful((90, 70)).save(photo)
    result = run_cli(
        "colorlab.colorize",
        "ckpt=zoo:eccv16",
        f"input={photo}",
        "output=out",
        cwd=tmp_path,
        env={"TORCH_HOME": str(hub)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    with Image.open(tmp_path / "out" / "photo.png") as out:
        assert out.size == (90, 70) and out.mode == "RGB"
        rgb = np.asarray(out).astype(int)
    assert np.abs(rgb[..., 0] - rgb[..., 2]).max() > 0  # coloured, not gray

    missing = run_colorize("zoo:siggraph17", photo, tmp_path / "none", cwd=tmp_path)
    assert missing.returncode == 2
    lines = missing.stderr.strip().splitlines()
    assert len(lines) == 1 and "siggraph17-df00044c.pth" in lines[0] and "https://" in lines[0]
    assert not (tmp_path / "none").exists()


def test_zoo_colorizes_as_the_authors_demo_at_256_px(hub, monkeypatch):
    """The colorize path runs the network at 256 px and upsamples ab bilinearly, as the
    authors' demo does (L resized, ab back to the photo's size, the photo's own L kept)."""
    monkeypatch.setenv("TORCH_HOME", str(hub))
    colorizer = load_colorizer("zoo:siggraph17", device="cpu")
    assert colorizer.size == 256 and colorizer.head_kind == "regression"
    assert colorizer.label == "zoo:siggraph17"
    reference = _released("siggraph17")
    L = _L(size=256, batch=1)
    with torch.no_grad():
        ab = colorizer.predict_small_ab(L) * 128
        assert (ab - reference(L)).abs().max() < 1e-4


def test_zoo_network_exports_to_safetensors_and_onnx(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(hub))
    from colorlab.export import export_safetensors
    from colorlab.inference.onnx import export_onnx

    export_safetensors("zoo:eccv16", tmp_path / "eccv16.safetensors")
    export_onnx("zoo:eccv16", tmp_path / "eccv16.onnx")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-hub"))  # the exports need no file
    original = _released("eccv16")
    L = _L(size=64, batch=1)
    with torch.no_grad():
        expected = original(L) / 128
    for file in ("eccv16.safetensors", "eccv16.onnx"):
        colorizer = load_colorizer(tmp_path / file, device="cpu")
        assert colorizer.label == "zoo:eccv16"
        assert (colorizer.net.predict_ab(L) - expected).abs().max() < 1e-3


def test_the_page_and_its_folder_search_take_zoo_names(hub, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(hub))
    from colorlab.web import Colorizers, find_checkpoints

    found = find_checkpoints(["zoo:eccv16", "zoo:siggraph17"])
    assert [str(p) for p in found] == ["zoo:eccv16", "zoo:siggraph17"]
    colorizer = Colorizers("cpu").get(found[0])
    assert colorizer.head_kind == "classification" and colorizer.net.head.temperature == 1.0


@pytest.mark.slow
def test_evaluate_puts_both_published_networks_beside_a_run(hub, checkpoints, tmp_path):
    result = run_cli(
        "colorlab.evaluate",
        f"ckpt=[zoo:eccv16,zoo:siggraph17,{checkpoints['baseline']}]",
        "data.num_images=6",
        "data.num_workers=0",
        "data.image_size=64",
        "num_images=2",
        "hydra.run.dir=eval",
        "device=cpu",
        "logger=none",
        cwd=tmp_path,
        env={"TORCH_HOME": str(hub)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    names = list(report["metrics"])
    assert names[:3] == ["gray", "zoo:eccv16", "zoo:siggraph17"] and len(names) == 4
    assert names[3].startswith("baseline-mse@")
    assert report["checkpoints"]["zoo:eccv16"] == "zoo:eccv16"
    for name in names[1:3]:
        assert report["metrics"][name]["colorfulness_pred"] > 0.5  # coloured rows
    table = (tmp_path / "eval" / "metrics.md").read_text()
    assert "| zoo:eccv16 |" in table and "| zoo:siggraph17 |" in table


# -- model=eccv16 and model=siggraph17 as colorlab models ------------------------------------------
def test_pretrained_starts_from_the_released_weights_mapped_onto_colorlab_bins(hub, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(hub))
    from colorlab.color import ab_gamut
    from colorlab.losses import ClassificationLoss

    head = ClassificationLoss.head_for()
    released = _released("eccv16").state_dict()
    net = eccv16(pretrained=True, head=head)
    assert torch.equal(net.model5[2].weight, released["model5.2.weight"])
    assert torch.equal(net.model1[4].running_var, released["model1.4.running_var"])
    centres = released["model_out.weight"][:, :, 0, 0].t() * 110
    bins = ab_gamut()
    nearest = torch.cdist(bins, centres).argmin(dim=1)
    assert net.head.conv.weight.shape[0] == len(bins) == 261
    assert torch.equal(net.head.conv.weight, released["model8.6.weight"][nearest])
    before = net.head.conv.bias.clone()
    net.head.start_from_prior(torch.full((261,), 1 / 261))
    assert torch.equal(net.head.conv.bias, before)  # fine-tuning keeps the authors' logits

    released = _released("siggraph17").state_dict()
    net = siggraph17(pretrained=True, head=head)
    cells = ((bins + 110) / 10).round().long()
    rows = cells[:, 0] * 23 + cells[:, 1]
    assert torch.equal(net.head.model_class.conv.weight, released["model_class.0.weight"][rows])
    assert torch.equal(net.head.model_out[0].weight, released["model_out.0.weight"])
    regression = siggraph17(pretrained=True)  # without the branch: the released one left out
    assert regression.head.model_class is None


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides",
    [["model=eccv16"], ["model=siggraph17", "loss.l1_weight=1.16"]],
    ids=["eccv16", "siggraph17"],
)
def test_classification_training_resumes_reloads_and_exports(overrides, tmp_path):
    from colorlab.inference.onnx import export_onnx
    from colorlab.train import train

    common = [
        *overrides,
        "loss=classification",
        *TINY,
        "data.image_size=64",
        "data.num_images=12",
        "logger=none",
        "test_after_fit=false",
        "~callbacks.samples",
    ]
    first = train(compose_train(*common, run_dir=tmp_path / "first"))
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    resumed = train(
        compose_train(
            *common, f"ckpt_path={last}", "trainer.max_epochs=2", run_dir=tmp_path / "again"
        )
    )
    final = torch.load(tmp_path / "again" / "checkpoints" / "last.ckpt", weights_only=True)
    assert final["epoch"] == 1  # resumed after epoch 0, ran epoch 1
    colorizer = load_colorizer(resumed["best_checkpoint"], device="cpu")
    picture = colorizer.colorize(colourful((70, 50)))
    assert picture.size == (70, 50)
    export_onnx(first["best_checkpoint"], tmp_path / "model.onnx")
    torch_net = load_colorizer(first["best_checkpoint"], device="cpu").net
    onnx_net = load_colorizer(tmp_path / "model.onnx", device="cpu").net
    L = _L(size=64, batch=2)
    with torch.no_grad():
        assert (onnx_net.predict_ab(L) - torch_net.predict_ab(L)).abs().max() < 1e-3


def _module(tmp_path, *overrides):
    from colorlab.configs import plain
    from colorlab.training.module import ColorizationModule

    cfg = compose_train(*overrides, run_dir=tmp_path)
    return ColorizationModule(
        model=plain(cfg.model), loss=plain(cfg.loss), optimizer=plain(cfg.optimizer)
    )


def test_siggraph17_under_classification_trains_its_bins_and_predicts_by_regression(
    tmp_path, caplog
):
    from colorlab.models.heads import BranchOutput

    module = _module(tmp_path, "model=siggraph17", "loss=classification", "loss.l1_weight=1.16")
    L = torch.rand(2, 1, 64, 64) * 100
    output = module.net(L)
    assert isinstance(output, BranchOutput)
    assert output.logits.shape == (2, 261, 16, 16) and output.ab.shape == (2, 2, 64, 64)
    assert torch.equal(module(L), output.ab)  # the prediction is the regression branch's
    batch = {"L": L, "ab": torch.rand(2, 2, 64, 64) * 0.4 - 0.2, "rgb": torch.rand(2, 3, 64, 64)}
    module.loss_fn.set_prior(torch.full((261,), 1 / 261))
    terms = module.loss_fn.terms(output, batch)
    assert set(terms) == {"classification", "l1"}
    terms["l1"].backward()  # the L1 term reaches the regression branch, not the bins
    assert module.net.head.model_out[0].weight.grad.abs().sum() > 0
    assert module.net.head.model_class.conv.weight.grad is None
    assert "regression branch" not in caplog.text
    _module(tmp_path / "b", "model=siggraph17", "loss=classification")
    assert "trains only through loss.l1_weight" in caplog.text


def test_a_wrong_layout_names_the_key_and_the_choices(tmp_path):
    from colorlab.errors import OptionError

    with pytest.raises(OptionError, match=r"model\.layout='ours'.*colorlab, released"):
        _module(tmp_path, "model=eccv16", "model.layout=ours")
    with pytest.raises(OptionError, match=r"model\.layout='released'.*loss=classification"):
        _module(tmp_path, "model=siggraph17", "model.layout=released", "loss=l1")
