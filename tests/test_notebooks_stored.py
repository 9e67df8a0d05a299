"""How the chapters are stored: valid nbformat (every cell has a unique id), no outputs except in
cells whose output nbval checks, and the papermill parameters cell first."""

import json
from pathlib import Path

import pytest

CHAPTERS = sorted((Path(__file__).resolve().parents[1] / "chapters").glob("*.ipynb"))


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_a_chapter_is_stored_clean_with_cell_ids_and_its_parameters_cell_first(path):
    nb = json.loads(path.read_text())
    ids = [cell.get("id") for cell in nb["cells"]]
    assert None not in ids and len(set(ids)) == len(ids), "every cell needs a unique id (nbformat 4.5)"
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and "NBVAL_CHECK_OUTPUT" not in "".join(cell["source"]):
            assert cell["outputs"] == [] and cell["execution_count"] is None, "".join(cell["source"])[:80]
    first = next(c for c in nb["cells"] if c["cell_type"] == "code")
    assert "parameters" in first["metadata"].get("tags", [])
    assert 'profile = os.environ.get("BN_PROFILE", "quick")' in "".join(first["source"])
