"""The Makefile's cache digest: editing any file of the package clears make book's cached outputs."""

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _digest(checkout: Path) -> str:
    """Return what `make code-digest` prints in ``checkout`` (the digest forget-stale-outputs keeps)."""
    run = subprocess.run(["make", "-s", "--no-print-directory", "code-digest"], cwd=checkout,
                         capture_output=True, text=True, timeout=60, check=True)
    return run.stdout.strip()


@pytest.fixture
def checkout(tmp_path):
    """A temporary copy of the Makefile and the package, to edit without touching the real one."""
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    shutil.copytree(REPO / "bn_utils", tmp_path / "bn_utils",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def _deepest_module(package: Path) -> Path:
    """Return a .py file at least three folders below the package (bn_utils/a/b/c.py)."""
    deep = sorted(p for p in package.rglob("*.py") if len(p.relative_to(package).parts) >= 3)
    assert deep, "the package has no module three levels deep: pick another file to edit"
    return deep[0]


def test_the_cache_digest_changes_when_a_subpackage_file_three_levels_deep_changes(checkout):
    before = _digest(checkout)
    assert before == _digest(checkout), "the digest is not deterministic"
    path = _deepest_module(checkout / "bn_utils")
    path.write_text(path.read_text() + "\n# edited\n")
    assert _digest(checkout) != before, f"editing {path.relative_to(checkout)} left the digest as it was"


def test_the_cache_digest_changes_when_a_file_is_added_or_renamed(checkout):
    before = _digest(checkout)
    path = _deepest_module(checkout / "bn_utils")
    path.rename(path.with_name("renamed_" + path.name))
    renamed = _digest(checkout)
    assert renamed != before, "renaming a module left the digest as it was"
    (path.parent / "new_module.py").write_text("")
    assert _digest(checkout) != renamed, "adding an empty module left the digest as it was"


def test_forget_stale_outputs_uses_the_tested_digest():
    text = (REPO / "Makefile").read_text()
    recipe = text.split("define forget-stale-outputs", 1)[1].split("endef", 1)[0]
    assert "$(CODE_DIGEST)" in recipe, "forget-stale-outputs computes its own digest, not the tested one"


def test_an_edited_sphinx_extension_makes_the_book_read_its_pages_again_without_re_executing(tmp_path):
    # run the recipe's shell for a build folder whose records say "executed, read": after an edit of
    # tools/book_html.py the Sphinx record (.doctrees) goes and the execution cache stays
    text = (REPO / "Makefile").read_text()
    recipe = text.split("define forget-stale-outputs", 1)[1].split("endef", 1)[0]
    shell = recipe.strip().lstrip("@").replace("$$", "$").replace("\\\n", "\n").replace("$(1)", str(tmp_path))
    shell = shell.replace("$(CODE_DIGEST)", "echo code")
    (tmp_path / ".jupyter_cache").mkdir()
    (tmp_path / ".doctrees").mkdir()
    (tmp_path / ".bn_utils_digest").write_text("code\n")
    (tmp_path / ".book_html_digest").write_text("an older extension\n")
    subprocess.run(["bash", "-c", shell], cwd=REPO, check=True)
    assert (tmp_path / ".jupyter_cache").is_dir() and not (tmp_path / ".doctrees").exists()
    (tmp_path / ".doctrees").mkdir()
    subprocess.run(["bash", "-c", shell], cwd=REPO, check=True)   # unchanged: both stay
    assert (tmp_path / ".doctrees").is_dir() and (tmp_path / ".jupyter_cache").is_dir()
