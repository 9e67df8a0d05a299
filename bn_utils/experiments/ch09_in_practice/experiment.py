"""Chapter 09's records: the one module that reads and writes the store. ``run`` returns each
experiment's record (``batch_sweep``, ``placement``, ``dropout``, ``initialisation``,
``weight_decay``, ``ga_search``, ``cost``, ``finetune``: stored, or run now by its module and
stored); the extra records (more GA searches and timing runs, more seeds of the batch sweep, the
placement runs scored on all 10,000 test images: ``PracticeConfig.extra_records``) are each stored
as their own record under exactly its config; ``tools/train_runs.py`` trains them in the
background and :mod:`.headlines` decides the claims over those stored so far."""

from __future__ import annotations

from ...book import results
from ... import runtime
from . import cost, finetune, ga_search, mlp_choices, small_batches
from .config import CHAPTER, PracticeConfig


# every experiment's measurement, by its record's name
MEASUREMENTS = {"batch_sweep": small_batches.sweep, "placement": mlp_choices.placement,
                "dropout": mlp_choices.dropout, "initialisation": mlp_choices.initialisation,
                "weight_decay": mlp_choices.weight_decay, "ga_search": ga_search.search,
                "cost": cost.timing, "finetune": finetune.finetune}


def run(cfg: PracticeConfig, name: str) -> results.Record:
    """Return the record of experiment ``name`` of ``cfg`` (one of ``MEASUREMENTS``): the stored
    one, or run now and stored."""
    if name not in MEASUREMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose one of {', '.join(MEASUREMENTS)}")
    with runtime.cpu_threads(cfg.cpu_threads):
        return results.load_or_run(CHAPTER, name, cfg, MEASUREMENTS[name], prefer_stored=True)


def extra_runs(cfg: PracticeConfig) -> dict[str, PracticeConfig]:
    """Return ``{record name: config}`` of the extra records (``cfg.extra_records()``)."""
    return {name: c for name, (_, c) in cfg.extra_records().items()}


def load_extra(cfg: PracticeConfig) -> dict:
    """Return the extra records stored under exactly their configs, by name."""
    out = {}
    for name, c in extra_runs(cfg).items():
        record = results.load(CHAPTER, name, c)
        if record is not None:
            out[name] = record
    return out


def extra_words(cfg: PracticeConfig, names) -> str:
    """Return the extra records ``names`` of ``cfg`` in words, for prose ("2 more GA searches
    (seeds 1, 2), seeds 3, 4, 5 of the batch sweep, ..."; "none yet" when there are none)."""
    records, groups = cfg.extra_records(), {}
    for name in names:
        experiment, c = records[name]
        groups.setdefault(experiment, []).append(c)
    parts = []
    for experiment, configs in groups.items():
        n, seeds = len(configs), ", ".join(str(s) for c in configs for s in c.seeds)
        if experiment == "ga_search":
            parts.append(f"{n} more GA search{'es' * (n > 1)} (seed{'s' * (n > 1)} {seeds})")
        elif experiment == "batch_sweep":
            parts.append(f"seeds {seeds} of the batch sweep")
        elif experiment == "placement":
            parts.append(f"the placement runs scored on all {configs[0].n_test:,} test images")
        else:
            parts.append(f"{n} more timing run{'s' * (n > 1)}")
    return ", ".join(parts) or "none yet"


def run_extra(name: str, cfg: PracticeConfig) -> results.Record:
    """Return the extra record ``name`` of ``cfg`` (stored, or run now and stored)."""
    experiment, c = cfg.extra_records()[name]
    with runtime.cpu_threads(c.cpu_threads):
        return results.load_or_run(CHAPTER, name, c, MEASUREMENTS[experiment])
