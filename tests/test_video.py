"""Video without flicker: optical flow and warping, the motion-compensated filter, the flicker
metrics (E_warp, CDC), ``colorize.temporal`` and ``evaluate videos=``."""

import json
import runpy
import tracemalloc

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from colorlab.errors import ColorlabError, OptionError
from colorlab.inference.colorizer import load_colorizer
from colorlab.inference.flow import RAFT_FILE, FarnebackFlow, RaftFlow, consistent, warp
from colorlab.inference.temporal import (
    AbSmoother,
    FlowFilter,
    TemporalSettings,
    _estimator,
    motion,
)
from colorlab.inference.video import _colorize_frames, colorize_video, read_frames
from colorlab.inference.video_evaluation import TRUTH, is_cut, score_video
from colorlab.metrics import colour_histograms, histogram_divergence, warping_error
from colorlab.weights import hub_file
from conftest import REPO, colourful, run_cli


def texture(height: int, width: int, seed: int = 0) -> torch.Tensor:
    """Smooth random lightness, 1×1×height×width in [0, 100] (flow needs something to track)."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 1, height // 6 + 2, width // 6 + 2, generator=generator)
    fine = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)
    return (fine * 100).clamp(0, 100)


def panning(frames: int, size: int = 48, step: int = 2, seed: int = 0) -> torch.Tensor:
    """frames×1×size×size windows moving ``step`` px right a frame over one texture."""
    scene = texture(size, size + step * frames, seed)
    return torch.cat([scene[..., step * t : step * t + size] for t in range(frames)])


def write_frames(path, frames: list[np.ndarray], fps: int = 12) -> None:
    """H×W×3 uint8 frames as a lossless FFV1 clip."""
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "bgr0"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def coloured(L: torch.Tensor, tint: tuple[int, int, int]) -> np.ndarray:
    """1×1×H×W lightness as an H×W×3 uint8 frame tinted by ``tint`` (added, clipped)."""
    grey = (L[0, 0] * 2.55).round().clamp(0, 255).to(torch.uint8).numpy()
    rgb = np.repeat(grey[..., None], 3, axis=2).astype(np.int16) + np.array(tint, np.int16)
    return np.clip(rgb, 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def colorizer(checkpoints):
    return load_colorizer(checkpoints["classification"], device="cpu")


# -- flow and warping ------------------------------------------------------------------------
def test_warping_by_a_known_shift_is_exact_away_from_the_borders():
    image = torch.rand(2, 3, 30, 40)
    flow = torch.zeros(2, 2, 30, 40)
    flow[:, 0], flow[:, 1] = 3, -2  # every pixel x takes the value at x + (3, −2)
    warped = warp(image, flow)
    assert torch.allclose(warped[..., 2:, :-3], image[..., :-2, 3:], atol=1e-5)
    assert not torch.allclose(warped[..., :2, :], image[..., :2, :], atol=1e-2)  # borders differ
    half = torch.stack([torch.full((2, 30, 40), 0.5), torch.zeros(2, 30, 40)], dim=1)
    shifted = warp(image, half)  # half a pixel: the mean of the two neighbours
    assert torch.allclose(shifted[..., :-1], (image[..., :-1] + image[..., 1:]) / 2, atol=1e-5)


def test_farneback_finds_a_pan_and_trusts_it():
    frames = panning(2, size=64, step=3)
    backward = FarnebackFlow()(frames[1:], frames[:1])  # frame 1 -> frame 0: x + 3
    inner = backward[0, :, 8:-8, 8:-8]
    assert abs(float(inner[0].median()) - 3) < 0.1 and abs(float(inner[1].median())) < 0.1
    forward = FarnebackFlow()(frames[:1], frames[1:])
    assert float(consistent(backward, forward)[..., 8:-8, 8:-8].float().mean()) > 0.95


def test_the_consistency_check_marks_a_moving_objects_trail():
    background, thing = texture(64, 96, seed=1), texture(20, 20, seed=2)
    frames = []
    for x in (20, 28):  # the object moves 8 px right over a still background
        frame = background[..., 16:80].clone()
        frame[..., 22:42, x : x + 20] = thing
        frames.append(frame)
    previous, current = frames
    _, trusted = motion(current, previous, FarnebackFlow())
    uncovered = trusted[0, 0, 24:40, 21:27]  # behind the object: background new in frame 1
    far = trusted[0, 0, 48:60, 4:60]
    assert float(uncovered.float().mean()) < 0.5
    assert float(far.float().mean()) > 0.95


# -- the temporal filters --------------------------------------------------------------------
def test_the_flow_filter_carries_colour_along_the_motion_and_keeps_the_state_one_frame():
    L = panning(12)
    pattern = F.interpolate(
        texture(48, 48 + 24, seed=3).repeat(1, 2, 1, 1) / 100 - 0.5,
        size=(48, 72),
        mode="bilinear",
    )
    truth_ab = torch.cat([pattern[..., 2 * t : 2 * t + 48] for t in range(12)])
    noise = torch.randn(12, 2, 48, 48, generator=torch.Generator().manual_seed(0)) * 0.05
    predicted = truth_ab + noise  # the colour moves with the content; the prediction flickers
    smoother = FlowFilter(FarnebackFlow())
    out = torch.cat([smoother(L[:5], predicted[:5]), smoother(L[5:], predicted[5:])])
    inner = (..., slice(6, -6), slice(6, -6))
    error_out = (out - truth_ab)[inner].abs().mean()
    error_in = (predicted - truth_ab)[inner].abs().mean()
    assert error_out < 0.7 * error_in  # the noise averaged along the motion
    assert torch.equal(out[0], predicted[0])  # the first frame is its own prediction
    assert smoother.cuts == 0
    assert smoother._L.shape == (1, 1, 48, 48) and smoother._ab.shape == (1, 2, 48, 48)
    ema = AbSmoother(0.8)
    smeared = ema(L, predicted)  # ignores the motion: the pattern lags behind
    assert (smeared - truth_ab)[inner].abs().mean() > error_out


def test_a_cut_starts_afresh():
    before, after = panning(5, seed=4), panning(5, seed=5)
    L = torch.cat([before, after])
    predicted = torch.rand(10, 2, 48, 48) * 0.4 - 0.2
    smoother = FlowFilter(FarnebackFlow())
    out = smoother(L, predicted)
    assert smoother.cuts == 1 and smoother.trusted > 0.5  # the last pair is a pan again
    assert torch.equal(out[5], predicted[5])  # the frame after the cut: its own colour
    assert not torch.equal(out[4], predicted[4]) and not torch.equal(out[6], predicted[6])
    smeared = AbSmoother(0.5)(L, predicted)  # motion ignored: the first scene's colour stays
    assert torch.allclose(smeared[5], (smeared[4] + predicted[5]) / 2)


def test_temporal_smoothing_is_an_ema():
    smoother = AbSmoother(0.5)
    ab = torch.tensor([0.0, 1.0, 1.0]).view(3, 1, 1, 1)
    L = torch.zeros(3, 1, 1, 1)
    assert smoother(L[:2], ab[:2]).flatten().tolist() == [0.0, 0.5]
    assert smoother(L[2:], ab[2:]).flatten().tolist() == [0.75]  # state carries across batches
    assert torch.equal(AbSmoother(0)(L, ab), ab)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"mode": "optical"}, "temporal='optical' is not allowed; choose one of: flow, ema, none"),
        ({"smoothing": 1.0}, "temporal_smoothing=1.0 is not allowed; use a number in [0, 1)"),
        ({"flow_method": "lk"}, "flow.method='lk' is not allowed; choose one of: auto, farneback"),
        ({"flow_weight": 1.0}, "flow.weight=1.0 is not allowed; use a number in [0, 1)"),
        ({"min_trusted": 2}, "flow.min_trusted=2 is not allowed; use a fraction in [0, 1]"),
    ],
)
def test_wrong_temporal_settings_name_the_option(settings, message):
    with pytest.raises(OptionError) as error:
        TemporalSettings(**settings)
    assert str(error.value).startswith(message)


# -- RAFT ------------------------------------------------------------------------------------
def test_raft_without_its_file_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("COLORLAB_OFFLINE", "1")
    with pytest.raises(ColorlabError) as error:
        TemporalSettings(flow_method="raft").prepare("cpu")
    message = str(error.value)
    assert "\n" not in message
    assert message == (
        "RAFT's weights are not here and cannot be downloaded (COLORLAB_OFFLINE is set and "
        f"{RAFT_FILE} is not cached): put {RAFT_FILE} (from "
        f"https://download.pytorch.org/models/{RAFT_FILE}) at {hub_file(RAFT_FILE)}, "
        "or use flow.method=farneback"
    )
    assert TemporalSettings(flow_method="auto").new_filter("cpu").estimator.__class__ is (
        FarnebackFlow  # auto on the CPU: Farneback, with or without the file
    )


@pytest.mark.slow
def test_raft_reads_its_file_in_the_released_layout(monkeypatch):
    from torchvision.models.optical_flow import raft_small

    monkeypatch.setenv("COLORLAB_OFFLINE", "1")
    path = hub_file(RAFT_FILE)
    path.parent.mkdir(parents=True)
    torch.save(raft_small(weights=None).state_dict(), path)  # the layout torchvision ships
    flow = RaftFlow("cpu", updates=2)
    frames = panning(2, size=44)  # not a multiple of 8: padded and cropped back
    assert flow(frames[1:], frames[:1]).shape == (1, 2, 44, 44)
    _estimator.cache_clear()
    try:
        smoother = TemporalSettings(flow_method="raft").new_filter("cpu")
        assert isinstance(smoother.estimator, RaftFlow)
        assert smoother(frames, torch.zeros(2, 2, 44, 44)).shape == (2, 2, 44, 44)
    finally:
        _estimator.cache_clear()  # its network came from this test's TORCH_HOME
    path.write_bytes(b"not a state dict")
    with pytest.raises(ColorlabError, match="RAFT's weights: .* or use flow.method=farneback"):
        RaftFlow("cpu")


# -- metrics ---------------------------------------------------------------------------------
def test_warping_error_and_histogram_divergence():
    a, b = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    everywhere = torch.ones(2, 1, 8, 8, dtype=torch.bool)
    assert torch.allclose(warping_error(a, b, everywhere), (a - b).square().flatten(1).mean(1))
    left = everywhere.clone()
    left[..., 4:] = False
    expected = (a - b)[..., :4].square().flatten(1).mean(1)
    assert torch.allclose(warping_error(a, b, left), expected)
    assert torch.isnan(warping_error(a, b, torch.zeros_like(left))).all()
    black, white = np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 255, np.uint8)
    assert colour_histograms(black).sum(axis=1).tolist() == [1.0, 1.0, 1.0]
    assert histogram_divergence(colour_histograms(black), colour_histograms(black)) == 0
    assert histogram_divergence(colour_histograms(black), colour_histograms(white)) == (
        pytest.approx(np.log(2))
    )


def test_e_warp_of_a_still_clip_is_zero_and_of_a_flickering_one_large(tmp_path):
    L = texture(48, 64)
    still = [coloured(L, (30, 0, -20))] * 6
    flicker = [coloured(L, (40, 0, -30) if t % 2 else (-30, 10, 40)) for t in range(6)]
    write_frames(tmp_path / "still.mkv", still)
    write_frames(tmp_path / "flicker.mkv", flicker)
    settings = TemporalSettings()
    scores = {
        name: score_video(tmp_path / f"{name}.mkv", {}, settings, [], FarnebackFlow())[0][TRUTH]
        for name in ("still", "flicker")
    }
    assert scores["still"]["e_warp"] < 1e-6 and scores["still"]["cdc"] == 0  # flow ~0 px
    assert scores["flicker"]["e_warp"] > 0.01 and scores["flicker"]["cdc"] > 0.02
    assert scores["still"]["frames"] == 6


def test_cuts_are_found_on_the_grey_input():
    a, b = texture(48, 64, seed=1), texture(48, 64, seed=2) * 0.5 + 40
    assert is_cut(b, a) and not is_cut(a, a)
    pan = panning(2, size=48, step=3)
    assert not is_cut(pan[1], pan[0])


# -- colorize and evaluate -------------------------------------------------------------------
def _clip_with_a_cut(path, frames: int = 10) -> None:
    first, second = panning(frames // 2, seed=6), panning(frames - frames // 2, seed=7) * 0.4 + 50
    L = torch.cat([first, second])
    write_frames(path, [coloured(L[t : t + 1], (20, 0, -20)) for t in range(frames)])


@pytest.mark.parametrize("mode", ["none", "ema", "flow"])
def test_every_temporal_mode_colorizes_a_tiny_video(colorizer, tmp_path, mode):
    _clip_with_a_cut(tmp_path / "clip.mkv")
    out = tmp_path / "out" / "clip.mkv"
    written = colorize_video(
        colorizer, tmp_path / "clip.mkv", out, batch_size=3, temporal=TemporalSettings(mode=mode)
    )
    assert written == 10
    frames = list(read_frames(out))
    assert len(frames) == 10 and frames[0].shape == (48, 48, 3)
    assert all(f.std() > 0 for f in frames)


def test_the_modes_differ_where_they_should(colorizer, tmp_path):
    _clip_with_a_cut(tmp_path / "clip.mkv")
    frames = list(read_frames(tmp_path / "clip.mkv"))
    outputs = {}
    for mode in ("none", "ema", "flow"):  # the frames before encoding (x264 is lossy)
        temporal = TemporalSettings(mode=mode).new_filter("cpu")
        batches = [_colorize_frames(colorizer, frames[i : i + 4], temporal) for i in (0, 4, 8)]
        outputs[mode] = np.stack([f for batch in batches for f in batch]).astype(np.int16)
    assert np.array_equal(outputs["none"][0], outputs["flow"][0])  # no past yet
    assert np.abs(outputs["none"][1:5] - outputs["flow"][1:5]).max() > 2
    assert np.array_equal(outputs["none"][5], outputs["flow"][5])  # the cut starts afresh
    assert np.abs(outputs["none"][1:] - outputs["ema"][1:]).max() > 0


def test_a_long_video_holds_a_few_frames_whatever_its_length(colorizer, tmp_path):
    peaks = {}
    for frames in (12, 120):
        L = panning(frames, size=96, step=1)
        clip = tmp_path / f"clip{frames}.mkv"
        write_frames(clip, [coloured(L[t : t + 1], (10, 0, -10)) for t in range(frames)])
        tracemalloc.start()
        assert colorize_video(colorizer, clip, tmp_path / f"out{frames}.mkv", 4) == frames
        peaks[frames] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    frame_bytes = 96 * 96 * 3
    assert peaks[120] < peaks[12] + 20 * frame_bytes  # not 108 more frames


@pytest.mark.slow
def test_colorize_cli_takes_the_temporal_keys(checkpoints, tmp_path):
    _clip_with_a_cut(tmp_path / "clip.mkv")
    for overrides in (["colorize.temporal=flow", "colorize.flow.weight=0.5"], []):
        result = run_cli(
            "colorlab.colorize",
            f"ckpt={checkpoints['baseline']}",
            f"input={tmp_path / 'clip.mkv'}",
            f"output=out{len(overrides)}",
            *overrides,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert len(list(read_frames(tmp_path / f"out{len(overrides)}" / "clip.mkv"))) == 10
    for override, message in (
        ("colorize.temporal=optical", "colorize.temporal='optical' is not allowed; choose one of"),
        ("colorize.flow.weight=1.5", "colorize.flow.weight=1.5 is not allowed; use a number"),
        ("colorize.flow.method=lk", "colorize.flow.method='lk' is not allowed; choose one of"),
    ):
        refused = run_cli(
            "colorlab.colorize",
            f"ckpt={checkpoints['baseline']}",
            f"input={tmp_path / 'clip.mkv'}",
            "output=refused",
            override,
            cwd=tmp_path,
        )
        assert refused.returncode == 2
        assert refused.stderr.strip().splitlines()[-1].startswith(f"colorlab: error: {message}")
    offline = run_cli(
        "colorlab.colorize",
        f"ckpt={checkpoints['baseline']}",
        f"input={tmp_path / 'clip.mkv'}",
        "output=raft",
        "colorize.flow.method=raft",
        cwd=tmp_path,
        env={"COLORLAB_OFFLINE": "1"},
    )
    assert offline.returncode == 2
    assert (
        offline.stderr.strip()
        .splitlines()[-1]
        .startswith("colorlab: error: RAFT's weights are not here and cannot be downloaded")
    )
    assert not (tmp_path / "raft").exists() or not any((tmp_path / "raft").iterdir())


@pytest.mark.slow
def test_evaluate_scores_videos_for_every_checkpoint_and_mode(checkpoints, tmp_path):
    make_clips = runpy.run_path(str(REPO / "experiments" / "make_clips.py"))["make_clips"]

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(4):
        colourful((80, 64), seed=i).save(photos / f"p{i}.png")
    records = make_clips(photos, tmp_path / "clips", 4, 8, (64, 48), 12, 0)
    assert [r["kind"] for r in records] == ["pan", "zoom", "object", "cut"]
    (tmp_path / "clips" / "broken.mp4").write_bytes(b"not a video")
    result = run_cli(
        "colorlab.evaluate",
        f"ckpt=[{checkpoints['classification']},{checkpoints['baseline']}]",
        f"videos={tmp_path / 'clips'}",
        "hydra.run.dir=eval",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    rows = saved["metrics"]
    labels = list(saved["checkpoints"])
    expected = ["truth", "gray"] + [f"{n} · {m}" for n in labels for m in ("none", "ema", "flow")]
    assert list(rows) == expected
    assert saved["cuts"] == 1 and saved["skipped"] == 1 and len(saved["videos"]) == 4
    assert "broken.mp4" in result.stdout + result.stderr
    for name, row in rows.items():
        assert row["frames"] == 32 and row["e_warp"] >= 0 and 0 <= row["cdc"] <= np.log(2)
        if name != "truth":
            assert 5 < row["psnr"] < 60 and "psnr_after_cuts" in row
    table = (tmp_path / "eval" / "metrics.md").read_text()
    assert "| truth |" in table and "e_warp vs none" in table and "1.00×" in table
    empty = tmp_path / "empty"
    empty.mkdir()
    refused = run_cli(
        "colorlab.evaluate",
        f"ckpt={checkpoints['baseline']}",
        f"videos={empty}",
        "hydra.run.dir=eval2",
        cwd=tmp_path,
    )
    assert refused.returncode == 2
    assert "holds no video files" in refused.stderr.strip().splitlines()[-1]
