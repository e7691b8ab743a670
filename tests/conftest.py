"""Shared fixtures: composed configs, real photos, and a folder of awkward image files."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from PIL import Image

import cli_runner
from colorlab.configs import config_dir

REPO = Path(__file__).resolve().parents[1]

# Under pytest-xdist each worker gets its share of the cores (torch would take them all in
# every worker), and so do the colorlab processes a test starts.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    _THREADS = str(max(1, (os.cpu_count() or 1) // _WORKERS))
    os.environ["OMP_NUM_THREADS"] = _THREADS
    torch.set_num_threads(int(_THREADS))
#: Real photos (not part of the repository): COLORLAB_SCENES or ../shared/data/scenes.
SCENES = Path(os.environ.get("COLORLAB_SCENES", REPO.parent / "shared" / "data" / "scenes"))

TINY = [
    "data.image_size=32",
    "data.batch_size=8",
    "data.num_workers=0",
    "trainer.max_epochs=1",
    "trainer.accelerator=cpu",
    "trainer.log_every_n_steps=1",
    "callbacks.samples.num_samples=4",
    "callbacks.samples.table_size=4",
    "~callbacks.model_summary",
]


def pytest_collection_finish(session):
    """Under ``--dist loadgroup`` every test marked ``xdist_group`` carries its group in its id
    (how pytest-xdist sends a group to one worker); stop where a pytest and pytest-xdist pair
    lose it (pytest 9.2 with xdist 3.8), else the groups' shared fixtures are built per worker."""
    if not getattr(session.config.option, "loadgroup", False):
        return
    lost = [
        item.nodeid
        for item in session.items
        if item.get_closest_marker("xdist_group") and "@" not in item.nodeid
    ]
    if lost:
        raise pytest.UsageError(
            f"pytest-xdist's xdist_group is ignored by this pytest ({lost[0]} has no group): "
            "install the versions pyproject.toml asks for"
        )


@pytest.fixture(scope="session", autouse=True)
def _fork_server():
    """The commands' fork server (`cli_runner`), stopped when the session ends."""
    yield
    cli_runner.stop()


@pytest.fixture(autouse=True)
def _quiet_offline_env(monkeypatch, tmp_path):
    """No W&B credentials, no W&B mode, torch hub in a temporary folder."""
    for name in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    torch.manual_seed(0)


def compose_train(*overrides: str, run_dir: Path, return_hydra_config: bool = False):
    """The training config as ``python -m colorlab.train`` would compose it (with its
    ``hydra`` node if asked)."""
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose(
            "train",
            overrides=[f"run_dir={run_dir}", *overrides],
            return_hydra_config=return_hydra_config,
        )


def compose_config(name: str, *overrides: str):
    """Entry point ``name``'s config (``colorize``, ``evaluate``, ``export`` …) as its
    ``python -m colorlab.NAME`` would compose it."""
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose(name, overrides=list(overrides))


