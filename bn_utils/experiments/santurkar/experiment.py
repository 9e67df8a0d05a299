"""Chapters 7 and 8's runs and their storage: each run is its own record (a killed sweep resumes
where it stopped, a killed long run from its checkpoint), merged into one record per chapter."""

from __future__ import annotations

from typing import Callable, Sequence

from ... import runtime
from ...book import results
from .analysis import unpack
from .config import Run, SanturkarConfig
from .training import HookMaker, train_run


def run_one(chapter: str, cfg: SanturkarConfig, run: Run, make_hooks: HookMaker) -> results.Record:
    """Return the stored record of one run under ``cfg`` (training it first if there is none)."""
    return results.load_or_run(chapter, run.name, cfg, lambda c: train_run(chapter, c, run, make_hooks),
                               lock=True)   # one trainer at a time


def sweep(chapter: str, cfg: SanturkarConfig, runs: Sequence[Run], make_hooks: HookMaker) -> dict:
    """Run (or load) every run as its own record; return them merged as ``{"<run>/<key>": value}``."""
    merged: dict = {}
    for run in runs:
        rec = run_one(chapter, cfg, run, make_hooks)
        for key, value in {**rec.metrics, **rec.arrays}.items():
            merged[f"{run.name}/{key}"] = value
    return merged


def run_chapter(chapter: str, name: str, cfg: SanturkarConfig, runs: Callable, make_hooks: HookMaker,
                extra_runs: Callable) -> results.Record:
    """Return chapter 07's or 08's record ``name`` (at the unmodified quick profile: the best stored
    one, full, else reference), training and storing every run of ``runs(cfg)`` that is missing,
    with the stored runs of its extra seeds (``extra_runs(cfg)``, trained by tools/train_runs.py)
    merged in (:func:`with_extra_seeds`)."""
    with runtime.cpu_threads(cfg.cpu_threads):
        record = results.load_or_run(chapter, name, cfg,
                                     lambda c: sweep(chapter, c, runs(c), make_hooks), prefer_stored=True)
    return with_extra_seeds(record, extra_runs(type(cfg).from_record(record)))


def with_extra_seeds(record: results.Record, extra: Sequence[tuple[SanturkarConfig, Run]]) -> results.Record:
    """Return ``record`` with the stored runs of ``extra`` (the extra seeds' configs and runs)
    merged in as ``"<run>/<key>"`` (meta ``extra_runs`` names them); runs it holds already and
    runs not stored are left out; ``record`` itself when none is added. Each extra run is the
    chapter's protocol with another seed, loaded only under exactly its config."""
    have, added = set(unpack(record)), []
    metrics, arrays = dict(record.metrics), dict(record.arrays)
    for cfg, run in extra:
        if run.name in have:
            continue
        rec = results.load(record.chapter, run.name, cfg)
        if rec is None:
            continue
        added.append(run.name)
        metrics.update({f"{run.name}/{k}": v for k, v in rec.metrics.items()})
        arrays.update({f"{run.name}/{k}": v for k, v in rec.arrays.items()})
    if not added:
        return record
    return results.Record(record.chapter, record.name, record.config, metrics, arrays,
                          {**record.meta, "extra_runs": added}, record.path)
