"""The web page of colorlab.demo, driven in a real headless Chromium (Selenium), offline."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import chromium, colourful, write_hint_echo

# One worker runs this module's tests (pytest-xdist --dist loadgroup): they share its fixtures,
# built once a session (session scope: kept while other modules' tests run in between).
pytestmark = pytest.mark.xdist_group("demo-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A ``python -m colorlab.demo`` process, its URL and the temporary folder it writes in."""

    def __init__(self, folder: Path, *overrides: str):
        self.port, self.folder = free_port(), folder
        self.log, self.tmp = folder / "demo.log", folder / "tmp"
        self.tmp.mkdir(parents=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
        with open(self.log, "w") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "colorlab.demo",
                    *overrides,
                    f"demo.port={self.port}",
                    "colorize.device=cpu",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env | {"TMPDIR": str(self.tmp)},
            )
        self.url = f"http://127.0.0.1:{self.port}/"
        deadline = time.time() + 120
        while "colorlab: demo of" not in self.log.read_text():
            assert self.process.poll() is None and time.time() < deadline, self.log.read_text()[
                -3000:
            ]
            time.sleep(0.5)

    def memory_mb(self, field: str = "VmHWM") -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(status.split(f"{field}:")[1].split()[0]) / 1024

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture(scope="session")
def server(checkpoints, tmp_path_factory):
    echo = write_hint_echo(tmp_path_factory.mktemp("echo") / "hint-echo.safetensors")
    ckpts = f"ckpt=[{checkpoints['baseline']},{checkpoints['classification']},{echo}]"
    # a queue that holds the concurrency test's 20 requests at once
    running = Server(
        tmp_path_factory.mktemp("demo"), ckpts, "colorize.max_megapixels=1", "demo.queue_size=32"
    )
    yield running
    running.stop()


@pytest.fixture(scope="session")
def demo(server):
    return server.url


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    downloads = tmp_path_factory.mktemp("downloads")
    driver = chromium(downloads)
    driver.downloads = downloads
    yield driver
    driver.quit()


def _wait(driver, condition, seconds=90):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds, poll_frequency=0.2).until(condition)


def _info(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, "info").text


def _colorize(driver, photo: Path, expect: str) -> str:
    from selenium.webdriver.common.by import By

    before = _info(driver)
    _upload(driver, photo)
    driver.find_element(By.ID, "colorize").click()
    _wait(driver, lambda d: expect in _info(d) and _info(d) != before)
    return _info(driver)


def _download(driver) -> Image.Image:
    from selenium.webdriver.common.by import By

    link = driver.find_element(By.CSS_SELECTOR, "#download a")
    with urllib.request.urlopen(link.get_attribute("href"), timeout=30) as response:
        data = response.read()
    name = link.get_attribute("download") or "download.png"
    path = driver.downloads / f"{time.time_ns()}_{Path(name).name}"
    path.write_bytes(data)
    return Image.open(path).convert("RGB")


def _upload(driver, photo: Path) -> None:
    from selenium.webdriver.common.by import By

    _clear_upload(driver)
    driver.find_element(By.CSS_SELECTOR, "#photo input[type=file]").send_keys(str(photo))
    _wait(driver, lambda d: photo.stem in d.find_element(By.ID, "photo").text)


def _clear_upload(driver) -> None:
    from selenium.webdriver.common.by import By

    for button in driver.find_elements(By.CSS_SELECTOR, "#photo button[aria-label='Clear']"):
        button.click()
    _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#photo input[type=file]"))