def run_cli(
    module: str,
    *args: str,
    cwd: Path,
    timeout: float = 300,
    env: dict[str, str] | None = None,
    fresh: bool = False,
) -> subprocess.CompletedProcess:
    """Run ``python -m module args`` as a user would, in ``cwd`` (``env`` added to the
    environment): forked from a process that imported torch, Lightning and Hydra once
    (`cli_runner`), or as a new interpreter where ``fresh`` or the environment needs one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")} | (env or {})
    if not fresh and not cli_runner.needs_fresh(env):
        return cli_runner.run_module(module, list(args), cwd, env, timeout)
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=default_sigint,
    )


def run_colorize(ckpt: Path | str, source: Path, output: Path, cwd: Path):
    """``python -m colorlab.colorize ckpt=… input=source output=…`` as a user runs it."""
    return run_cli(
        "colorlab.colorize", f"ckpt={ckpt}", f"input={source}", f"output={output}", cwd=cwd
    )


def default_sigint() -> None:
    """In a child before it starts: Ctrl-C's default action, as in a terminal. A suite run in
    the background (``nohup``, ``&``) ignores SIGINT, and Python started with SIGINT ignored
    never raises KeyboardInterrupt: the interruption tests need the real behaviour."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def chromium(downloads: Path | None = None, width: int = 1280, height: int = 1100):
    """Debian's Chromium, headless, driven by its own chromedriver (no driver download),
    with the performance log on (to see every request a page makes)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert Path(CHROMEDRIVER).exists(), (
        "the browser tests need Debian's chromium and chromium-driver (.ci/run installs them)"
    )
    options = webdriver.ChromeOptions()
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    if downloads is not None:
        options.add_experimental_option("prefs", {"download.default_directory": str(downloads)})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def colourful(size: tuple[int, int] = (48, 40), seed: int = 0) -> Image.Image:
    """A smooth colourful RGB picture (w×h)."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w] / max(w, h)
    phase = rng.uniform(0, 6, 3)
    rgb = 0.5 + 0.5 * np.stack(
        [np.sin(5 * x + phase[0]), np.cos(4 * y + phase[1]), np.sin(3 * (x + y) + phase[2])], -1
    )
    return Image.fromarray((rgb * 255).astype(np.uint8), "RGB")


