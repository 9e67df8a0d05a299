"""Chapter 02's records: the one module that reads and writes the store. Each section's
measurement (in its own module) runs here once per configuration and is read back after; the
chapter shows the stored record (``prefer_stored``: a stored reference record wins over a fresh
run)."""

from __future__ import annotations

from ...book import results
from .batch_mates import measure_batch_dependence
from .config import CHAPTER, ForwardConfig
from .eval_branch_bug import eval_branch_training
from .momentum_bug import momentum_bug_runs
from .running_stats import running_estimates


def run_batch_dependence(cfg: ForwardConfig) -> results.Record:
    """Return the stored record of ``measure_batch_dependence`` for ``cfg`` (run if needed)."""
    return results.load_or_run(CHAPTER, "batch_dependence", cfg, measure_batch_dependence,
                               prefer_stored=True)


def run_running_estimates(cfg: ForwardConfig) -> results.Record:
    """Return the stored record of ``running_estimates`` for ``cfg``, computing it if needed."""
    return results.load_or_run(CHAPTER, "running_estimates", cfg, running_estimates,
                               prefer_stored=True)


def run_momentum_bugs(cfg: ForwardConfig) -> results.Record:
    """Return the stored record of ``momentum_bug_runs`` for ``cfg``, running it if needed."""
    return results.load_or_run(CHAPTER, "momentum_bugs", cfg, momentum_bug_runs, prefer_stored=True)


def run_eval_branch(cfg: ForwardConfig) -> results.Record:
    """Return the stored record of ``eval_branch_training`` for ``cfg``, running it if needed."""
    return results.load_or_run(CHAPTER, "eval_branch", cfg, eval_branch_training, prefer_stored=True)
