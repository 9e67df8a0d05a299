"""Every benchmark and tool script imports: a module moved or renamed in the package breaks the
script that uses it here, not the next time someone runs it by hand."""

import importlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "benchmarks").glob("*.py")) + sorted((ROOT / "tools").glob("*.py"))


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_script_imports(path, monkeypatch):
    monkeypatch.syspath_prepend(str(path.parent))
    monkeypatch.setattr(sys, "argv", [str(path)])
    name = path.stem
    sys.modules.pop(name, None)
    try:
        importlib.import_module(name)
    finally:
        sys.modules.pop(name, None)
