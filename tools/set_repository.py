"""One setting for the repository's address: ``repository.url`` (and ``branch``) in _config.yml.

Writes it into every chapter's setup cell (the ``REPOSITORY = ...`` line the Colab set-up clones)
and into the README's Colab links. ``--check`` only reports where they disagree (exit 1), which
tests/test_repository.py runs. Usage: python tools/set_repository.py [--check]
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from urllib.parse import urlparse

import yaml

REPO = Path(__file__).resolve().parents[1]
SETUP_LINE = re.compile(r'^REPOSITORY = "[^"]*"', re.M)
COLAB_LINK = re.compile(r"https://colab\.research\.google\.com/github/[^\s)`]+?/blob/[^/\s]+/")


class SettingError(ValueError):
    """The repository setting in _config.yml is missing or not a GitHub URL."""


def repository(config: Path = REPO / "_config.yml") -> tuple[str, str]:
    """Return (url, branch) from _config.yml, or raise SettingError naming the setting."""
    repo = (yaml.safe_load(config.read_text()) or {}).get("repository") or {}
    url, branch = repo.get("url"), repo.get("branch", "main")
    parsed = urlparse(url) if isinstance(url, str) else None
    if (parsed is None or parsed.scheme != "https" or parsed.netloc != "github.com"
            or len(parsed.path.strip("/").split("/")) != 2):
        raise SettingError(f"repository.url in {config.name} must be a GitHub repository URL "
                           f"like https://github.com/OWNER/NAME (Colab opens notebooks from "
                           f"GitHub), not {url!r}")
    if not isinstance(branch, str) or not re.fullmatch(r"[\w./-]+", branch):
        raise SettingError(f"repository.branch in {config.name} is not a branch name: {branch!r}")
    return url.rstrip("/"), branch


def chapters() -> list[Path]:
    """Return the chapter notebooks."""
    return sorted((REPO / "chapters").glob("[0-9][0-9]_*.ipynb"))


def _setup_source(nb: dict) -> tuple[dict, str] | None:
    for cell in nb["cells"]:
        text = "".join(cell["source"])
        if cell["cell_type"] == "code" and SETUP_LINE.search(text):
            return cell, text
    return None


def sync(check: bool) -> list[str]:
    """Rewrite (or, with ``check``, only compare) every place that names the repository; return
    the files that disagree(d) with _config.yml."""
    url, branch = repository()
    owner_name = urlparse(url).path.strip("/")
    stale = []
    for path in chapters():
        nb = json.loads(path.read_text())
        found = _setup_source(nb)
        if found is None:
            stale.append(f"{path.name}: no 'REPOSITORY = ...' line in its setup cell")
            continue
        cell, text = found
        new = SETUP_LINE.sub(f'REPOSITORY = "{url}"', text)
        if new != text:
            stale.append(path.name)
            if not check:
                cell["source"] = new.splitlines(keepends=True)
                path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    readme = REPO / "README.md"
    text = readme.read_text()
    new = COLAB_LINK.sub(f"https://colab.research.google.com/github/{owner_name}/blob/{branch}/", text)
    new = re.sub(r"^REPOSITORY=\S+", f"REPOSITORY={url}", new, flags=re.M)
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
