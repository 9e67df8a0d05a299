"""tools/nbval_cache.py: what nbval executed is what the smoke build finds in its cache."""

import sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tools import nbval_cache  # noqa: E402

jupyter_cache = pytest.importorskip("jupyter_cache")


def _notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# title"), nbformat.v4.new_code_cell("x = 1"),
                nbformat.v4.new_code_cell("print(x)\nx")]
    nbformat.write(nb, path)
    return path


def _outputs():
    printed = nbformat.v4.new_output("stream", name="stdout", text="1\n")
    shown = nbformat.v4.new_output("execute_result", data={"text/plain": "1"}, execution_count=7)
    return {0: [], 1: [printed, shown]}


def test_executed_notebook_has_the_outputs_in_code_cell_order(tmp_path):
    nb = nbval_cache.executed_notebook(_notebook(tmp_path / "a.ipynb"), _outputs())
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].outputs == []
    assert [o.output_type for o in code[1].outputs] == ["stream", "execute_result"]
    assert code[1].outputs[1].execution_count == code[1].execution_count == 2


def test_a_notebook_with_a_cell_that_did_not_run_is_not_cached(tmp_path):
    outputs = _outputs()
    del outputs[1]
    assert nbval_cache.executed_notebook(_notebook(tmp_path / "a.ipynb"), outputs) is None


def test_the_build_finds_the_stored_notebook_by_its_sources(tmp_path):
    path = _notebook(tmp_path / "a.ipynb")
    cache = jupyter_cache.get_cache(tmp_path / "cache")
    nb = nbval_cache.executed_notebook(path, _outputs())
    from jupyter_cache.base import CacheBundleIn
    cache.cache_notebook_bundle(CacheBundleIn(nb, str(path)), check_validity=False, overwrite=True)
    # what myst-nb does with the unexecuted source notebook when it builds the page
    _, merged = cache.merge_match_into_notebook(nbformat.read(path, as_version=4))
    assert merged.cells[2].outputs[0].text == "1\n"
