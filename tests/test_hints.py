"""Colour hints: simulated in training (Zhang et al. 2017's scheme), taken by any model with
``model.hints=true``, given by the user in Python, in files and on the command line, and
scored against a number of points by ``colorlab.evaluate``."""

from __future__ import annotations

import json
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor

from colorlab import load_colorizer
from colorlab.color import rgb_to_l_ab
from colorlab.data.hints import HintSimulation, hint_simulation
from colorlab.errors import ColorlabError, OptionError
from colorlab.inference.colorizer import TrainedColorizer
from colorlab.inference.evaluation import HintSweep, hinted_name
from colorlab.inference.hints import as_hints, hint_map, parse_colour, read_hints, resize_hints
from colorlab.inference.network import TrainedNetwork
from colorlab.models import ColorizerBase
from colorlab.models.hint_spread import HintSpread, make_hint_spread
from conftest import TINY, colourful, compose_config, compose_train, run_cli


# -- simulation ---------------------------------------------------------------------------------
def test_hint_counts_follow_the_geometric_law():
    simulation = HintSimulation(stop_probability=0.125, max_points=64)
    counts = simulation.counts(40_000, torch.device("cpu"), torch.Generator().manual_seed(0))
    assert counts.min() == 0 and counts.max() <= 64
    assert (counts == 0).float().mean() == pytest.approx(1 / 8, abs=0.006)  # 1 in 8: none
    assert counts.float().mean() == pytest.approx(7.0, abs=0.15)  # (1 − p) / p
    for k in (1, 3, 8):
        assert (counts >= k).float().mean() == pytest.approx((7 / 8) ** k, abs=0.01)


def test_hint_squares_lie_inside_and_carry_the_true_mean_colour():
    generator = torch.Generator().manual_seed(3)
    ab = torch.rand(64, 2, 24, 32, generator=generator) * 1.6 - 0.8
    simulation = HintSimulation(sizes=(1, 9))
    hints = simulation.points(ab, torch.ones(64, dtype=torch.long), generator)
    sides = set()
    for image, truth in zip(hints, ab):
        rows, columns = torch.nonzero(image[2], as_tuple=True)
        top, bottom, left, right = rows.min(), rows.max(), columns.min(), columns.max()
        side = int(bottom - top + 1)
        assert side == int(right - left + 1) and len(rows) == side * side  # one square
        assert 1 <= side <= 9
        sides.add(side)
        square = truth[:, top : bottom + 1, left : right + 1]
        assert torch.allclose(image[:2, rows, columns], square.mean(dim=(1, 2))[:, None], atol=1e-5)
        assert image[:2][:, image[2] == 0].abs().max() == 0  # zero off the hint
    assert len(sides) >= 5  # the sizes vary


def test_points_centre_on_the_image_and_stay_inside():
    simulation = HintSimulation(sizes=(3, 3), max_points=16)
    ab = torch.zeros(400, 2, 40, 40)
    hints = simulation.points(ab, torch.full((400,), 16), torch.Generator().manual_seed(1))
    coverage = hints[:, 2].mean(dim=0)
    centre, border = coverage[14:26, 14:26].mean(), coverage[:5].mean()
    assert centre > 3 * border  # Gaussian around the centre, std a quarter of the side


def test_hint_options_are_checked_by_name():
    assert hint_simulation({"enabled": False, "stop_probability": 0.5}) is None
    assert hint_simulation(None) is None
    with pytest.raises(OptionError, match=r"hints\.stop_probability=2"):
        hint_simulation({"enabled": True, "stop_probability": 2})
    with pytest.raises(OptionError, match=r"hints\.sizes"):
        hint_simulation({"enabled": True, "sizes": [5, 2]})
    with pytest.raises(OptionError, match=r"hints\.enabled"):
        hint_simulation({"enabled": "yes"})
    with pytest.raises(OptionError, match="stop_probability, sizes, spread, max_points"):
        hint_simulation({"enabled": True, "density": 3})


def test_training_batches_get_hints_and_evaluation_batches_none(tmp_path):
    from colorlab.configs import build

    cfg = compose_train("model.hints=true", *TINY, "data.num_images=8", run_dir=tmp_path)
    assert cfg.data.hints.enabled is True
    datamodule = build(cfg.data, "data")
    raw = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    datamodule.trainer = types.SimpleNamespace(training=True)
    training = datamodule.on_after_batch_transfer(raw, 0)
    assert training["hints"].shape == (4, 3, 32, 32)
    datamodule.trainer = types.SimpleNamespace(training=False)
    assert "hints" not in datamodule.on_after_batch_transfer(raw, 0)
    plain = compose_train(*TINY, run_dir=tmp_path / "b")
    assert plain.data.hints.enabled is False  # a model without hints trains without