def write_png_rgb16(path: Path, rgb16: np.ndarray) -> None:
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one)."""
    h, w, _ = rgb16.shape
    raw = b"".join(b"\x00" + rgb16[r].astype(">u2").tobytes() for r in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


#: name -> what the awkward-files folder expects of it
GOOD = [
    "good_0.jpg",
    "good_1.png",
    "good_2.webp",
    "good_3.bmp",
    "good_4.tif",
    "cmyk.jpg",
    "rgba.png",
    "palette.png",
    "rgb16.png",
    "exif_rotated.jpg",
    "one_pixel.png",
]
UNREADABLE = ["truncated.jpg", "empty.jpg", "text.png"]
BLACK_WHITE = ["black.png", "white.jpg"]


@pytest.fixture
def awkward_folder(tmp_path) -> Path:
    """Every kind of file a user's photo folder holds, good and bad (see GOOD & co.)."""
    root = tmp_path / "photos"
    (root / "nested").mkdir(parents=True)
    for i, name in enumerate(GOOD[:5]):
        colourful(seed=i).save(root / ("nested" if i % 2 else "") / name)
    colourful(seed=5).convert("CMYK").save(root / "cmyk.jpg", quality=95)
    rgba = colourful(seed=6).convert("RGBA")
    rgba.putalpha(
        Image.fromarray(
            np.where(np.arange(48)[None, :] < 24, 255, 0).repeat(40, 0).astype(np.uint8)
        )
    )
    rgba.save(root / "rgba.png")
    colourful(seed=7).convert("P", palette=Image.Palette.ADAPTIVE, colors=32).save(
        root / "palette.png"
    )
    write_png_rgb16(root / "rgb16.png", np.asarray(colourful(seed=8)).astype(np.uint16) * 257)
    # Stored 48×40 with red left / blue right, displayed rotated 90° clockwise (EXIF 6).
    stored = np.zeros((40, 48, 3), np.uint8)
    stored[:, :24] = (220, 30, 30)
    stored[:, 24:] = (30, 30, 220)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(root / "exif_rotated.jpg", exif=exif, quality=95)
    Image.new("RGB", (1, 1), (200, 40, 60)).save(root / "one_pixel.png")
    full = (root / "good_0.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(full[: len(full) // 2])
    (root / "empty.jpg").write_bytes(b"")
    (root / "text.png").write_text("this is not a picture\n")
    Image.new("RGB", (32, 32), (0, 0, 0)).save(root / "black.png")
    Image.new("RGB", (32, 32), (255, 255, 255)).save(root / "white.jpg")
    (root / "notes.txt").write_text("not an image extension: ignored\n")
    return root


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """Tiny trained checkpoints: ``baseline`` at 32 px, ``vgg16`` (no ImageNet) at 64 px and
    ``classification`` (the baseline with ``loss=classification``) at 32 px."""
    from colorlab.train import train

    made = {}
    for name, model, size, extra in (
        ("baseline", "baseline", 32, []),
        ("vgg16", "vgg16", 64, ["model.pretrained=false"]),
        ("classification", "baseline", 32, ["loss=classification"]),
    ):
        run_dir = tmp_path_factory.mktemp(f"run-{name}")
        cfg = compose_train(
            f"model={model}",
            *extra,
            *TINY,
            f"data.image_size={size}",
            "data.num_images=24",
            "logger=none",
            "test_after_fit=false",
            "~callbacks.progress_bar",
            run_dir=run_dir,
        )
        made[name] = Path(train(cfg)["best_checkpoint"])
    return made


def write_clip(
    path: Path,
    frames: int = 16,
    size: tuple[int, int] = (64, 48),
    fps: int = 12,
    audio: bool = False,
) -> None:
    """A small H.264 clip of changing gray-blue frames (and a quiet AAC track)."""
    import av

    w, h = size
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        sound = container.add_stream("aac", rate=22050, layout="mono") if audio else None
        for i in range(frames):
            frame = np.zeros((h, w, 3), np.uint8)
            frame[..., 2] = 40 + 10 * i
            frame[: h // 2] += 60
            for packet in video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        if sound is not None:
            samples = 22050 * frames // fps
            tone = (0.1 * np.sin(np.arange(samples) / 10)).astype(np.float32)[None]
            for start in range(0, samples, 1024):
                chunk = av.AudioFrame.from_ndarray(
                    tone[:, start : start + 1024].copy(), format="fltp", layout="mono"
                )
                chunk.sample_rate = 22050
                for packet in sound.encode(chunk):
                    container.mux(packet)
            for packet in sound.encode(None):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)


def pytest_collection_modifyitems(config, items):
    """``@pytest.mark.gpu`` tests skip where CUDA is not available."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def write_hint_echo(path: Path, size: int = 64) -> Path:
    """A safetensors file of ``model=unet model.hints=true`` whose weights make its prediction
    its hints' ab, tanh-squashed, and zero (gray) elsewhere: a network whose answer to a hint is
    known, for the tests of where hints land. Its label is ``hint-echo``."""
    from torch import nn

    from colorlab.loading import write_safetensors
    from colorlab.models import unet

    net = unet(hints=True, native_size=size).eval()
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.Conv2d):
                module.weight.zero_()
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.BatchNorm2d):
                module.weight.fill_(1.0)
                module.bias.zero_()
                module.running_mean.zero_()
                module.running_var.fill_(1.0 - module.eps)  # (x − 0) / sqrt(var + eps) = x
        stage = net.encoder.stages[0]  # [NormalizeL, conv-BN-ReLU, conv-BN-ReLU]
        for k, (channel, sign) in enumerate([(1, 1.0), (1, -1.0), (2, 1.0), (2, -1.0)]):
            stage[1][0].weight[k, channel, 1, 1] = sign  # ±a, ±b of the hints, after ReLU
            stage[2][0].weight[k, k, 1, 1] = 1.0
        merge = net.merges[-1]  # full resolution: [upsampled, skip] -> 32
        skip = merge[0][0].weight.shape[1] - 32
        for k in range(4):
            merge[0][0].weight[k, skip + k, 1, 1] = 1.0
            merge[1][0].weight[k, k, 1, 1] = 1.0
        scale = 110 / 128  # the input's hint ab is Lab / 110, the output's Lab / 128
        head = net.head.conv.weight
        head[0, 0, 1, 1], head[0, 1, 1, 1] = scale, -scale
        head[1, 2, 1, 1], head[1, 3, 1, 1] = scale, -scale
    model = {
        "_target_": "colorlab.models.unet",
        "backbone": None,
        "hints": True,
        "native_size": size,
    }
    loss = {"_target_": "colorlab.losses.RegressionLoss", "kind": "l1"}
    hparams = {"image_size": size, "model": model, "loss": loss, "label": "hint-echo"}
    write_safetensors(path, net.state_dict(), hparams)
    return path
