"""The install files agree with each other: pyproject (lower bounds), environment.yml, constraints."""

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[]", req, maxsplit=1)[0].lower().replace("_", "-")


def _pyproject_requirements() -> list[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return project["dependencies"] + project["optional-dependencies"]["book"]


def test_environment_yml_lists_the_same_requirements_as_pyproject():
    text = (REPO / "environment.yml").read_text().split("- pip:", 1)[1]
    pip_reqs = [m.group(1).strip() for m in re.finditer(r"^\s+- (?!-e )(.+)$", text, re.M)]
    assert sorted(pip_reqs) == sorted(_pyproject_requirements())


def test_pyproject_has_lower_bounds_only_and_constraints_pin_every_requirement():
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[_name(name)] = version
    for req in _pyproject_requirements():
        assert "==" not in req, f"exact pin {req!r} belongs in constraints.txt, not pyproject.toml"
        assert _name(req) in pins, f"{req!r} is not pinned in constraints.txt"
    assert {"torch", "torchvision"} <= pins.keys()
