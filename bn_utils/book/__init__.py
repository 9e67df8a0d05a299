"""The book's bookkeeping, above the concepts (``nn``) and their training (``training``):
``profiles`` (the configs and their profiles), ``results`` (records: store, load, the profile
ranking), ``claims`` (a paper's claim beside what the data decide), ``plotting``, ``page`` (what a
chapter's cells call: ``setup``, ``glue``, ``Table``, ``show_figure``), ``run`` (a chapter headless
through papermill) and ``sweep`` (chapters x parameters as jobs).

A chapter reads ``from bn_utils import book`` and calls the page helpers as ``book.setup(cfg)``,
``book.glue(...)``: they are re-exported here.
"""

from .page import (SOURCE_PREFIX, Table, glue, how_many, in_words, mean_std, provenance,
                   record_shown, seed_std, setup, sig, show_figure, show_source, stored_results_line)

__all__ = ["SOURCE_PREFIX", "Table", "glue", "how_many", "in_words", "mean_std", "provenance",
           "record_shown", "seed_std", "setup", "sig", "show_figure", "show_source", "stored_results_line"]
