"""The wheel carries conf/, so the entry points work from an installed package."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import REPO, run_cli


def test_wheel_ships_the_configs(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(REPO),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("colorlab-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {n.removeprefix("colorlab/conf/") for n in names if n.startswith("colorlab/conf/")}
    expected = {str(p.relative_to(REPO / "conf")) for p in (REPO / "conf").rglob("*.yaml")}
    assert expected and shipped == expected
    assert "colorlab/train.py" in names


def test_installed_layout_finds_packaged_conf(tmp_path, monkeypatch):
    import colorlab.configs

    package = tmp_path / "colorlab"
    (package / "conf").mkdir(parents=True)
    monkeypatch.setattr(colorlab.configs, "__file__", str(package / "configs.py"))
    assert colorlab.configs.config_dir() == str(package / "conf")
    assert Path(colorlab.configs.config_dir()).is_dir()


@pytest.mark.parametrize(
    "entry", ["train", "evaluate", "colorize", "bench", "demo", "export", "report"]
)
def test_every_entry_point_composes_its_config(entry, tmp_path):
    """A smoke test of each command (the fast tier's): it starts, finds conf/ and composes its
    config (Hydra's ``--cfg job`` prints it without running the job)."""
    result = run_cli(f"colorlab.{entry}", "--cfg", "job", cwd=tmp_path, timeout=120, fresh=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "trust_checkpoint: false" in result.stdout  # every command that opens a checkpoint


def test_the_commands_that_only_colorize_start_without_lightning(tmp_path):
    """colorize, export and the demo read a photo, not a data set: they do not import
    Lightning (about 4 s of every start on a 2-core machine)."""
    code = (
        "import sys, colorlab.colorize, colorlab.export, colorlab.demo; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'lightning'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"
