"""A reader's install, end to end: the wheel (not the editable checkout) in a fresh environment,
one chapter copied into an empty folder outside the checkout and executed there at smoke."""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHAPTER = "01_covariate_shift.ipynb"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Build the wheel from a copy of the sources (no build/ or egg-info left in the checkout)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "bn_utils", src / "bn_utils",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-index",
                    "--no-build-isolation", "-w", str(out), str(src)], check=True)
    return next(out.glob("bn_book-*.whl"))


@pytest.fixture(scope="module")
def reader_python(wheel, tmp_path_factory) -> Path:
    """A fresh venv holding the wheel; it borrows this venv's torch & co. through a path entry
    (a plain path: the checkout's editable-install hook there is not loaded)."""
    venv = tmp_path_factory.mktemp("reader") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    "--target", str(site), str(wheel)], check=True)
    return venv / "bin" / "python"


def _clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "BN_RESULTS_DIR")}
    return {**env, "BN_PROGRESS": "0", **extra}


def test_wheel_contains_every_module_of_the_package(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(REPO).as_posix() for p in (REPO / "bn_utils").rglob("*.py")}
    assert modules, "no modules found"
    assert modules <= names, f"missing from the wheel: {sorted(modules - names)}"


def test_every_module_imports_from_the_installed_wheel(reader_python, tmp_path):
    code = ("import importlib, pkgutil, bn_utils\n"
            "mods = [m.name for m in pkgutil.walk_packages(bn_utils.__path__, 'bn_utils.')]\n"
            "[importlib.import_module(m) for m in mods]\n"
            "print(bn_utils.__file__, len(mods))")
    out = subprocess.run([str(reader_python), "-c", code], cwd=tmp_path, env=_clean_env(),
                         capture_output=True, text=True, check=True).stdout
    path, count = out.split()
    assert Path(path).is_relative_to(reader_python.parents[1]), f"bn_utils imported from {path}"
    assert int(count) >= len(list((REPO / "bn_utils").rglob("*.py"))) - 2  # minus __init__s


def test_a_chapter_runs_outside_the_checkout_and_says_it_has_no_stored_results(reader_python,
                                                                               tmp_path):
    if not os.environ.get("BN_DATA_DIR"):
        pytest.skip("BN_DATA_DIR is not set (tests never download)")
    shutil.copy(REPO / "chapters" / CHAPTER, tmp_path / CHAPTER)
    env = _clean_env(BN_PROFILE="smoke", BN_DATA_DIR=str(Path(os.environ["BN_DATA_DIR"]).resolve()))
    subprocess.run([str(reader_python), "-m", "papermill", "--log-level", "WARNING", "-k", "python3",
                    CHAPTER, "executed.ipynb"], cwd=tmp_path, env=env, check=True)
    nb = json.loads((tmp_path / "executed.ipynb").read_text())
    text = "".join(o.get("text", "") if isinstance(o.get("text"), str) else "".join(o.get("text", []))
                   for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", []))
    assert "profile: smoke" in text
    assert "stored results: none found in ./results" in text
    assert (tmp_path / "results").is_dir(), "the chapter stored its run next to the notebook"
