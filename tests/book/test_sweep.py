"""Sweeps on submitit: the grid, early errors, a real 2-point sweep through the local executor,
the rerun that skips stored points, a failed job that does not stop the others, Slurm's sbatch."""

import json
import os
import sys

import pytest
from conftest import needs_mnist

from bn_utils.book import sweep


def test_grid_lists_split_on_top_level_commas_only():
    assert sweep.split_values("0,1,2") == [0, 1, 2]
    assert sweep.split_values("(0, 1),(2,)") == [[0, 1], [2]]  # lists: papermill escapes them
    assert sweep.split_values("relu, tanh") == ["relu", "tanh"]
    with pytest.raises(ValueError, match="empty value"):
        sweep.split_values("0,,1")


def test_the_grid_is_the_product_and_seed_means_seeds_where_the_chapter_has_seeds():
    points = sweep.grid("04", "smoke", {"seed": [0, 1], "lr": [0.1, 0.5]})
    assert points == [{"seeds": 0, "lr": 0.1}, {"seeds": 0, "lr": 0.5},
                      {"seeds": 1, "lr": 0.1}, {"seeds": 1, "lr": 0.5}]
    assert sweep.grid("01", "smoke", {"seed": [3]}) == [{"seed": 3}]


def test_the_setup_cell_names_the_chapters_config_class():
    from bn_utils.book import run
    from bn_utils.experiments import ch05_cifar_inception as inception

    cls, fields = sweep.setup_config(run.resolve_chapter("05"))
    assert cls is inception.AblationConfig and fields["seeds"] == "seeds"


@pytest.mark.parametrize("values, message", [
    ({"seed": [0, -1]}, r"grid point \{'seed': -1\}: parameter seed=-1 must be >= 0"),
    ({"activation": ["relu", "swish"]}, "activation='swish' is not allowed"),
    ({"lernrate": [0.1]}, "unknown parameter lernrate for 01_covariate_shift"),
])
def test_a_bad_grid_value_fails_before_any_job_is_submitted(tmp_path, monkeypatch, values, message):
    submitted = []
    monkeypatch.setattr(sweep, "executor", lambda *a, **k: submitted.append(a))
    with pytest.raises(ValueError, match=message):
        sweep.sweep("01", "smoke", values, folder=tmp_path / "sweep")
    assert submitted == [] and not (tmp_path / "sweep").exists()


def test_the_cli_reports_a_bad_value_in_one_line_with_exit_code_2(capsys, tmp_path):
    assert sweep.main(["01", "--profile", "smoke", "-p", "seed", "0,x", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: 01_covariate_shift, grid point {'seed': 'x'}")


def test_slurm_jobs_ask_for_the_partition_gpus_and_time():
    submitit = pytest.importorskip("submitit", reason="submitit is not installed")
    from submitit.slurm.slurm import _make_sbatch_string

    params = sweep.slurm_parameters(time_min=240, gpus=1, partition="gpu", cpus=8, mem_gb=32,
                                    parallel=4)
    text = _make_sbatch_string(command="python -m x", folder="/tmp/logs", map_count=6, **params)
    for line in ("--partition=gpu", "--gpus-per-node=1", "--time=240", "--cpus-per-task=8",
                 "--mem=32GB", "--array=0-5%4"):
        assert line in text, line
    assert submitit


@needs_mnist
def test_a_two_point_local_sweep_writes_both_records_and_a_rerun_skips_them(tmp_path, capsys):
    pytest.importorskip("submitit", reason="submitit is not installed")
    args = ["01", "--profile", "smoke", "-p", "seed", "3,4", "--executor", "local",
            "--parallel", "2", "--out", str(tmp_path / "sweep"),
            "--results", str(tmp_path / "results")]
    assert sweep.main(args) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    assert out.count(" ran ") == 2, out
    stored = sorted((tmp_path / "results" / "01_covariate_shift").glob("*__smoke__*.json"))
    main = [p for p in stored if p.name.startswith("shift__")]    # beside each: its extra seeds' record
    assert sorted(json.loads(p.read_text())["config"]["seed"] for p in main) == [3, 4]
    assert len(stored) == 4 and all(p.name.startswith(("shift__", "shift_seeds__")) for p in stored)
    manifests = sorted((tmp_path / "sweep").glob("*.json"))
    written = sorted(r for m in manifests for r in json.loads(m.read_text())["records"])
    assert written == sorted(map(str, stored))
    assert sweep.main(args) == 0
    out = capsys.readouterr().out
    assert out.count(" stored ") == 2 and " ran " not in out, out


def test_a_point_whose_record_was_lost_is_not_stored(tmp_path):
    record = tmp_path / "results" / "x.json"
    sw = sweep.Sweep("01_covariate_shift", "smoke", tmp_path, tmp_path / "results")
    sw.manifest({"seed": 3}).write_text(json.dumps({"records": [str(record)]}))
    assert not sw.stored({"seed": 3}) and not sw.stored({"seed": 4})
    from bn_utils.book import results
    from bn_utils.experiments.ch01_covariate_shift import ShiftConfig

    rec = results.save("01_covariate_shift", "x", ShiftConfig.for_profile("smoke"), {"a": 1})
    sw.manifest({"seed": 3}).write_text(json.dumps({"records": [str(rec.path)]}))
    assert sw.stored({"seed": 3})


def test_a_failed_job_is_reported_with_its_log_and_the_others_run(tmp_path, monkeypatch):
    pytest.importorskip("submitit", reason="submitit is not installed")
    # a chapter that fails at one grid point: a fake papermill run in the job's process
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), *sys.path]))
    (tmp_path / "sitecustomize.py").write_text(
        "import bn_utils.book.run as r\n"
        "def fake(chapter, profile, params, *, out, name, **kw):\n"
        "    if params['seed'] == 1: raise RuntimeError('the chapter failed: boom')\n"
        "    p = out / f'{name}.ipynb'; p.write_text('{}'); return p\n"
        "r.run_chapter = fake\n")
    rows = sweep.sweep("01", "smoke", {"seed": [1, 2]}, folder=tmp_path / "sweep",
                       results_dir=tmp_path / "results", parallel=2)
    assert [r["status"] for r in rows] == ["failed", "ran"]
    failed = rows[0]
    assert "boom" in failed["error"] and os.path.exists(failed["log"])
    assert "boom" in open(failed["log"]).read()
    assert "failed" in repr(sweep.summary(rows)) and failed["log"] in repr(sweep.summary(rows))