# -- models --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "overrides",
    [["model=baseline"], ["model=unet"], ["model=fusion", "model.pretrained=false"]],
    ids=["baseline", "unet", "fusion"],
)
def test_models_take_hints_and_their_spread_as_more_input_channels(overrides, tmp_path):
    from hydra.utils import instantiate

    cfg = compose_train(*overrides, "model.hints=true", run_dir=tmp_path)
    net = instantiate(cfg.model).eval()
    assert net.hints and isinstance(net.spread, HintSpread)
    L = torch.rand(2, 1, 64, 64) * 100
    hints = torch.zeros(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(net.predict_ab(L), net.predict_ab(L, hints=hints))  # zeros = none
        inputs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels == 7]
        assert len(inputs) == 1  # one conv takes L, hints, spread (a backbone sees L alone)
        hints[:, :2, 10:12, 20:22], hints[:, 2, 10:12, 20:22] = 0.4, 1.0
        seen = net.network_input(L, hints)
        assert seen.shape == (2, 7, 64, 64)
        assert seen[:, 6, 40, 40].gt(0).all()  # the spread's confidence reaches far pixels
        with pytest.raises(ValueError, match="B×3×H×W"):
            net(L, torch.zeros(2, 2, 64, 64))
    # model.hint_spread=null: the points alone, as checkpoints trained before it have them
    points_only = instantiate(
        compose_train(
            *overrides, "model.hints=true", "model.hint_spread=null", run_dir=tmp_path
        ).model
    )
    assert points_only.spread is None
    assert [m for m in points_only.modules() if getattr(m, "in_channels", 0) == 4]
    without = instantiate(compose_train(*overrides, run_dir=tmp_path).model)
    assert without.spread is None
    with pytest.raises(ValueError, match="trained without hints"):
        without(L, hints)


def _one_point(value: float, y: int, x: int, size: int = 64) -> Tensor:
    hints = torch.zeros(1, 3, size, size)
    hints[:, :2, y : y + 2, x : x + 2] = value
    hints[:, 2, y : y + 2, x : x + 2] = 1.0
    return hints


def test_the_spread_carries_a_points_colour_over_its_lightness_and_fades_to_gray():
    spread = HintSpread(sigma=0.25, lightness=10.0, prior=0.05, cells=16)
    L = torch.full((1, 1, 64, 64), 30.0)
    L[..., 32:] = 80.0  # the right half is another, lighter object
    assert torch.equal(spread(L, torch.zeros(1, 3, 64, 64)), torch.zeros(1, 3, 64, 64))
    out = spread(L, _one_point(0.5, 30, 10))
    ab, confidence = out[0, 0], out[0, 2]
    assert out.shape == (1, 3, 64, 64)
    assert ab[30, 10] == pytest.approx(0.5 * confidence[30, 10].item(), rel=1e-4)
    assert confidence[30, 10] > 0.9  # at the point: its colour
    assert 0.2 < ab[30, 28] < ab[30, 10]  # the same object, 18 px away: most of it
    assert ab[30, 46] < 0.1 * ab[30, 28]  # as far on the other side of the edge: hardly any
    assert ab[2, 2] < ab[30, 20] and confidence.max() < 1  # farther, grayer
    # distance alone (lightness: null) crosses the edge
    by_distance = HintSpread(lightness=None)(L, _one_point(0.5, 30, 10))[0, 0]
    assert by_distance[30, 46] > 0.5 * by_distance[30, 28]
    # two points: each pixel leans to the nearer one; the shape is kept for any size
    two = _one_point(0.5, 30, 4) + _one_point(-0.5, 30, 58)
    L_flat = torch.full((1, 1, 64, 64), 50.0)
    mixed = spread(L_flat, two)[0, 0]
    assert mixed[30, 8] > 0.2 and mixed[30, 56] < -0.2 and abs(mixed[30, 31]) < 0.05
    assert spread(torch.zeros(2, 1, 40, 56), torch.zeros(2, 3, 40, 56)).shape == (2, 3, 40, 56)


