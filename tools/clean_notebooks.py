"""Strip a notebook's outputs and execution counts, except in cells marked ``# NBVAL_CHECK_OUTPUT``:
nbval compares those outputs with a fresh run, and only checks a cell stored as executed (its
execution count must not be null). Usage: python tools/clean_notebooks.py NB..."""

import json
import sys


def clean(path: str) -> bool:
    """Clean one notebook in place; return True if it changed."""
    with open(path) as f:
        nb = json.load(f)
    before = json.dumps(nb, sort_keys=True)
    for cell in nb["cells"]:
        cell.get("metadata", {}).pop("execution", None)
        if cell["cell_type"] != "code":
            continue
        checked = "NBVAL_CHECK_OUTPUT" in "".join(cell["source"])
        if not checked:
            cell["outputs"] = []
        cell["execution_count"] = 1 if checked and cell["outputs"] else None
        for out in cell["outputs"]:
            if "execution_count" in out:
                out["execution_count"] = None
    nb.get("metadata", {}).pop("papermill", None)
    changed = json.dumps(nb, sort_keys=True) != before
    if changed:
        with open(path, "w") as f:
            json.dump(nb, f, indent=1, ensure_ascii=False)
            f.write("\n")
    return changed


if __name__ == "__main__":
    for p in sys.argv[1:]:
        if clean(p):
            print(f"cleaned {p}")
