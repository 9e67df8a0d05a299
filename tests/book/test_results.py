"""Stored results: round trips, provenance, which records are trusted, and atomic writes."""

import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from bn_utils import runtime
from bn_utils.book import results
from bn_utils.book.profiles import Config, param

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Exp(Config):
    steps: int = param(100, min=1)
    PROFILES: ClassVar[dict] = {"full": {}, "reference": {"steps": 50}, "quick": {"steps": 10},
                                "smoke": {"steps": 2}}


class Counter:
    """An experiment that counts its calls and returns metrics and an array."""

    def __init__(self):
        self.calls = 0

    def __call__(self, cfg):
        self.calls += 1
        return {"accuracy": 0.5 + cfg.steps / 1000, "curve": np.arange(cfg.steps, dtype=np.float32),
                "history": {"loss": [1.0, float("nan")]}}


def test_load_or_run_stores_then_loads_without_rerunning():
    fn, cfg = Counter(), Exp.for_profile("smoke")
    first = results.load_or_run("ch", "exp", cfg, fn)
    second = results.load_or_run("ch", "exp", cfg, fn)
    assert fn.calls == 1
    assert second["accuracy"] == first["accuracy"] == 0.502
    np.testing.assert_array_equal(second["curve"], np.arange(2, dtype=np.float32))
    assert second["history"]["loss"] == [1.0, None]  # NaN is stored as null, JSON stays valid
    assert second.meta["loaded"] and not first.meta.get("loaded")
    assert first.path.name == f"exp__smoke__{cfg.digest()}.json"


def test_record_carries_config_and_provenance():
    rec = results.load_or_run("ch", "exp", Exp.for_profile("smoke", steps=3), Counter())
    doc = json.loads(rec.path.read_text())
    assert doc["config"] == {"profile": "smoke", "steps": 3}
    for key in ("commit", "code_digest", "device", "torch", "python", "started", "finished", "seconds"):
        assert key in doc["meta"], key
    assert doc["meta"]["device"].startswith(("cpu", "cuda"))
    assert "smoke profile (this run: commit" in rec.caption()


def test_cheap_records_are_rerun_when_the_code_changed(monkeypatch):
    fn, cfg = Counter(), Exp.for_profile("quick")
    results.load_or_run("ch", "exp", cfg, fn)
    monkeypatch.setattr(results, "code_digest", lambda: "another-code")
    results.load_or_run("ch", "exp", cfg, fn)
    assert fn.calls == 2


def test_full_records_are_kept_across_code_changes(monkeypatch):
    fn, cfg = Counter(), Exp.for_profile("full")
    results.load_or_run("ch", "exp", cfg, fn)
    monkeypatch.setattr(results, "code_digest", lambda: "another-code")
    results.load_or_run("ch", "exp", cfg, fn)
    assert fn.calls == 1


def test_quick_profile_prefers_a_stored_full_record_and_says_so(monkeypatch):
    fn = Counter()
    results.load_or_run("ch", "exp", Exp.for_profile("full"), fn)
    rec = results.load_or_run("ch", "exp", Exp.for_profile("quick"), fn, prefer_stored=True)
    assert fn.calls == 1 and rec.profile == "full" and rec["accuracy"] == 0.6
    assert rec.caption().startswith("full profile (stored: commit")
    # an overridden quick config, the smoke profile, or BN_USE_STORED=0 run their own experiment
    results.load_or_run("ch", "exp", Exp.for_profile("quick", steps=11), fn, prefer_stored=True)
    results.load_or_run("ch", "exp", Exp.for_profile("smoke"), fn, prefer_stored=True)
    monkeypatch.setenv("BN_USE_STORED", "0")
    assert results.load_or_run("ch", "exp", Exp.for_profile("quick"), fn, prefer_stored=True).profile == "quick"
    assert fn.calls == 4


def test_quick_profile_shows_a_stored_reference_record_rather_than_running():
    fn = Counter()
    results.load_or_run("ch", "exp", Exp.for_profile("reference"), fn)
    rec = results.load_or_run("ch", "exp", Exp.for_profile("quick"), fn, prefer_stored=True)
    assert fn.calls == 1 and rec.profile == "reference" and rec["accuracy"] == 0.55
    assert rec.caption().startswith("reference profile (stored: commit")