def test_a_prediction_with_hints_leans_to_their_spread_unless_blend_is_off():
    from colorlab.models import baseline

    L = torch.rand(1, 1, 64, 64) * 100
    hints = _one_point(0.6, 30, 30)
    torch.manual_seed(0)
    blended = baseline(hint_spread={"blend": True}, hints=True).eval()
    torch.manual_seed(0)
    plain = baseline(hint_spread={"blend": False}, hints=True).eval()
    with torch.no_grad():
        raw = plain.decode(plain(L, hints), (64, 64))
        assert torch.equal(plain.predict_ab(L, hints=hints), raw)  # blend off: the network's
        ab = blended.predict_ab(L, hints=hints)
        spread = blended.spread(L, hints)
        c = spread[:, 2:]
        assert torch.allclose(ab, (1 - c) * raw + c * spread[:, :2], atol=1e-5)
        assert abs(ab[0, 0, 30, 30] - 0.6) < abs(raw[0, 0, 30, 30] - 0.6)  # toward the hint
        assert torch.equal(blended.predict_ab(L), plain.predict_ab(L))  # no hints: no blend


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"blend": "yes"}, "hint_spread.blend"),
        ({"sigma": 0}, "hint_spread.sigma"),
        ({"lightness": -1}, "hint_spread.lightness"),
        ({"prior": "x"}, "hint_spread.prior"),
        ({"cells": 0}, "hint_spread.cells"),
        ({"radius": 3}, "sigma, lightness, prior, cells, blend"),
        ("bilateral", "use null or a group"),
    ],
)
def test_spread_options_are_checked_by_name(options, message):
    with pytest.raises(OptionError, match=message):
        make_hint_spread(options)


# -- inference: where a hint lands ---------------------------------------------------------------
class HintEcho(ColorizerBase):
    """A stand-in network that predicts exactly its hints' ab (zero elsewhere)."""

    def __init__(self) -> None:
        super().__init__(2, 1, 32, hints=True)

    def forward(self, L: Tensor, hints: Tensor | None = None) -> Tensor:
        x = self.network_input(L, hints)
        return x[:, 1:3] * (110 / 128)  # back from the network's scale to ab


def _echo_colorizer(size: int = 32) -> TrainedColorizer:
    network = TrainedNetwork(
        HintEcho(), size, {"_target_": "echo"}, {"_target_": "echo"}, Path("echo")
    )
    return TrainedColorizer(network, device="cpu")


def _redness(picture: Image.Image) -> np.ndarray:
    rgb = np.asarray(picture).astype(int)
    return rgb[..., 0] - rgb[..., 1]


def test_colorize_puts_each_hint_at_the_pixel_it_names():
    photo = Image.new("RGB", (96, 64), (128, 128, 128))
    colorizer = _echo_colorizer()
    for x, y in ((20, 10), (70, 50)):
        out = colorizer.colorize(photo, hints=[(x, y, "#ff0000")])
        red = _redness(out)
        peak_y, peak_x = np.unravel_index(red.argmax(), red.shape)
        assert abs(peak_x - x) <= 3 and abs(peak_y - y) <= 3  # the change is where the hint is
        assert red.max() > 40 and abs(red[5 if y > 32 else 60, 90 if x < 48 else 5]) <= 2

    def blue_area(hint_size: int) -> int:
        out = np.asarray(colorizer.colorize(photo, [(48, 32, (0, 0, 255))], hint_size)).astype(int)
        return int(((out[..., 2] - out[..., 0]) > 30).sum())

    assert blue_area(5) > 4 * blue_area(1) > 0  # a 5×5 square of model pixels, not one


def test_hint_map_carries_the_colours_lab_ab():
    m = hint_map(as_hints([(0, 0, "#3366cc"), (99, 49, [200, 40, 10])], 100, 50), (50, 100), 16)
    expected = rgb_to_l_ab(torch.tensor([0x33, 0x66, 0xCC]).float().view(1, 3, 1, 1) / 255)[1]
    assert torch.allclose(m[0, :2, 0, 0], expected.flatten(), atol=1e-6)
    assert m[0, 2].sum() == 2 and m[0, 2, 15, 15] == 1  # the far corner's pixel
    hints = as_hints([(0, 0, "#3366cc"), (99, 49, [200, 40, 10]), (40, 20, "#00ff00")], 100, 50)
    finer = hint_map(hints, (50, 100), 32)
    assert torch.allclose(resize_hints(finer, (16, 16)), hint_map(hints, (50, 100), 16))


