"""tools/train_runs.py: the background queue keeps chapters 05-06's runs first and adds chapters
07-09's extra records, each trained and stored under exactly the config its chapter
looks it up by."""

import importlib.util
import sys
from pathlib import Path

import pytest

from bn_utils.book import results
from bn_utils.experiments import (
    ch09_in_practice as in_practice, ch07_santurkar_noise as noise,
    ch08_santurkar_smoothness as smoothness)
from bn_utils.experiments.ch09_in_practice import experiment

TOOL = Path(__file__).resolve().parents[1] / "tools" / "train_runs.py"
spec = importlib.util.spec_from_file_location("train_runs", TOOL)
train_runs = sys.modules.setdefault("train_runs", importlib.util.module_from_spec(spec))
spec.loader.exec_module(train_runs)


def test_the_queue_keeps_chapters_05_06_first_then_chapters_07_09s_extra_records():
    jobs = train_runs.jobs("reference")
    first = [(j.chapter, j.name) for j in jobs[: len(train_runs.planned("reference"))]]
    assert first == [(c, rc.name) for c, rc in train_runs.planned("reference")]
    extra = jobs[len(first):]
    keys = [(j.chapter, j.name, j.cfg.digest()) for j in jobs]
    assert len(keys) == len(set(keys))
    cfg7, cfg8 = noise.NoiseConfig.for_profile("reference"), smoothness.SmoothnessConfig.for_profile("reference")
    expected = {(noise.CHAPTER, r.name, c.digest()) for c, r in noise.extra_runs(cfg7)}
    expected |= {(smoothness.CHAPTER, r.name, c.digest()) for c, r in smoothness.extra_runs(cfg8)}
    expected |= {(in_practice.CHAPTER, n, c.digest()) for n, c in experiment.extra_runs(in_practice.PracticeConfig.for_profile("reference")).items()}
    assert {(j.chapter, j.name, j.cfg.digest()) for j in extra} == expected
    assert [j.chapter for j in extra[:6]] == [in_practice.CHAPTER] * 6                   # minutes each: first
    seeds = [j.run.seed for j in extra if j.run is not None]
    assert seeds == sorted(seeds)                                              # all of seed 1 first


def test_a_queued_extra_run_is_stored_where_its_chapter_finds_it(monkeypatch, capsys):
    monkeypatch.setattr(noise.NoiseConfig, "EXTRA_SEEDS", {"smoke": (1,)})
    monkeypatch.setattr(in_practice.PracticeConfig, "EXTRA_RECORDS", {"smoke": {"cost_2": ("cost", {})}})
    jobs = [j for j in train_runs.planned_extra("smoke") if j.base is not None or j.name == "dln_none_lr1e-06_s1"]
    assert [j.name for j in jobs] == ["cost_2", "dln_none_lr1e-06_s1"]
    assert train_runs.main(["--profile", "smoke", "--list"]) == 0
    out = capsys.readouterr().out
    assert "07_santurkar_noise/dln_none_lr1e-06_s1: 20 steps" in out and "09_in_practice/cost_2: cost" in out
    for job in jobs:
        assert not train_runs.is_stored(job)
        train_runs.run_job(job)
        assert train_runs.is_stored(job)
    cfg = noise.NoiseConfig.for_profile("smoke")
    record = results.Record(noise.CHAPTER, "noise", cfg.to_dict(), {})
    assert noise.with_extra_seeds(record).meta["extra_runs"] == ["dln_none_lr1e-06_s1"]
    assert set(experiment.load_extra(in_practice.PracticeConfig.for_profile("smoke"))) == {"cost_2"}


def test_workers_must_be_at_least_one():
    with pytest.raises(SystemExit):
        train_runs.main(["--workers", "0", "--list"])
