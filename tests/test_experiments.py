"""The experiment scripts of ``experiments/`` still import against today's package (they are
run by hand, so nothing else would notice an import they lost)."""

import runpy
from pathlib import Path

import pytest

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
SCRIPTS = sorted(EXPERIMENTS.glob("*.py"))


def test_there_are_experiment_scripts():
    assert {p.name for p in SCRIPTS} >= {"compare_losses.py", "learning_check.py", "model_table.py"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_experiment_script_imports(script):
    namespace = runpy.run_path(str(script), run_name="experiment_import_check")
    assert namespace["__doc__"]  # each says what it measures and how to run it