@pytest.mark.parametrize(
    ("hints", "message"),
    [
        (
            [(10, 10, "#ff0000"), (200, 5, "#00ff00")],
            r"hint 2 at \(200, 5\) is outside the 96×64 photo",
        ),
        ([(10, 10, "red")], r"hint 1 colour 'red' is not '#rrggbb'"),
        ([(10, 10, (300, 0, 0))], r"hint 1 colour \(300, 0, 0\)"),
        ([{"x": 1, "color": "#ffffff"}], r"hint 1 has no y"),
        ([(True, 3, "#ffffff")], r"hint 1 position"),
    ],
)
def test_bad_hints_name_the_hint(hints, message):
    with pytest.raises(ColorlabError, match=message):
        _echo_colorizer().colorize(Image.new("RGB", (96, 64)), hints=hints)


def test_parse_colour_accepts_hex_and_triples():
    assert parse_colour("#C03020") == (192, 48, 32) == parse_colour("c03020")
    assert parse_colour((1, 2, 3)) == (1, 2, 3)


def test_hint_files_json_and_png(tmp_path):
    (tmp_path / "h.json").write_text(json.dumps([{"x": 3, "y": 4, "color": "#0000ff"}]))
    assert read_hints(tmp_path / "h.json", 10, 10)[0].rgb == (0, 0, 255)
    layer = np.zeros((10, 12, 4), dtype=np.uint8)
    layer[2, 5] = (255, 0, 0, 255)
    layer[7, 1] = (0, 255, 0, 200)
    layer[8, 8] = (0, 0, 255, 40)  # nearly transparent: not a hint
    Image.fromarray(layer, "RGBA").save(tmp_path / "h.png")
    hints = read_hints(tmp_path / "h.png", 12, 10)
    assert {(h.x, h.y, h.rgb) for h in hints} == {(5, 2, (255, 0, 0)), (1, 7, (0, 255, 0))}
    with pytest.raises(
        ValueError, match=r"is 12×10; a hint layer must be as large as the photo \(20×10\)"
    ):
        read_hints(tmp_path / "h.png", 20, 10)
    (tmp_path / "broken.json").write_text("[{")
    with pytest.raises(ValueError, match=r"broken\.json is not JSON"):
        read_hints(tmp_path / "broken.json", 10, 10)
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="neither JSON nor a readable PNG"):
        read_hints(tmp_path / "junk.png", 10, 10)
    with pytest.raises(ValueError, match=r"h\.json: hint 1 at \(3, 4\) is outside"):
        read_hints(tmp_path / "h.json", 3, 3)


# -- a trained model with hints ----------------------------------------------------------------
@pytest.fixture(scope="session")
def hints_checkpoint(tmp_path_factory) -> Path:
    from colorlab.train import train

    run_dir = tmp_path_factory.mktemp("run-hints")
    cfg = compose_train(
        "model.hints=true",
        *TINY,
        "data.num_images=24",
        "logger=none",
        "test_after_fit=false",
        "~callbacks.progress_bar",
        run_dir=run_dir,
    )
    return Path(train(cfg)["best_checkpoint"])


