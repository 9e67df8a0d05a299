"""The committed records stay valid: each one rebuilds its config through its chapter's config
class with the digest in its file name, loads through ``results.load`` with that config, and, made
at a named profile, is what that profile's current configuration looks up (so a code change that
moves a config field, a default or a profile is caught before it orphans a committed record)."""

import dataclasses
import json
import subprocess
from pathlib import Path

import pytest

from bn_utils.book import results, run
from bn_utils.experiments import ch06_ensemble as ensemble, ch05_cifar_inception as inception

REPO = Path(__file__).resolve().parents[1]


def committed_records() -> list[Path]:
    """Return the record files git tracks under results/ (local smoke/quick ones are not)."""
    out = subprocess.run(["git", "ls-files", "results/*/*.json"], cwd=REPO, capture_output=True,
                         text=True).stdout.split()
    return [REPO / name for name in out]


def config_classes(chapter: str) -> list[type]:
    """Return the config classes a chapter stores records of: its own, and chapter 05's single
    runs (``inception.RunConfig``), which chapters 05 and 06 store one per training run."""
    own = run.config_call(run.resolve_chapter(chapter))
    return [own[0]] + ([inception.RunConfig] if chapter in (inception.CHAPTER, ensemble.CHAPTER) else [])


def profile_digests(cls: type, chapter: str, profile: str) -> set[str]:
    """Return the digests that ``profile``'s current configuration looks records up by (with the
    configs of the records it adds as its own, ``extra_configs``: chapters 07-09's extra seeds)."""
    if cls is not inception.RunConfig:
        cfg = cls.for_profile(profile)
        return {cfg.digest()} | {c.digest() for c in getattr(cfg, "extra_configs", list)()}
    table = inception.AblationConfig.for_profile(profile)
    members = ensemble.EnsembleConfig.for_profile(profile)
    runs = table.runs() + [members.member(name)[0] for name in members.members]
    return {rc.digest() for rc in runs}


def check_record(path: Path) -> None:
    """Assert that the record at ``path`` rebuilds, loads and is its profile's (see the docstring)."""
    doc = json.loads(path.read_text())
    chapter, (name, profile, digest) = path.parent.name, path.name[: -len(".json")].split("__")
    classes = [c for c in config_classes(chapter)
               if set(doc["config"]) == {f.name for f in dataclasses.fields(c)}]
    assert len(classes) == 1, f"{path}: no config class of {chapter} has exactly its fields"
    cfg = classes[0](**doc["config"])
    assert (cfg.profile, cfg.digest()) == (profile, digest), f"{path}: its config has another digest"
    record = results.load(chapter, name, cfg)
    assert record is not None and record.path == path, f"{path}: does not load with its own config"
    if profile in ("smoke", "quick", "reference", "full"):
        assert digest in profile_digests(classes[0], chapter, profile), \
            f"{path}: the {profile} profile's current configuration no longer finds it"


def test_every_committed_record_loads_through_its_chapter_with_its_config_digest(monkeypatch):
    records = committed_records()
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    assert records, "a git checkout with no committed record: git ls-files found none"
    monkeypatch.setenv("BN_RESULTS_DIR", str(REPO / "results"))   # read only
    for path in records:
        check_record(path)