@pytest.mark.browser
@pytest.mark.server
@pytest.mark.slow
def test_the_page_colorizes_switches_models_reports_bad_files_and_stays_offline(
    demo, browser, tmp_path
):
    from selenium.webdriver.common.by import By

    photo = tmp_path / "photo.jpg"
    colourful((517, 333), seed=3).save(photo, quality=95)
    browser.get(demo)
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#photo input[type=file]"))

    # a colour photo: colorized at its own size, downloadable, scored against itself
    text = _colorize(browser, photo, "517×333")
    assert "baseline-mse@" in text and "PSNR" in text and "ΔCF" in text
    assert browser.find_elements(By.CSS_SELECTOR, "#truth img")  # the truth beside it
    result = _download(browser)
    assert result.size == (517, 333)
    chroma = np.abs(np.diff(np.asarray(result, np.int16), axis=2)).mean()
    assert chroma > 0.5  # colour, not gray
    browser.save_screenshot(str(tmp_path / "demo.png"))
    if target := os.environ.get("COLORLAB_DEMO_SCREENSHOT"):
        shutil.copy(tmp_path / "demo.png", target)

    # the classification checkpoint: the temperature changes the picture
    _clear_upload(browser)
    _choose(browser, "checkpoint", "classification")
    _wait(
        browser,
        lambda d: d.find_element(By.CSS_SELECTOR, "#temperature input[type=number]").is_enabled(),
    )
    pictures = []
    for temperature in ("1", "0.05"):
        _set_number(browser, temperature)
        _colorize(browser, photo, f"temperature {temperature}")
        pictures.append(np.asarray(_download(browser), np.int16))
    assert np.abs(pictures[0] - pictures[1]).mean() > 0.5

    # a corrupt file: a message in the page, and the server keeps serving
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really a picture")
    _upload(browser, broken)
    browser.find_element(By.ID, "colorize").click()
    _wait(browser, lambda d: "Cannot read broken.png" in _info(d))
    with urllib.request.urlopen(demo, timeout=30) as response:
        assert response.status == 200

    # nothing was fetched from anywhere but the demo itself
    hosts = set()
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if not url.startswith(("data:", "blob:")):
                hosts.add(url.split("/")[2])
    assert hosts == {demo.split("/")[2]}, hosts


def _choose(driver, element_id: str, containing: str) -> None:
    """Open a dropdown and click the option whose text contains ``containing``."""
    from selenium.webdriver.common.by import By

    # the page renders its parts one after another: wait for this one (a loaded CPU is slow)
    _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, f"#{element_id} input"))[0].click()

    def option(d):
        items = d.find_elements(By.CSS_SELECTOR, "li[data-testid=dropdown-option]")
        return next((li for li in items if containing in li.text), False)

    _wait(driver, option).click()
    _wait(
        driver,
        lambda d: (
            containing
            in d.find_element(By.CSS_SELECTOR, f"#{element_id} input").get_attribute("value")
        ),
    )