def test_a_stored_full_record_is_preferred_to_a_stored_reference_record():
    fn = Counter()
    results.load_or_run("ch", "exp", Exp.for_profile("reference"), fn)
    results.load_or_run("ch", "exp", Exp.for_profile("full"), fn)
    rec = results.load_or_run("ch", "exp", Exp.for_profile("quick"), fn, prefer_stored=True)
    assert fn.calls == 2 and rec.profile == "full" and rec.config["steps"] == 100


def test_a_partial_record_stands_in_for_the_quick_profile_only_when_no_complete_one_is_stored(monkeypatch):
    fn, assembled = Counter(), results.Record("ch", "exp", Exp.for_profile("reference").to_dict(), {"accuracy": 0.7})
    partial = lambda: assembled  # noqa: E731
    assert results.load_or_run("ch", "exp", Exp.for_profile("quick"), fn, prefer_stored=True,
                               partial=partial) is assembled and fn.calls == 0
    results.load_or_run("ch", "exp", Exp.for_profile("smoke"), fn, prefer_stored=True, partial=partial)
    assert fn.calls == 1                                   # another profile never takes the partial one
    monkeypatch.setenv("BN_USE_STORED", "0")
    assert results.load_or_run("ch", "exp", Exp.for_profile("quick"), fn, prefer_stored=True,
                               partial=partial).profile == "quick" and fn.calls == 2
    monkeypatch.delenv("BN_USE_STORED")
    results.load_or_run("ch", "exp", Exp.for_profile("reference"), fn)
    rec = results.load_or_run("ch", "exp", Exp.for_profile("quick"), fn, prefer_stored=True, partial=partial)
    assert rec.profile == "reference" and rec is not assembled   # the complete record wins

def test_reference_records_are_kept_across_code_changes(monkeypatch):
    fn, cfg = Counter(), Exp.for_profile("reference")
    results.load_or_run("ch", "exp", cfg, fn)
    monkeypatch.setattr(results, "code_digest", lambda: "another-code")
    assert results.load_or_run("ch", "exp", cfg, fn).meta["loaded"] and fn.calls == 1


def test_a_stored_record_of_another_config_never_stands_in(monkeypatch):
    fn = Counter()
    results.load_or_run("ch", "exp", Exp.for_profile("reference"), fn)   # steps 50
    # the reference profile is redefined: the stored record no longer is its config
    monkeypatch.setitem(Exp.PROFILES, "reference", {"steps": 60})
    assert results.best_stored("ch", "exp", Exp.for_profile("quick")) is None
    rec = results.load_or_run("ch", "exp", Exp.for_profile("quick"), fn, prefer_stored=True)
    assert fn.calls == 2 and rec.profile == "quick" and rec.config["steps"] == 10
    # nor a file at the current reference config's name whose stored config is another one
    doc = json.loads(next(results.results_dir().glob("ch/exp__reference__*.json")).read_text())
    path = results._paths("ch", "exp", Exp.for_profile("reference"))[0]
    path.write_text(json.dumps(doc))   # doc's config says steps 50, the profile now 60
    assert results.best_stored("ch", "exp", Exp.for_profile("quick")) is None


def test_a_record_whose_arrays_do_not_match_is_treated_as_missing():
    cfg = Exp.for_profile("smoke")
    rec = results.load_or_run("ch", "exp", cfg, Counter())
    np.savez(rec.path.with_suffix(".npz"), curve=np.zeros(2))
    with pytest.warns(UserWarning, match=r"exp__smoke__\w+\.npz: does not match"):
        assert results.load("ch", "exp", cfg) is None


def test_a_record_of_another_config_is_not_loaded():
    cfg = Exp.for_profile("smoke")
    rec = results.load_or_run("ch", "exp", cfg, Counter())
    doc = json.loads(rec.path.read_text())
    doc["config"]["steps"] = 99
    rec.path.write_text(json.dumps(doc))
    assert results.load("ch", "exp", cfg) is None


WRITER = """
import os, sys, time, numpy as np
from bn_utils.book import results
sys.path.insert(0, {tests!r})
from test_results import Exp
cfg = Exp.for_profile("smoke")
results.save("ch", "exp", cfg, {{"version": 1, "curve": np.ones(3)}})
print("saved", flush=True)
real_fsync = os.fsync
os.fsync = lambda fd: (print("writing", flush=True), time.sleep(60))
results.save("ch", "exp", cfg, {{"version": 2, "curve": np.full(10**6, 2.0)}})
"""


