"""tools/check_versions.py deletes only folders it made, checks versions first, and records only
a run that completed."""

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("check_versions", REPO / "tools" / "check_versions.py")
check_versions = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_versions)


@pytest.fixture
def no_work(monkeypatch):
    """Record every subprocess the tool would start, and start none."""
    started = []
    monkeypatch.setattr(check_versions.subprocess, "run",
                        lambda *a, **k: started.append(a) or pytest.fail(f"started {a}"))
    monkeypatch.setattr(check_versions, "RECORD", Path("/nonexistent/never-written.json"))
    return started


def test_a_folder_it_did_not_make_is_neither_emptied_nor_deleted(tmp_path, no_work, capsys):
    venv, src = tmp_path / "mine", tmp_path / "mine-src"
    venv.mkdir()
    (venv / "thesis.tex").write_text("years of work")
    assert check_versions.main(["--venv", str(venv)]) == 2
    assert (venv / "thesis.tex").read_text() == "years of work" and not src.exists()
    err = capsys.readouterr().err
    assert err.startswith("error: --venv") and "did not make" in err and err.count("\n") == 1


def test_its_src_copy_beside_a_folder_it_did_not_make_is_kept(tmp_path, no_work, capsys):
    (tmp_path / "v-src").mkdir()
    (tmp_path / "v-src" / "notes.txt").write_text("keep")
    assert check_versions.main(["--venv", str(tmp_path / "v")]) == 2
    assert (tmp_path / "v-src" / "notes.txt").read_text() == "keep"
    assert "-src" in capsys.readouterr().err


def test_a_folder_with_its_marker_is_emptied_and_marked_again(tmp_path):
    folder = tmp_path / "v"
    check_versions.claim_folder(folder, "--venv")
    (folder / "bin").mkdir()
    check_versions.claim_folder(folder, "--venv")
    assert [p.name for p in folder.iterdir()] == [check_versions.MARKER]


@pytest.mark.parametrize("make", ["file", "link"])
def test_a_file_or_link_as_venv_is_refused(tmp_path, make):
    target = tmp_path / "v"
    if make == "file":
        target.write_text("x")
    else:
        (tmp_path / "elsewhere").mkdir()
        target.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(check_versions.UsageError, match="not a folder this tool made"):
        check_versions.claim_folder(target, "--venv")


@pytest.mark.parametrize("option, value, expected", [
    ("--torch", "0.0.0", "--torch 0.0.0 is older than 1.11"),
    ("--torch", "2.5.1; rm -rf /", "is not a release version"),
    ("--numpy", "latest", "--numpy 'latest' is not a release version"),
    ("--torchvision", "0.20.1\n", "is not a release version"),
    ("--torch", "2", "is not a release version"),
])
def test_a_bad_version_fails_before_any_work(tmp_path, no_work, capsys, option, value, expected):
    venv = tmp_path / "v"
    assert check_versions.main([option, value, "--venv", str(venv)]) == 2
    assert expected in capsys.readouterr().err
    assert not venv.exists() and not no_work


@pytest.mark.parametrize("steps, written", [
    ([{"step": "venv", "exit": 1}], False),
    ([{"step": "install", "exit": 1}], False),
    ([{"step": "install", "exit": 0}, {"step": "pytest", "exit": 1}], True),
    ([{"step": s, "exit": 0} for s in check_versions.STEPS], True),
])
def test_the_record_is_written_only_after_a_completed_run(tmp_path, steps, written):
    path = tmp_path / "check_versions.json"
    path.write_text('{"cited": "by the README"}\n')
    assert check_versions.write_record({"steps": steps}, path) is written
    assert (json.loads(path.read_text()) == {"steps": steps}) is written
