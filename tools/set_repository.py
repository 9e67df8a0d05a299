"""One setting for the repository's address: ``repository.url`` (and ``branch``) in _config.yml.

Writes it into every chapter's setup cell (the ``REPOSITORY = ...`` line the Colab set-up clones)
and into the README's Colab links. ``--check`` only reports where they disagree (exit 1), which
tests/test_repository.py runs. Usage: python tools/set_repository.py [--check]

The setting never becomes code: the URL must be exactly https://github.com/OWNER/NAME in GitHub's
characters, it is written as a JSON string literal (valid Python), the whole ``REPOSITORY`` line is
rewritten (so a line poisoned by an older version is replaced), and ``--check`` compares the value
the chapter's Python would see, not a pattern.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
# GitHub: an owner is 1-39 letters, digits and single inner hyphens; a name is 1-100 letters,
# digits, '.', '_' and '-', but not '.' or '..' (which would climb out of github.com/OWNER/).
OWNER = r"[A-Za-z0-9](?:-?[A-Za-z0-9]){0,38}"
NAME = r"(?!\.{1,2}\Z)[A-Za-z0-9._-]{1,100}"
GITHUB_URL = re.compile(rf"https://github\.com/({OWNER})/({NAME})")
BRANCH = re.compile(r"(?!-)(?!.*\.\.)[A-Za-z0-9._/-]{1,100}")
OWNED_LINE = re.compile(r"^REPOSITORY\b.*$", re.M)  # the whole line, whatever it holds now
COMMENT = "  # from _config.yml (make set-repository)"
COLAB_LINK = re.compile(r"https://colab\.research\.google\.com/github/[^\s)`]+?/blob/[^/\s]+/")


class SettingError(ValueError):
    """The repository setting in _config.yml is missing or not a GitHub URL."""


def repository(config: Path = REPO / "_config.yml") -> tuple[str, str]:
    """Return (url, branch) from _config.yml, or raise SettingError naming the setting."""
    repo = (yaml.safe_load(config.read_text()) or {}).get("repository") or {}
    url, branch = repo.get("url"), repo.get("branch", "main")
    if not isinstance(url, str) or not GITHUB_URL.fullmatch(url):
        raise SettingError(f"repository.url in {config.name} must be exactly "
                           f"https://github.com/OWNER/NAME (letters, digits, '-', and '.', '_' "
                           f"in NAME; Colab opens notebooks from GitHub), not {url!r}")
    if not isinstance(branch, str) or not BRANCH.fullmatch(branch):
        raise SettingError(f"repository.branch in {config.name} is not a branch name: {branch!r}")
    return url, branch


def setup_line(url: str) -> str:
    """Return the chapter's ``REPOSITORY = ...`` line for ``url`` (a JSON string is Python)."""
    return f"REPOSITORY = {json.dumps(url)}{COMMENT}"


def chapters(root: Path = REPO) -> list[Path]:
    """Return the chapter notebooks."""
    return sorted((root / "chapters").glob("[0-9][0-9]_*.ipynb"))


def _setup_source(nb: dict) -> tuple[dict, str] | None:
    for cell in nb["cells"]:
        text = "".join(cell["source"])
        if cell["cell_type"] == "code" and OWNED_LINE.search(text):
            return cell, text
    return None


def repository_value(text: str) -> object:
    """Return the value the setup cell's Python assigns to REPOSITORY (None if it is not one
    plain assignment of a string, or the cell does not parse)."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    values = [node.value for node in tree.body if isinstance(node, ast.Assign)
              and any(isinstance(t, ast.Name) and t.id == "REPOSITORY" for t in node.targets)]
    if len(values) != 1 or not isinstance(values[0], ast.Constant):
        return None
    return values[0].value


def _sync_chapter(path: Path, url: str, check: bool) -> str | None:
    """Rewrite one chapter's REPOSITORY line; return why it was stale, or None."""
    nb = json.loads(path.read_text())
    found = _setup_source(nb)
    if found is None:
        return f"{path.name}: no 'REPOSITORY = ...' line in its setup cell"
    cell, text = found
    new = OWNED_LINE.sub(lambda _: setup_line(url), text)
    if new == text and repository_value(text) == url:
        return None
    if not check:
        cell["source"] = new.splitlines(keepends=True)
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return path.name


def sync(check: bool, root: Path = REPO) -> list[str]:
    """Rewrite (or, with ``check``, only compare) every place that names the repository; return
    the files that disagree(d) with _config.yml."""
    url, branch = repository(root / "_config.yml")
    owner, name = GITHUB_URL.fullmatch(url).groups()
    stale = [why for path in chapters(root) if (why := _sync_chapter(path, url, check))]
    readme = root / "README.md"
    text = readme.read_text()
    link = f"https://colab.research.google.com/github/{owner}/{name}/blob/{branch}/"
    new = COLAB_LINK.sub(lambda _: link, text)
    if new != text:
        stale.append(readme.name)
        if not check:
            readme.write_text(new)
    return stale


def main(argv: list[str]) -> int:
    check = "--check" in argv
    try:
        stale = sync(check)
    except SettingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    verb = "disagree with _config.yml" if check else "rewritten from _config.yml"
    if stale:
        print(f"{verb}: {', '.join(stale)}")
    return 1 if (check and stale) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