def _set_number(driver, value: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    field = driver.find_element(By.CSS_SELECTOR, "#temperature input[type=number]")
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(value, Keys.TAB)
    time.sleep(0.5)


def _pick_colour(driver, colour: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.find_element(By.CSS_SELECTOR, "#hint-colour button.dialog-button").click()
    field = _wait(
        driver, lambda d: d.find_element(By.CSS_SELECTOR, "#hint-colour input[type=text]")
    )
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(colour, Keys.ENTER)
    rgb = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
    _wait(
        driver,
        lambda d: (
            f"rgb{rgb}".replace(" ", "")
            in d.find_element(By.CSS_SELECTOR, "#hint-colour button.dialog-button")
            .get_attribute("style")
            .replace(" ", "")
        ),
    )


def _click_photo(driver, fx: float, fy: float) -> tuple[float, float]:
    """Click the hint canvas at the fractions (fx, fy) of its picture; returns where that is in
    the picture's own pixels."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    picture = _wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, "#hint-canvas img"))
    width, height = picture.size["width"], picture.size["height"]
    natural = (
        int(picture.get_attribute("naturalWidth")),
        int(picture.get_attribute("naturalHeight")),
    )
    dx, dy = round((fx - 0.5) * width), round((fy - 0.5) * height)
    ActionChains(driver).move_to_element_with_offset(picture, dx, dy).click().perform()
    return ((width / 2 + dx) * natural[0] / width, (height / 2 + dy) * natural[1] / height)


@pytest.mark.browser
@pytest.mark.server
@pytest.mark.slow
def test_clicked_hints_pull_the_colours_at_their_spots_toward_them(demo, browser, tmp_path):
    from selenium.webdriver.common.by import By

    photo = tmp_path / "gray.png"
    Image.new("RGB", (240, 160), (128, 128, 128)).save(photo)
    browser.get(demo)
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#photo input[type=file]"))
    _choose(browser, "checkpoint", "hint-echo")
    _upload(browser, photo)

    def canvas_shows_this_photo(d) -> bool:  # not an earlier upload's, still on screen
        pictures = d.find_elements(By.CSS_SELECTOR, "#hint-canvas img")
        return bool(pictures) and pictures[0].get_attribute("naturalWidth") == "240"

    _wait(browser, canvas_shows_this_photo)
    spots = []
    for count, (colour, fx, fy) in enumerate((("#ff0000", 0.25, 0.3), ("#0000ff", 0.75, 0.7)), 1):
        _pick_colour(browser, colour)
        spots.append(_click_photo(browser, fx, fy))
        _wait(browser, lambda d, n=count: f"· {n} hint" in _info(d))
    (rx, ry), (bx, by) = ((round(x), round(y)) for x, y in spots)

    def toward(picture, x: int, y: int, more: int, less: int) -> int:
        """How much more of channel ``more`` than ``less`` around (x, y) (one model pixel is
        about 4 of the photo's: the most within 4 pixels)."""
        near = picture[max(0, y - 4) : y + 5, max(0, x - 4) : x + 5]
        return int((near[..., more] - near[..., less]).max())

    result = np.asarray(_download(browser), np.int16)
    assert toward(result, rx, ry, 0, 2) > 50 and toward(result, bx, by, 2, 0) > 50
    assert toward(result, rx, ry, 2, 0) <= 2 and toward(result, bx, by, 0, 2) <= 2
    assert np.abs(result[20, 200] - 128).max() <= 3  # the rest of the photo left gray
    browser.find_element(By.ID, "hint-undo").click()
    _wait(browser, lambda d: "· 1 hint" in _info(d))
    after = np.asarray(_download(browser), np.int16)
    assert toward(after, bx, by, 2, 0) <= 2 and toward(after, rx, ry, 0, 2) > 50
    browser.find_element(By.ID, "hint-clear").click()
    _wait(browser, lambda d: _info(d).endswith("· 240×160"))  # no hints left
    cleared = np.asarray(_download(browser), np.int16)
    assert np.abs(cleared - 128).max() <= 3


@pytest.mark.server
def test_the_colorize_endpoint_takes_hints_as_json(demo, tmp_path):
    from gradio_client import Client, handle_file

    Image.new("RGB", (96, 64), (128, 128, 128)).save(tmp_path / "gray.png")
    client = Client(demo, verbose=False)
    hints = json.dumps([{"x": 20, "y": 40, "color": "#00c000"}])
    _, png, text, _ = client.predict(
        handle_file(str(tmp_path / "gray.png")), "hint-echo", None, hints, api_name="/colorize"
    )
    green = np.asarray(Image.open(png).convert("RGB"), np.int16)[40, 20]
    assert "1 hint" in text and green[1] - green[0] > 40
    _, png, text, _ = client.predict(
        handle_file(str(tmp_path / "gray.png")), "hint-echo", None,
        json.dumps([{"x": 500, "y": 1, "color": "#00c000"}]), api_name="/colorize",
    )  # fmt: skip
    assert png is None and "hint 1 at (500, 1) is outside the 96×64 photo" in text
    _, png, text, _ = client.predict(
        handle_file(str(tmp_path / "gray.png")), api_name="/colorize"
    )  # the baseline, no hints: as before
    assert png is not None and "hint" not in text
    _, png, text, _ = client.predict(
        handle_file(str(tmp_path / "gray.png")), None, None, hints, api_name="/colorize"
    )
    assert png is not None and "hints ignored" in text


@pytest.mark.server
def test_the_colorize_endpoint_takes_the_image_alone(demo, tmp_path):
    from gradio_client import Client, handle_file

    colourful((64, 48), seed=1).save(tmp_path / "p.png")
    client = Client(demo, verbose=False)
    pair, png, text, truth = client.predict(
        handle_file(str(tmp_path / "p.png")), api_name="/colorize"
    )
    assert Image.open(png).size == (64, 48) and "baseline-mse@" in text
    assert np.array_equal(
        np.asarray(Image.open(truth).convert("RGB")), np.asarray(colourful((64, 48), seed=1))
    )
    Image.new("RGB", (1300, 1000), (90, 120, 200)).save(tmp_path / "large.png")
    pair, png, text, truth = client.predict(
        handle_file(str(tmp_path / "large.png")), api_name="/colorize"
    )
    assert pair is None and png is None and truth is None
    assert text == (
        "**large.png** has 1.3 megapixels, more than colorize.max_megapixels=1: not colorized."
    )


@pytest.mark.server
def test_twenty_concurrent_requests_for_the_same_photo_all_answer(demo, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client, handle_file

    colourful((120, 90), seed=4).save(tmp_path / "same.png")

    def ask(_: int):
        client = Client(demo, verbose=False)
        pair, png, text, truth = client.predict(
            handle_file(str(tmp_path / "same.png")), api_name="/colorize"
        )
        return Image.open(pair[1]).size, Image.open(png).size, Image.open(truth).size, text

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(ask, range(20)))
    assert all(answer[:3] == ((120, 90),) * 3 and "PSNR" in answer[3] for answer in answers)


@pytest.mark.server
def test_the_endpoint_takes_none_as_the_checkpoints_own_temperature(demo, checkpoints, tmp_path):
    from gradio_client import Client, handle_file

    from colorlab import load_colorizer

    colourful((64, 48), seed=5).save(tmp_path / "p.png")
    client = Client(demo, verbose=False)
    label = load_colorizer(checkpoints["classification"], device="cpu").label
    own = client.predict(handle_file(str(tmp_path / "p.png")), label, None, api_name="/colorize")
    explicit = client.predict(
        handle_file(str(tmp_path / "p.png")), label, 0.38, api_name="/colorize"
    )
    assert "temperature 0.38 (its own)" in own[2] and "temperature 0.38" in explicit[2]
    assert np.array_equal(np.asarray(Image.open(own[1])), np.asarray(Image.open(explicit[1])))


@pytest.mark.server
def test_multi_frame_files_and_unreadable_ones_are_named_as_uploaded(demo, tmp_path):
    from gradio_client import Client, handle_file

    red, green = (
        Image.new("RGB", (64, 48), (200, 40, 40)),
        Image.new("RGB", (64, 48), (40, 200, 40)),
    )
    red.save(tmp_path / "anim.gif", save_all=True, append_images=[green], duration=100)
    red.save(tmp_path / "pages.tif", save_all=True, append_images=[green, red])
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    client = Client(demo, verbose=False)
    for name, frames in (("anim.gif", 2), ("pages.tif", 3)):
        text = client.predict(handle_file(str(tmp_path / name)), api_name="/colorize")[2]
        assert f"only the first of its {frames} frames was colorized" in text, text
    text = client.predict(handle_file(str(tmp_path / "broken.jpg")), api_name="/colorize")[2]
    assert text.startswith("**Cannot read broken.jpg**") and "/" not in text, text


@pytest.mark.server
@pytest.mark.slow
def test_a_request_keeps_memory_at_colorizes_bound_and_the_server_leaves_no_files(
    checkpoints, tmp_path
):
    from gradio_client import Client, handle_file

    # 41 megapixels in a small PNG (the probe's: a 54 KB file raised the server's memory 1.9 GB)
    width, height = 7400, 5550
    rows = np.zeros((height, width, 3), np.uint8)
    rows[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None]
    rows[..., 2] = 120
    Image.fromarray(rows).save(tmp_path / "large.png", optimize=True)
    del rows
    colorize = subprocess.run(
        [
            sys.executable,
            "-m",
            "colorlab.benchmarks.peak_rss",
            f"ckpt={checkpoints['baseline']}",
            f"input={tmp_path / 'large.png'}",
            f"output={tmp_path / 'out'}",
            "colorize.device=cpu",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    colorize_mb = int(colorize.stdout.split("peak_rss_kb")[-1].split()[0]) / 1024
    server = Server(tmp_path / "server", f"ckpt={checkpoints['baseline']}")
    try:
        client = Client(server.url, verbose=False)
        pair, png, text, truth = client.predict(
            handle_file(str(tmp_path / "large.png")), api_name="/colorize"
        )
        assert Image.open(png).size == (width, height)  # the download at full size
        assert Image.open(pair[1]).size[0] < 2000 and "preview" in text  # the slider a preview
        served_mb = server.memory_mb()
        # a second request of the same session: the first one's files go after the grace period
        assert served_mb < colorize_mb + 250, (served_mb, colorize_mb)
    finally:
        server.stop()
    # nothing of this start is left behind (Gradio keeps one empty folder of its own there)
    assert not list(server.tmp.glob("colorlab-demo-*"))
    assert [p for p in server.tmp.rglob("*") if p.is_file()] == []


def test_result_files_are_removed_when_superseded_or_the_session_ends(tmp_path):
    from colorlab.web import ResultFiles

    results = ResultFiles(tmp_path, grace_s=0.0)
    first = results.new_folder("a")
    (first / "x.png").write_bytes(b"x")
    other = results.new_folder("b")
    time.sleep(0.01)
    second = results.new_folder("a")
    assert not first.exists() and second.is_dir() and other.is_dir()
    results.forget("a")
    assert not second.exists() and other.is_dir()
    results.clear()
    assert list(tmp_path.iterdir()) == []
    patient = ResultFiles(tmp_path, grace_s=60.0)
    kept = patient.new_folder("a")
    patient.new_folder("a")
    assert kept.is_dir()  # a client may still be fetching it


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("demo.models_kept=0", "demo.models_kept=0 is not allowed; use an integer from 1 to 64"),
        ("demo.models_kept=-1", "demo.models_kept=-1 is not allowed"),
        ("demo.queue_size=0", "demo.queue_size=0 is not allowed; use an integer ≥ 1"),
        ("demo.queue_size=-5", "demo.queue_size=-5 is not allowed"),
        ("colorize.max_megapixels=abc", "colorize.max_megapixels='abc' is not allowed"),
        ("colorize.max_megapixels=nan", "colorize.max_megapixels=nan is not allowed"),
    ],
)
def test_demo_options_are_refused_before_it_starts(checkpoints, override, message):
    from colorlab.demo import serve
    from colorlab.errors import ColorlabError
    from conftest import compose_config

    cfg = compose_config("demo", f"ckpt={checkpoints['baseline']}", override)
    with pytest.raises(ColorlabError) as refused:
        serve(cfg, block=False)
    assert str(refused.value).startswith(message)


def test_the_pages_strip_wise_scores_equal_colorlabs_metrics(monkeypatch):
    """The page scores large photos strip by strip (`colorlab.web`): the same colourfulness as
    `colorlab.color.colorfulness` and the same PSNR as over the whole picture."""
    import torch

    from colorlab import web
    from colorlab.color import colorfulness

    picture, other = colourful((300, 211), seed=1), colourful((300, 211), seed=2)
    whole = float(colorfulness(torch.from_numpy(np.asarray(picture)).permute(2, 0, 1)[None] / 255))
    monkeypatch.setattr(web, "STRIP_PIXELS", 300 * 7)  # many strips, the last one short
    assert abs(web.picture_colorfulness(picture) - whole) < 1e-3
    text = web.photo_scores(other, picture, whole)
    mse = np.mean((np.asarray(other, np.float64) - np.asarray(picture, np.float64)) ** 2)
    assert f"PSNR {10 * np.log10(255**2 / mse):.2f} dB" in text
