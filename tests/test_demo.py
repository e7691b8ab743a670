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

from conftest import chromium, colourful


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def demo(checkpoints, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("demo") / "demo.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    ckpts = f"ckpt=[{checkpoints['baseline']},{checkpoints['classification']}]"
    with open(log, "w") as out:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "colorlab.demo",
                ckpts,
                f"demo.port={port}",
                "colorize.device=cpu",
                "colorize.max_megapixels=1",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while "colorlab: demo of" not in log.read_text():
        assert server.poll() is None and time.time() < deadline, log.read_text()[-3000:]
        time.sleep(0.5)
    yield url
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture(scope="module")
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

    driver.find_element(By.CSS_SELECTOR, f"#{element_id} input").click()

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