@pytest.mark.slow
def test_a_model_with_hints_trains_reloads_and_colorizes_with_them(hints_checkpoint, tmp_path):
    colorizer = load_colorizer(hints_checkpoint, device="cpu")
    assert colorizer.takes_hints and colorizer.net.hints
    photo = colourful((50, 40))
    out = colorizer.colorize(photo, hints=[(10, 10, "#00ff00"), (40, 30, "#ff00ff")])
    assert out.size == (50, 40)
    photo.save(tmp_path / "photo.png")
    (tmp_path / "hints.json").write_text(json.dumps([{"x": 10, "y": 10, "color": "#00ff00"}]))
    result = run_cli(
        "colorlab.colorize",
        f"ckpt={hints_checkpoint}",
        "input=photo.png",
        "output=out",
        "colorize.hints=hints.json",
        "colorize.hint_size=2",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "colorized with 1 hints" in result.stdout
    assert Image.open(tmp_path / "out" / "photo.png").size == (50, 40)
    (tmp_path / "bad.json").write_text(json.dumps([{"x": 99, "y": 10, "color": "#00ff00"}]))
    bad = run_cli(
        "colorlab.colorize", f"ckpt={hints_checkpoint}", "input=photo.png", "output=bad",
        "colorize.hints=bad.json", cwd=tmp_path,
    )  # fmt: skip
    lines = bad.stderr.strip().splitlines()
    assert bad.returncode == 2 and len(lines) == 1 and "hint 1 at (99, 10) is outside" in lines[0]
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_hints_for_a_model_without_them_or_for_many_photos_are_refused(
    checkpoints, hints_checkpoint, tmp_path
):
    from colorlab.colorize import colorize

    colourful((40, 30)).save(tmp_path / "a.png")
    colourful((40, 30), seed=1).save(tmp_path / "b.png")
    (tmp_path / "h.json").write_text(json.dumps([{"x": 1, "y": 1, "color": "#00ff00"}]))
    hints = f"colorize.hints={tmp_path / 'h.json'}"
    cfg = compose_config("colorize", f"ckpt={checkpoints['baseline']}", f"input={tmp_path / 'a.png'}", f"output={tmp_path / 'o1'}", hints)  # fmt: skip
    with pytest.raises(ColorlabError, match="trained without hints"):
        colorize(cfg)
    cfg = compose_config("colorize", f"ckpt={hints_checkpoint}", f"input={tmp_path}", f"output={tmp_path / 'o2'}", hints)  # fmt: skip
    with pytest.raises(
        OptionError, match=r"colorize\.hints=.*hints are for one photo; input names 2 files"
    ):
        colorize(cfg)
    cfg = compose_config("colorize", f"ckpt={hints_checkpoint}", f"input={tmp_path / 'a.png'}", f"output={tmp_path / 'o3'}", "colorize.hint_size=0")  # fmt: skip
    with pytest.raises(ColorlabError, match=r"colorize\.hint_size=0 is not allowed"):
        colorize(cfg)


@pytest.mark.slow
def test_evaluate_sweeps_the_number_of_hint_points(checkpoints, hints_checkpoint, tmp_path):
    from colorlab.evaluate import evaluate

    cfg = compose_config(
        "evaluate",
        f"ckpt=[{hints_checkpoint},{checkpoints['baseline']}]",
        "data.num_images=30",
        "data.image_size=32",
        "data.num_workers=0",
        "num_images=2",
        "device=cpu",
        "evaluate.hint_points=[0,1,5,20]",
        f"run_dir={tmp_path / 'eval'}",
    )
    results = evaluate(cfg)["metrics"]
    report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    hinted = [name for name in results if " · " in name]
    assert len(hinted) == 3 and all(name.startswith("baseline-mse@") for name in hinted)
    (label,) = report["hint_sweep"]
    assert list(report["hint_sweep"][label]) == ["0", "1", "5", "20"]
    assert report["hint_sweep"][label]["5"] == results[hinted_name(label, 5)]
    table = (tmp_path / "eval" / "metrics.md").read_text()
    assert f"| {hinted_name(label, 20)} |" in table
    cfg = compose_config(
        "evaluate",
        f"ckpt=[{checkpoints['baseline']}]",
        "evaluate.hint_points=[0,5]",
        "device=cpu",
        f"run_dir={tmp_path / 'eval2'}",
    )
    with pytest.raises(
        OptionError, match=r"evaluate\.hint_points=\[0, 5\].*no checkpoint given takes hints"
    ):
        evaluate(cfg)


def test_the_sweep_gives_every_model_the_same_points():
    ab = torch.rand(3, 2, 16, 16)
    first, second = HintSweep([4], 2, seed=7), HintSweep([4], 2, seed=7)
    assert torch.equal(first.draw(ab)[4], second.draw(ab)[4])
    assert (
        first.draw(ab)[4][:, 2].flatten(1).sum(1).min() >= 4
    )  # four 2×2 squares (some may overlap)


@pytest.mark.slow
def test_the_report_draws_psnr_against_the_number_of_hints(hints_checkpoint, tmp_path):
    from colorlab.reporting.writer import write_report

    run = hints_checkpoint.parents[1]
    report = write_report(
        [run],
        tmp_path / "report",
        torch.device("cpu"),
        data={"image_size": 32},
        hint_points=[0, 1, 5],
    )
    (label,) = report["hint_curves"]
    assert [n for n, _ in report["hint_curves"][label]] == [0, 1, 5]
    scored = [r for r in report["runs"] if r["status"] != "reference"]
    assert len(scored) == 1  # the hinted scores are the curve's, not rows of the table
    with Image.open(tmp_path / "report" / "figures" / "hints.png") as figure:
        assert figure.width > 300
    assert "figures/hints.png" in (tmp_path / "report" / "report.md").read_text()
