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
                                 "https://github.com/only-owner", None, 3])
def test_a_repository_setting_that_is_not_a_github_url_fails_naming_the_setting(tmp_path, url):
    import yaml

    config = tmp_path / "_config.yml"
    config.write_text(yaml.safe_dump({"repository": {"url": url, "branch": "main"}}))
    with pytest.raises(set_repository.SettingError, match=r"repository\.url in _config\.yml"):
        set_repository.repository(config)


def test_the_configured_repository_is_read_with_its_branch():
    url, branch = set_repository.repository()
    assert url.startswith("https://github.com/") and branch
