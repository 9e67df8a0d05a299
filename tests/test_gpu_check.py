"""benchmarks/gpu/check.sh, the prepared device check, run on the CPU (so that it cannot rot unseen
between the sessions that have a GPU): one chapter at smoke and one chapter's slice, its report's
fields and the packed notebooks; and benchmarks/gpu/slice.py's timer and step counts."""

import datetime
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch

from bn_utils.experiments import (
    ch06_ensemble as ensemble, ch05_cifar_inception as inc, ch07_santurkar_noise as noise)

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu" / "check.sh"
sys.path.insert(0, str(REPO / "benchmarks"))
from gpu import slice as gpu_slice  # noqa: E402


def _check(*args, env=None, timeout=300):
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHON": sys.executable, **(env or {})})


def test_on_cpu_it_runs_the_chapters_and_the_slices_and_writes_the_report(tmp_path):
    out = tmp_path / "out"
    done = _check("--device", "cpu", "--chapters", "01", "--slice-chapters", "06",
                  "--slice-profile", "smoke", "--out", str(out), "--pack")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((out / "gpu_check.json").read_text())
    assert datetime.datetime.fromisoformat(report["date"]).tzinfo is not None
    assert report["device"] == "cpu" and report["torch"] == torch.__version__
    assert report["device_name"] and report["cuda"] is None and report["budget_seconds"] == 480
    smoke = report["smoke"]["01_covariate_shift"]
    assert smoke["ok"] and smoke["exit_status"] == 0 and smoke["seconds"] > 0 and not smoke["error"]
    assert (report["smoke_passed"], report["smoke_failed"]) == (1, 0)
    assert report["full_04"] == {"ok": None, "note": "not run: cpu"}     # a GPU's job
    nets = report["slices"]["06"]["networks"]
    assert list(nets) == ["BN-x30-dropout-5pct"] and report["slices_exit_status"] == 0
    rates = nets["BN-x30-dropout-5pct"]
    assert rates["images_per_second"] > 0 and rates["peak_memory_gib"] is None
    assert rates["profile_steps"] == ensemble.EnsembleConfig.for_profile("smoke").member(
        "dropout-5pct")[0].steps
    assert report["extrapolated_hours"]["06"] == pytest.approx(rates["extrapolated_hours"])
    # packed as the device machine's $OUT needs (it returns 8 files at most)
    assert sorted(p.name for p in out.iterdir()) == ["gpu_check.json", "gpu_check.log",
                                                     "notebooks.tar.gz", "results.tar.gz"]
    with tarfile.open(out / "notebooks.tar.gz") as tar:
        assert tar.getnames() == ["notebooks", "notebooks/01_covariate_shift__smoke.ipynb"]
    assert "01_covariate_shift smoke: exit 0" in (out / "gpu_check.log").read_text()


@pytest.mark.parametrize("args, expected", [
    (["--device", "mps"], "error: --device mps: cuda, cuda:N or cpu"),
    (["--budget", "0"], "error: --budget 0: a positive number of seconds"),
    (["--frobnicate"], "error: unknown option --frobnicate"),
    (["--device", "cpu", "--chapters", "99"], "error: --chapters: unknown chapter 99"),
])
def test_a_bad_option_fails_with_one_line_and_exit_status_2(args, expected, tmp_path):
    done = _check(*args, "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and expected in done.stderr, done.stderr
    assert not (tmp_path / "out" / "gpu_check.json").exists()


def test_the_slice_timer_times_the_steps_after_the_warmup_on_cpu():
    net = gpu_slice.networks("05", "smoke")[0]
    rates = gpu_slice.time_network(net, "cpu", steps=2, warmup=1)
    assert (rates["timed_steps"], rates["warmup_steps"], rates["batch_size"]) == (2, 1, 32)
    assert rates["seconds_per_step"] > 0 and not rates["diverged"]
    assert rates["images_per_second"] == pytest.approx(32 / rates["seconds_per_step"])
    assert rates["peak_memory_gib"] is None                                  # CUDA only
    with pytest.raises(ValueError, match="steps=0 must be >= 1"):
        gpu_slice.time_network(net, "cpu", steps=0, warmup=1)


def test_a_chapters_extrapolated_hours_are_its_steps_at_the_measured_rates():
    res = gpu_slice.slice_chapter("07", "cpu", steps=1, warmup=0, profile="smoke")
    nets = res["networks"]
    assert {"vgg_bn", "vgg_noisy_bn", "dln_bn"} <= set(nets)
    assert res["profile_steps"] == sum(n["profile_steps"] for n in nets.values())
    assert res["extrapolated_hours"] == pytest.approx(
        sum(n["profile_steps"] * n["seconds_per_step"] for n in nets.values()) / 3600)
    cfg = noise.NoiseConfig.for_profile("smoke")
    assert nets["dln_bn"]["profile_steps"] == cfg.dln_steps * nets["dln_bn"]["runs"]


def test_the_slices_count_every_full_run_once():
    full = inc.AblationConfig.for_profile("full")
    nets = gpu_slice.networks("05", "full")
    assert [n.name for n in nets] == list(full.rows)
    assert sum(n.steps for n in nets) == inc.planned_steps(full) == sum(
        rc.steps for row in full.rows for rc in (full.run_config(row, s) for s in full.seeds))
    assert sum(n.runs for n in nets) == len(full.rows) * len(full.seeds)
    # chapter 06: only the members chapter 05 does not train (its BN-x30 seeds are reused)
    members = [n.name for n in gpu_slice.networks("06", "full")]
    assert members == ["BN-x30-dropout-5pct", "BN-x30-dropout-10pct", "BN-x30-init-x2-final-bn"]
    with pytest.raises(ValueError, match="the slices cover 05, 06, 07, 08"):
        gpu_slice.networks("04")
