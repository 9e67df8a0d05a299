"""The headless runner: chapter lookup, parameters, and a real papermill run with its errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import needs_mnist

from bn_utils import run

REPO = Path(__file__).resolve().parents[1]


def test_chapters_are_found_by_full_name_number_or_topic():
    assert "01_covariate_shift" in run.chapters()
    for name in ("01_covariate_shift", "01", "covariate_shift", "chapters/01_covariate_shift.ipynb"):
        assert run.resolve_chapter(name).name == "01_covariate_shift.ipynb"


def test_an_unknown_chapter_lists_the_chapters():
    with pytest.raises(ValueError, match=r"unknown chapter 'mnsit'; chapters: 01_covariate_shift"):
        run.resolve_chapter("mnsit")


@pytest.mark.parametrize("text, value", [("3", 3), ("0.1", 0.1), ("(0, 1)", (0, 1)), ("[2]", [2]),
                                         ("True", True), ("None", None), ("relu", "relu")])
def test_parameter_values_are_read_as_python_literals(text, value):
    assert run.parse_value(text) == value


def test_unknown_parameters_and_profiles_fail_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match=r"unknown parameter lernrate for 01_covariate_shift; allowed: steps"):
        run.run_chapter("01", "smoke", {"lernrate": 0.1}, out=tmp_path)
    with pytest.raises(ValueError, match="unknown profile 'medium'"):
        run.run_chapter("01", "medium", out=tmp_path)
    with pytest.raises(ValueError, match="--profile"):
        run.run_chapter("01", "smoke", {"profile": "full"}, out=tmp_path)
    assert list(tmp_path.iterdir()) == []


def _cli(*args, tmp_path):
    env = {**os.environ, "BN_RESULTS_DIR": str(tmp_path / "results")}
    return subprocess.run([sys.executable, "-m", "bn_utils.run", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


@needs_mnist
def test_cli_runs_a_chapter_with_injected_parameters_and_writes_results(tmp_path):
    proc = _cli("01", "--profile", "smoke", "-p", "seed", "3", "--out", str(tmp_path / "out"),
                tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    nb = json.loads((tmp_path / "out" / "01_covariate_shift__smoke.ipynb").read_text())
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(injected) == 1 and "seed = 3" in "".join(injected[0]["source"])
    outputs = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    assert "profile: smoke with seed=3" in outputs and "device: cpu" in outputs
    stored = list((tmp_path / "results" / "01_covariate_shift").glob("*__smoke__*.json"))
    assert len(stored) == 1 and json.loads(stored[0].read_text())["config"]["seed"] == 3


@needs_mnist
def test_cli_reports_a_bad_value_in_one_line_and_leaves_no_notebook(tmp_path):
    proc = _cli("01", "--profile", "smoke", "-p", "lr", "-1", "--out", str(tmp_path / "out"),
                tmp_path=tmp_path)
    assert proc.returncode == 1
    assert "the chapter failed: ValueError: parameter lr=-1.0 must be >= 1e-06" in proc.stderr
    assert list((tmp_path / "out").iterdir()) == []
    assert not (tmp_path / "results").exists()


def test_cli_rejects_an_unknown_chapter_with_exit_code_2(tmp_path):
    proc = _cli("99_nothing", "--profile", "smoke", tmp_path=tmp_path)
    assert proc.returncode == 2 and proc.stderr.startswith("error: unknown chapter '99_nothing'")