def test_a_killed_writer_leaves_the_previous_record_intact(tmp_path):
    env = {**os.environ, "BN_RESULTS_DIR": str(tmp_path / "results")}
    code = WRITER.format(tests=str(Path(__file__).resolve().parent))
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "saved"
    assert proc.stdout.readline().strip() == "writing"  # the new npz is half-way to disk
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    os.environ["BN_RESULTS_DIR"] = env["BN_RESULTS_DIR"]
    rec = results.load("ch", "exp", Exp.for_profile("smoke"))
    assert rec is not None and rec["version"] == 1
    np.testing.assert_array_equal(rec["curve"], np.ones(3))


def test_atomic_write_cleans_up_when_interrupted(tmp_path, monkeypatch):
    target = tmp_path / "f.json"
    target.write_text("old")

    def boom(*_):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        runtime.atomic_write_bytes(target, b"new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_results_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("BN_RESULTS_DIR", str(tmp_path))
    assert results.results_dir() == tmp_path
    monkeypatch.delenv("BN_RESULTS_DIR")
    assert results.results_dir() == REPO / "results"
    cp = results.checkpoint_path("ch", "exp", Exp.for_profile("smoke"))
    assert cp.parent.name == "checkpoints" and cp.suffix == ".pt"


def test_non_finite_metrics_are_stored_as_null():
    out = {"loss": [1.0, float("inf"), float("nan"), -float("inf"), np.float32("inf")],
           "ok": np.float64(2.5)}
    record = results.save("00_test", "run", Exp(profile="smoke"), out)
    doc = json.loads(record.path.read_text())
    assert doc["metrics"]["loss"] == [1.0, None, None, None, None]
    assert doc["metrics"]["ok"] == 2.5


def test_names_with_dots_keep_their_profile_and_digest_in_the_file_name():
    a, b = Exp(profile="smoke", steps=1), Exp(profile="smoke", steps=2)
    ra = results.save("00_test", "dropout-0.05", a, {"x": 1})
    rb = results.save("00_test", "dropout-0.05", b, {"x": 2})
    assert ra.path != rb.path and ra.path.name == f"dropout-0.05__smoke__{a.digest()}.json"
    assert results.load("00_test", "dropout-0.05", a).metrics == {"x": 1}
    assert results.checkpoint_path("00_test", "dropout-0.05", a).name == \
        f"dropout-0.05__smoke__{a.digest()}.pt"


def test_written_files_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        results.atomic_write_bytes(tmp_path / "r.json", b"{}")
    finally:
        os.umask(old)
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == 0o644


def test_a_record_whose_metrics_were_edited_is_refused_with_a_warning_naming_it():
    fn, cfg = Counter(), Exp.for_profile("smoke")
    rec = results.load_or_run("ch", "exp", cfg, fn)
    doc = json.loads(rec.path.read_text())
    doc["metrics"]["accuracy"] = 0.99   # e.g. a chosen learning rate 0.3 -> 3.0
    rec.path.write_text(json.dumps(doc))
    with pytest.warns(UserWarning, match=f"{rec.path}: does not match its digest"):
        again = results.load_or_run("ch", "exp", cfg, fn)
    assert fn.calls == 2 and again["accuracy"] == 0.502


def test_is_trusted_checks_a_records_identity_and_digest_as_read_does():
    cfg = Exp.for_profile("smoke")
    rec = results.load_or_run("ch", "exp", cfg, Counter())
    other = results.load_or_run("ch", "other", cfg, Counter())
    assert results.is_trusted(rec.path) and results.is_trusted(other.path)
    rec.path.write_bytes(other.path.read_bytes())   # another run's record, its digest intact
    rec.path.with_suffix(".npz").write_bytes(other.path.with_suffix(".npz").read_bytes())
    with pytest.warns(UserWarning, match=f"{rec.path}: is the record of ch/other"):
        assert not results.is_trusted(rec.path)
    doc = json.loads(other.path.read_text())
    doc["metrics"]["accuracy"] = 0.99                # edited: the digest no longer matches
    other.path.write_text(json.dumps(doc))
    with pytest.warns(UserWarning, match=f"{other.path}: does not match its digest"):
        assert not results.is_trusted(other.path)
    assert not results.is_trusted(rec.path.with_name("missing__smoke__0123456789.json"))


def test_provenance_may_be_annotated_without_breaking_the_digest():
    cfg = Exp.for_profile("smoke")
    rec = results.load_or_run("ch", "exp", cfg, Counter())
    doc = json.loads(rec.path.read_text())
    doc["meta"]["note"] = "rerun on the lab GPU"
    rec.path.write_text(json.dumps(doc))
    assert results.load("ch", "exp", cfg)["accuracy"] == 0.502


@pytest.mark.parametrize("text", ["[1, 2]", "null", "3", '"a"', "{not json", '{"meta": 1}'])
def test_a_record_that_is_not_a_json_object_is_missing_with_a_warning(text):
    cfg = Exp.for_profile("smoke")
    rec = results.load_or_run("ch", "exp", cfg, Counter())
    rec.path.write_text(text)
    with pytest.warns(UserWarning, match=f"{rec.path}: not "):
        assert results.load("ch", "exp", cfg) is None


def _committed_records() -> list[Path]:
    """The committed records' JSON files (local smoke/quick records are not committed)."""
    tracked = subprocess.run(["git", "ls-files", "results/*/*.json"], cwd=REPO, capture_output=True,
                             text=True).stdout.split()
    return [REPO / name for name in tracked]


def test_every_committed_record_has_a_matching_digest():
    records = _committed_records()
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    assert records, "a git checkout with no committed record: git ls-files found none"
    for path in records:
        doc = json.loads(path.read_text())
        assert doc.get("digest") == results.record_digest(doc), path


def test_device_names_count_threads_in_good_english(monkeypatch):
    import torch

    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert results.device_description("cpu").endswith("(1 thread)")
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert results.device_description("cpu").endswith("(2 threads)")


def test_committed_records_name_their_device_in_good_english():
    """Captions print a record's device as stored, so none may say "1 threads"."""
    records = _committed_records()
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    assert records, "a git checkout with no committed record: git ls-files found none"
    for path in records:
        device = (json.loads(path.read_text()).get("meta") or {}).get("device", "")
        assert not re.search(r"\b1 threads\b", device), f"{path}: {device}"


def test_an_assembled_record_names_the_commit_of_its_last_run_and_counts_the_others():
    metas = [{"commit": "aaa", "finished": "2026-12-01", "device": "cpu"},
             {"commit": "bbb", "finished": "2026-12-03", "device": "cpu"},
             {"commit": "aaa", "finished": "2026-12-02", "device": "cpu"}]
    meta = results.assembled_meta(metas, "3 of 4")
    assert meta["commit"] == "bbb (and 1 earlier)" and meta["finished"] == "2026-12-03"
    assert results.assembled_meta(metas[:1], "1 of 4")["commit"] == "aaa"
    record = results.Record("ch", "exp", Exp.for_profile("reference").to_dict(), {}, meta=meta)
    assert "commit bbb (and 1 earlier)" in record.caption() and "3 of 4" in record.caption()


HOLDER = """
import fcntl, sys, time
f = open(sys.argv[1], "a+")
fcntl.flock(f, fcntl.LOCK_EX)
f.write("4242\\n"); f.flush()
print("locked", flush=True)
time.sleep(60)
"""


@pytest.mark.skipif(results.fcntl is None, reason="no file locks on this system")
def test_a_run_another_process_is_training_fails_at_once_and_trains_once_it_is_free(tmp_path):
    fn, cfg = Counter(), Exp.for_profile("smoke")
    lock = results.checkpoint_path("ch", "exp", cfg).with_suffix(".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RuntimeError, match=r"exp__smoke__\w+\.json: another process \(pid 4242\) is training"):
            results.load_or_run("ch", "exp", cfg, fn, lock=True)
        assert fn.calls == 0
    finally:
        holder.kill()
        holder.wait(timeout=10)
    first = results.load_or_run("ch", "exp", cfg, fn, lock=True)     # the lock died with its process
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert results.load_or_run("ch", "exp", cfg, fn, lock=True).path == first.path   # stored: no lock needed
    finally:
        holder.kill()
        holder.wait(timeout=10)
    assert fn.calls == 1
