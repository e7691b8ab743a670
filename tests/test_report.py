"""``python -m colorlab.report`` over a real 2×2 sweep (model × loss), a failed run and a run
that never started; the page looked at in headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from colorlab.reporting.runs import differing_overrides, parse_overrides, read_run
from conftest import REPO, chromium, run_cli

# One worker runs this module's tests (pytest-xdist --dist loadgroup): they share its fixtures,
# built once a session (session scope: kept while other modules' tests run in between).
pytestmark = pytest.mark.xdist_group("report-sweep")

TINY_RUN = [
    "data.image_size=32",
    "data.batch_size=8",
    "data.num_workers=0",
    "data.num_images=24",
    "trainer.max_epochs=2",
    "trainer.accelerator=cpu",
    "logger=csv",
    "~callbacks.model_summary",
    "~callbacks.progress_bar",
]
METRICS = ("train/loss", "val/loss", "train/seed_accuracy", "val/seed_accuracy", "val/psnr")


@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> Path:
    """A 2×2 sweep in sweep/0..3, a run that crashed in its second epoch (crashed/), and one
    that stopped at a wrong value before training (wrong/)."""
    root = tmp_path_factory.mktemp("runs")
    sweep = run_cli(
        "colorlab.train",
        "-m",
        "model=baseline,unet",
        "loss=mse,l1",
        *TINY_RUN,
        "hydra.sweep.dir=sweep",
        cwd=root,
    )
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    crashed = run_cli(
        "colorlab.train",
        *TINY_RUN,
        "+callbacks.crash._target_=crashing.CrashAtEpoch",
        "+callbacks.crash.epoch=1",
        "hydra.run.dir=crashed",
        cwd=root,
        env={"PYTHONPATH": str(REPO / "tests")},
    )
    assert crashed.returncode != 0
    wrong = run_cli(
        "colorlab.train", *TINY_RUN, "data.image_size=36", "hydra.run.dir=wrong", cwd=root
    )
    assert wrong.returncode == 2 and "data.image_size=36" in wrong.stderr
    return root


def _report(root: Path, output: str, *runs: str):
    spec = runs[0] if len(runs) == 1 else "[" + ",".join(runs) + "]"
    result = run_cli("colorlab.report", f"runs={spec}", f"output={output}", cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((root / output / "report.json").read_text())


@pytest.mark.slow
def test_a_sweep_report_has_a_row_per_run_curves_and_a_grid(runs):
    report = _report(runs, "report", "sweep")
    rows = [r for r in report["runs"] if r["status"] != "reference"]
    assert len(rows) == 4 and all(r["status"] == "finished" for r in rows)
    assert report["override_keys"] == ["model", "loss"]
    assert [(r["overrides"]["model"], r["overrides"]["loss"]) for r in rows] == [
        ("baseline", "mse"),
        ("baseline", "l1"),
        ("unet", "mse"),
        ("unet", "l1"),
    ]
    for row in rows:
        assert row["best_epoch"] in (1, 2) and 0 <= row["val/seed_accuracy"] <= 1
        assert 5 < row["test/psnr"] < 60 and 0 <= row["test/ssim"] <= 1
        assert row["train_images_per_s"] > 0 and row["wall_s"] > 0
        assert row["command"].startswith("python -m colorlab.train model=")
    gray = report["runs"][-1]
    assert gray["status"] == "reference" and gray["test/colorfulness_pred"] < 0.1
    for metric in METRICS:
        lines = report["curves"][metric]
        assert len(lines) == 4, metric
        assert all([epoch for epoch, _ in points] == [1, 2] for points in lines.values())
    assert len(report["grid"]["columns"]) == 4 + 2  # gray | 4 runs | ground truth
    assert report["grid"]["photos"] >= 1

    out = runs / "report"
    markdown = (out / "report.md").read_text()
    assert markdown.count("\n| model=") == 4 and "| gray (ab = 0) | reference |" in markdown
    assert "**" in markdown  # best values marked
    for stem in ("loss", "seed_accuracy", "psnr", "colorfulness"):
        assert f"](figures/{stem}.png)" in markdown
        with Image.open(out / "figures" / f"{stem}.png") as figure:
            assert figure.width > 400
    with Image.open(out / "comparison.jpg") as grid:
        assert grid.width >= 6 * 96  # six readable columns
    html = (out / "report.html").read_text()
    assert (
        "data:image/png;base64," in html
        and "data:image/jpeg;base64," in html
        and "<script" not in html
        and "http" not in html
    )

    again = run_cli("colorlab.report", "runs=sweep", "output=report", cwd=runs)
    assert again.returncode == 2 and "already holds a report" in again.stderr


@pytest.fixture(scope="session")
def with_failures(runs) -> dict:
    """The report of the sweep, the crashed run and the one that never started."""
    return _report(runs, "with-failures", "sweep", "crashed", "wrong")


@pytest.mark.slow
def test_failed_runs_are_listed_as_failed_and_one_run_alone_works(runs, with_failures):
    report = with_failures
    by_folder = {Path(r["folder"]).name: r for r in report["runs"] if r.get("folder")}
    assert len(by_folder) == 6
    assert by_folder["crashed"]["status"] == "failed"
    assert "RuntimeError: simulated crash in epoch 1" in by_folder["crashed"]["error"]
    assert by_folder["crashed"]["best_epoch"] == 1  # the epoch it finished is kept
    assert by_folder["wrong"]["status"] == "failed before training"
    assert "data.image_size=36" in by_folder["wrong"]["error"]
    assert len(report["curves"]["val/loss"]) == 5  # the crashed run's one epoch too

    alone = _report(runs, "alone", "sweep/2")
    (row, gray) = alone["runs"]
    assert row["status"] == "finished" and gray["status"] == "reference"
    assert alone["override_keys"] == [] and row["label"] == "unet-mse-2ep"
    assert len(alone["grid"]["columns"]) == 3


@pytest.mark.browser
@pytest.mark.slow
def test_the_report_page_shows_its_table_curves_and_grid_in_a_browser(
    runs, with_failures, tmp_path
):
    from selenium.webdriver.common.by import By

    driver = chromium(width=1400, height=1800)
    try:
        driver.get((runs / "with-failures" / "report.html").as_uri())
        rows = driver.find_elements(By.CSS_SELECTOR, "#runs tbody tr")
        assert len(rows) == 7  # 4 sweep runs, the crashed one, the one never started, gray
        statuses = [row.find_element(By.CSS_SELECTOR, "td.status").text for row in rows]
        assert statuses[:4] == ["finished"] * 4 and statuses[6] == "reference"
        assert statuses[4].startswith("failed: RuntimeError: simulated crash")
        assert statuses[5].startswith("failed before training: ")
        assert driver.find_elements(By.CSS_SELECTOR, "#runs td.best")
        pictures = driver.find_elements(By.CSS_SELECTOR, "img.curve, img#grid")
        assert len(pictures) == 5
        for picture in pictures:  # decoded and laid out, not a broken image
            assert driver.execute_script("return arguments[0].naturalWidth", picture) > 100
            assert picture.is_displayed() and picture.size["width"] > 100
        driver.save_screenshot(str(tmp_path / "report.png"))
        hosts = set()
        for entry in driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                hosts.add(message["params"]["request"]["url"].split(":")[0])
        assert hosts <= {"file", "data"}, hosts  # nothing fetched from a network
    finally:
        driver.quit()
    with Image.open(tmp_path / "report.png") as screenshot:
        assert screenshot.width >= 1000
    if target := os.environ.get("COLORLAB_REPORT_SCREENSHOT"):
        shutil.copy(tmp_path / "report.png", target)


def test_overrides_are_parsed_and_compared():
    assert parse_overrides(
        ["model=vgg16", "+x=1", "~callbacks.a", "hydra.run.dir=o", "run_dir=r"]
    ) == {"model": "vgg16", "x": "1", "callbacks.a": "(removed)"}


def test_only_what_differs_becomes_a_column(tmp_path):
    runs = []
    for name, overrides in (("a", ["model=unet", "loss=l1"]), ("b", ["model=unet", "loss=mse"])):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "run.json").write_text(json.dumps({"status": "running", "overrides": overrides}))
        runs.append(read_run(folder))
    assert differing_overrides(runs) == ["loss"]
    assert runs[0].status == "running" and runs[0].checkpoint is None
