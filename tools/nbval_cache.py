"""pytest plugin: the chapters nbval executes become Jupyter Book's execution cache.

``make test`` runs every chapter at the smoke profile twice over: nbval executes it cell by
cell (errors and ``NBVAL_CHECK_OUTPUT`` cells), then ``jupyter-book build`` executes it again for
the smoke build. With this plugin (``pytest -p tools.nbval_cache``) and ``BN_NBVAL_CACHE`` set to
that build's ``.jupyter_cache`` folder, each notebook whose cells all passed is stored there with
the outputs nbval received, exactly as the build would have cached its own execution, and the
build then reads it instead of running the chapter a second time. Without the variable it does
nothing.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
import pytest

ENV = "BN_NBVAL_CACHE"
_runs: dict[Path, dict] = {}   # notebook → {"outputs": {cell_num: [...]}, "failed": bool, "seconds": float}


def _notebook_run(item) -> dict:
    path = Path(str(item.parent.fspath)).resolve()
    return _runs.setdefault(path, {"outputs": {}, "failed": False, "seconds": 0.0})


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """Time each nbval cell (the cached record says how long the chapter ran)."""
    start = time.perf_counter()
    yield
    if hasattr(item, "cell_num") and hasattr(item, "test_outputs"):
        _notebook_run(item)["seconds"] += time.perf_counter() - start


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep the outputs nbval received for every executed code cell."""
    outcome = yield
    if call.when == "call" and hasattr(item, "cell_num") and hasattr(item, "test_outputs"):
        run = _notebook_run(item)
        if outcome.get_result().failed or item.test_outputs is None:
            run["failed"] = True
        else:
            run["outputs"][item.cell_num] = item.test_outputs


def executed_notebook(path: Path, outputs: dict) -> nbformat.NotebookNode | None:
    """Return the notebook at ``path`` with ``outputs`` (by code-cell number) filled in, or None
    when a code cell has none recorded (it did not run)."""
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    if set(outputs) != set(range(len(code))):
        return None
    for number, cell in enumerate(code):
        cell.outputs = [nbformat.from_dict(dict(o)) for o in outputs[number]]
        cell.execution_count = number + 1
        for out in cell.outputs:
            if out.output_type == "execute_result":
                out.execution_count = number + 1
    return nb


def pytest_sessionfinish(session):
    """Store every notebook whose cells all passed in the build's execution cache."""
    folder = os.environ.get(ENV)
    if not folder:
        return
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache = get_cache(folder)
    stored = []
    for path, run in _runs.items():
        nb = None if run["failed"] else executed_notebook(path, run["outputs"])
        if nb is None:
            continue
        cache.cache_notebook_bundle(CacheBundleIn(nb, str(path), data={"execution_seconds": run["seconds"]}),
                                    check_validity=False, overwrite=True)
        stored.append(path.name)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"nbval_cache: {len(stored)} executed chapters stored in {folder}")
