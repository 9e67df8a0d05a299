"""The headless runner: chapter lookup, parameters, and a real papermill run with its errors."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import needs_mnist

from bn_utils.book import run

REPO = Path(__file__).resolve().parents[2]


def test_chapters_are_found_by_full_name_number_or_topic():
    assert "01_covariate_shift" in run.chapters()
    for name in ("01_covariate_shift", "01", "covariate_shift", "chapters/01_covariate_shift.ipynb"):
        assert run.resolve_chapter(name).name == "01_covariate_shift.ipynb"


def test_an_unknown_chapter_lists_the_chapters():
    with pytest.raises(ValueError, match=r"unknown chapter 'mnsit'; chapters: 01_covariate_shift"):
        run.resolve_chapter("mnsit")


@pytest.mark.parametrize("text, value", [("3", 3), ("0.1", 0.1), ("(0, 1)", [0, 1]), ("0,1", [0, 1]),
                                         ("[2]", [2]), ("True", True), ("None", None),
                                         ("relu", "relu"), ("10**20", "10**20")])
def test_parameter_values_are_read_as_python_literals(text, value):
    assert run.parse_value(text) == value


CRAFTED = "('\"; open(MARKER, \"w\").close(); x = \"',)"


def test_a_crafted_tuple_value_is_injected_as_a_string_not_as_code(tmp_path):
    # papermill writes a tuple with str(), unescaped, into the injected cell: the tuple above
    # then closes the string papermill opened and calls open(); a list is escaped item by item.
    from papermill.translators import PythonTranslator

    marker = tmp_path / "marker"
    code = PythonTranslator.codify({"seeds": run.parse_value(CRAFTED)})
    namespace = {"MARKER": str(marker)}
    exec(code, namespace)  # what the kernel runs
    assert not marker.exists()
    assert namespace["seeds"] == ['"; open(MARKER, "w").close(); x = "']


def test_the_cli_refuses_a_crafted_value_before_a_kernel_starts(tmp_path):
    proc = _cli("01", "--profile", "smoke", "-p", "activation", CRAFTED, "--out", str(tmp_path / "out"),
                tmp_path=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "parameter activation=" in proc.stderr and not (tmp_path / "out").exists()


def test_the_tuple_forms_the_docstring_shows_reach_the_config_as_a_list(tmp_path):
    from papermill.translators import PythonTranslator

    nb = run.resolve_chapter("04")
    for text in ("0,1", "(0, 1)", "[0, 1]"):
        cfg, params = run.check_config(nb, "smoke", {"seeds": run.parse_value(text)})
        assert cfg.seeds == (0, 1) and params == {"seeds": [0, 1]}
    cfg, params = run.check_config(nb, "smoke", {"activations": "sigmoid,relu"})
    assert cfg.activations == ("sigmoid", "relu")
    assert "activations = [\"sigmoid\", \"relu\"]" in PythonTranslator.codify(params)


def test_list_prints_the_chapters(tmp_path):
    proc = _cli("--list", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == run.chapters()


def test_a_missing_chapter_is_an_argument_error(tmp_path):
    proc = _cli("--profile", "smoke", tmp_path=tmp_path)
    assert proc.returncode == 2 and "required: chapter" in proc.stderr


@pytest.mark.parametrize("where", ["results", "out"])
def test_an_unwritable_results_or_out_folder_fails_before_anything_runs(where, tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr("papermill.execute_notebook", lambda *a, **k: started.append(a))
    afile = tmp_path / "a_file"
    afile.write_text("")
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    readonly.chmod(0o555)
    try:
        for bad, why in ((afile, "is a file, not a folder"), (readonly / "sub", "is not writable"),
                         (readonly, "is not writable")):
            folders = {"out": tmp_path / "out", "results": tmp_path / "res", where: bad}
            with pytest.raises(ValueError, match=f"--{where} .*{why}"):
                run.run_chapter("01", "smoke", out=folders["out"], results=folders["results"])
    finally:
        readonly.chmod(0o755)
    assert not started


def test_temporary_notebooks_of_dead_runs_are_removed_at_the_next_start(tmp_path):
    stale = tmp_path / ".01_covariate_shift.999999999.abc.ipynb"   # no such process
    alive = tmp_path / f".01_covariate_shift.{os.getpid()}.def.ipynb"
    other = tmp_path / ".02_forward_pass.999999999.ghi.ipynb"
    mine = tmp_path / ".01_covariate_shift.notes.ipynb"               # not a run's temporary
    for p in (stale, alive, other, mine):
        p.write_text("{}")
    run._remove_stale_temporaries(tmp_path, "01_covariate_shift")
    assert not stale.exists() and alive.exists() and other.exists() and mine.exists()


def test_unknown_parameters_and_profiles_fail_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match=r"unknown parameter lernrate for 01_covariate_shift; allowed: steps"):
        run.run_chapter("01", "smoke", {"lernrate": 0.1}, out=tmp_path)
    with pytest.raises(ValueError, match="unknown profile 'medium'"):
        run.run_chapter("01", "medium", out=tmp_path)
    with pytest.raises(ValueError, match="--profile"):
        run.run_chapter("01", "smoke", {"profile": "full"}, out=tmp_path)
    assert list(tmp_path.iterdir()) == []


def _cli(*args, tmp_path):
    env = {**os.environ, "BN_RESULTS_DIR": str(tmp_path / "results")}
    return subprocess.run([sys.executable, "-m", "bn_utils.book.run", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


@needs_mnist
def test_cli_runs_a_chapter_with_injected_parameters_and_writes_results(tmp_path):
    proc = _cli("01", "--profile", "smoke", "-p", "seed", "3", "--out", str(tmp_path / "out"),
                tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    nb = json.loads((tmp_path / "out" / "01_covariate_shift__smoke.ipynb").read_text())
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(injected) == 1 and "seed = 3" in "".join(injected[0]["source"])
    outputs = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    assert "profile: smoke with seed=3" in outputs and "device: cpu" in outputs
    stored = list((tmp_path / "results" / "01_covariate_shift").glob("*__smoke__*.json"))
    assert sorted(p.name.split("__")[0] for p in stored) == ["shift", "shift_seeds"]   # the run, its extra seeds
    assert all(json.loads(p.read_text())["config"]["seed"] == 3 for p in stored)
    umask = os.umask(0)
    os.umask(umask)
    mode = (tmp_path / "out" / "01_covariate_shift__smoke.ipynb").stat().st_mode & 0o777
    assert mode == 0o666 & ~umask   # not mkstemp's 0600


def test_cli_reports_a_bad_value_in_one_line_before_a_kernel_starts(tmp_path):
    proc = _cli("01", "--profile", "smoke", "-p", "lr", "-1", "--out", str(tmp_path / "out"),
                tmp_path=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == "error: parameter lr=-1.0 must be >= 1e-06\n"
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "results").exists()


@needs_mnist
def test_a_run_stopped_by_sigterm_leaves_no_notebook_behind(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "BN_RESULTS_DIR": str(tmp_path / "results")}
    proc = subprocess.Popen([sys.executable, "-m", "bn_utils.book.run", "01", "--profile", "smoke",
                             "--out", str(out)], cwd=REPO, env=env, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 120
    while not list(out.glob(".*.ipynb")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert list(out.glob(".*.ipynb")), "the run never started"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "stopped by signal" in err
    assert list(out.iterdir()) == []


def test_cli_rejects_an_unknown_chapter_with_exit_code_2(tmp_path):
    proc = _cli("99_nothing", "--profile", "smoke", tmp_path=tmp_path)
    assert proc.returncode == 2 and proc.stderr.startswith("error: unknown chapter '99_nothing'")


def test_the_config_registry_names_the_class_and_keywords_each_chapter_builds():
    """run.CONFIGS against the notebooks: the class whose ``for_profile`` a chapter's setup calls,
    with one keyword per parameter of the same name, is the one the runner checks a value with."""
    import ast

    assert set(run.CONFIGS) == set(run.chapters())
    for chapter in run.chapters():
        nb = run.resolve_chapter(chapter)
        code = "\n".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"]
                         if c["cell_type"] == "code" and not "".join(c["source"]).lstrip().startswith(("%", "!")))
        calls = [node for node in ast.walk(ast.parse(code)) if isinstance(node, ast.Call)
                 and isinstance(node.func, ast.Attribute) and node.func.attr == "for_profile"
                 and isinstance(node.func.value, ast.Attribute) and isinstance(node.args[0], ast.Name)
                 and node.args[0].id == "profile"]
        found = run.config_call(nb)
        if found is None:
            assert not calls, chapter
            continue
        cls, keywords = found
        assert calls and calls[0].func.value.attr == cls.__name__, chapter
        assert {k.arg: k.value.id for k in calls[0].keywords} == keywords, chapter
