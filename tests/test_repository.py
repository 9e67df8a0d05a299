"""The repository address is one setting (_config.yml); chapters and README follow it."""

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("set_repository", REPO / "tools" / "set_repository.py")
set_repository = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(set_repository)


def test_every_chapter_and_the_readme_use_the_configured_repository():
    assert set_repository.sync(check=True) == []


def test_every_chapter_has_the_colab_setup_that_does_nothing_outside_colab():
    import json

    for path in set_repository.chapters():
        nb = json.loads(path.read_text())
        cell, text = set_repository._setup_source(nb)
        assert 'if "google.colab" in sys.modules:' in text, path.name
        assert "BN_RESULTS_DIR" in text, f"{path.name}: Colab would not see the stored results"


@pytest.mark.parametrize("url", ["not a url", "http://github.com/a/b", "https://gitlab.com/a/b",
                                 "https://github.com/only-owner", None, 3,
                                 "https://github.com/../..", "https://github.com/a/..",
                                 "https://github.com/a/b\nimport os", "https://github.com/a/b\"",
                                 "https://github.com/a/b\\", "https://github.com/a/b/",
                                 "https://github.com/-a/b", "https://github.com/a/b c",
                                 "https://github.com/a/b?x=1", "https://github.com/a/b#x",
                                 "https://user@github.com/a/b", "https://github.com:443/a/b",
                                 " https://github.com/a/b"])
def test_a_repository_setting_that_is_not_a_github_url_fails_naming_the_setting(tmp_path, url):
    import yaml

    config = tmp_path / "_config.yml"
    config.write_text(yaml.safe_dump({"repository": {"url": url, "branch": "main"}}))
    with pytest.raises(set_repository.SettingError, match=r"repository\.url in _config\.yml"):
        set_repository.repository(config)


def test_the_configured_repository_is_read_with_its_branch():
    url, branch = set_repository.repository()
    assert url.startswith("https://github.com/") and branch


def _book(tmp_path, url, line='REPOSITORY = "https://github.com/bn-book/bn-book"  # set\n'):
    """A minimal book in tmp_path: _config.yml naming ``url``, a README, one chapter whose setup
    cell holds ``line``; return its root."""
    import json

    import yaml

    (tmp_path / "chapters").mkdir()
    (tmp_path / "_config.yml").write_text(yaml.safe_dump({"repository": {"url": url}}))
    (tmp_path / "README.md").write_text(
        "open https://colab.research.google.com/github/bn-book/bn-book/blob/main/chapters/x\n")
    cell = {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
            "source": ["import sys\n", line, "if 'google.colab' in sys.modules:\n", "    pass\n"]}
    (tmp_path / "chapters" / "01_x.ipynb").write_text(json.dumps({"cells": [cell]}))
    return tmp_path


def _setup_text(root):
    import json

    nb = json.loads((root / "chapters" / "01_x.ipynb").read_text())
    return set_repository._setup_source(nb)[1]


def test_no_repository_setting_adds_code_to_a_chapter(tmp_path):
    """Property: for random URLs made of quotes, newlines, backslashes and the like, either the
    setting is refused or the chapter's setup cell differs only in the REPOSITORY line, and that
    line is one assignment of exactly the configured string."""
    import ast
    import random
    import shutil

    rng = random.Random(26)
    alphabet = list("ab-._/\"'\\\n\r\t #+()[]{};:,=%$`") + ["\u2028", "\x00", "é", "..", '"+"']
    prefixes = ["https://github.com/", "https://github.com/a/", "https://github.com/a/b", ""]
    accepted = 0
    for i in range(300):
        url = rng.choice(prefixes) + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))
        root = tmp_path / str(i)
        root.mkdir()
        _book(root, url)
        before = _setup_text(root).splitlines()
        try:
            set_repository.sync(check=False, root=root)
        except set_repository.SettingError:
            shutil.rmtree(root)
            continue
        accepted += 1
        after = _setup_text(root).splitlines()
        assert len(after) == len(before) and after[0] == before[0] and after[2:] == before[2:], url
        (node,) = ast.parse(after[1]).body
        assert isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant), url
        assert node.value.value == url and set_repository.sync(check=True, root=root) == []
        shutil.rmtree(root)
    assert accepted > 10  # the property was tried on URLs that pass, not only on refused ones


def test_a_poisoned_repository_line_is_reported_by_check_and_replaced(tmp_path):
    poisoned = ('REPOSITORY = "https://github.com/bn-book/bn-book"+__import__("pathlib")'
                '.Path("PWNED").touch()+""  # from _config.yml (make set-repository)\n')
    root = _book(tmp_path, "https://github.com/bn-book/bn-book", line=poisoned)
    assert set_repository.sync(check=True, root=root) == ["01_x.ipynb"]
    set_repository.sync(check=False, root=root)
    assert set_repository.setup_line("https://github.com/bn-book/bn-book") in _setup_text(root)
    assert "PWNED" not in _setup_text(root)
    assert set_repository.sync(check=True, root=root) == []


def test_the_written_line_is_the_one_the_chapters_hold():
    import json

    url, _ = set_repository.repository()
    for path in set_repository.chapters():
        text = set_repository._setup_source(json.loads(path.read_text()))[1]
        assert set_repository.setup_line(url) in text.splitlines(), path.name
