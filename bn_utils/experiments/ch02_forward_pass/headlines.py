"""Chapter 02's claims in ``claims.row``'s shape: the paper's population statistics (Alg. 2)
checked on known data, and the book's own test of the eval-branch bug."""

from __future__ import annotations

from ...book import claims, results

TOLERANCE = 0.05   # the population estimates' relative error a check on known data allows


def population_claim(record: results.Record | None) -> dict:
    """Alg. 2's population statistics recover the data's mean and variance: a check of the
    estimator on known data (its error is the measurement), decided by ``TOLERANCE``."""
    text, source, theirs = ("population statistics (mean of batch means, unbiased batch variance) "
                            "recover the data's mean and variance", "Ioffe & Szegedy 2015", "Alg. 2")
    if record is None:
        return claims.missing(text, source, theirs)
    m, v = record["paper_mean"], record["paper_var"]
    err = max(abs(m - record["true_mean"]) / record["true_var"] ** 0.5,
              abs(v - record["true_var"]) / record["true_var"])
    return claims.row(text, source, theirs,
                      f"mean {m:.2f} (true {record['true_mean']:g}), variance {v:.2f} (true {record['true_var']:g})",
                      claims.decide(TOLERANCE - err, 0.0, 1, min_seeds=1),
                      f"error {err:.3f} (the mean's in standard deviations, the variance's relative; "
                      f"tolerance {TOLERANCE}; a check on known data)")


def eval_branch_claim(record: results.Record | None) -> dict:
    """The book's test: normalising with the running statistics during training (the eval-branch
    bug) loses BN's benefit, at the learning rate where BN trains."""
    text, source, theirs = ("normalising with running statistics during training loses BN's benefit",
                            "book (a common bug)", "—")
    if record is None:
        return claims.missing(text, source, theirs, kind="book")
    acc = {k: record[k]["evals"]["test_accuracy"][-1] for k in record.metrics}
    bug, ok = acc.get("eval-branch BN (buggy) @ lr 2"), acc.get("torch BN @ lr 2")
    d = claims.greater([ok], [bug])
    return claims.row(text, source, theirs, f"test accuracy at LR 2: {bug:.3f} with the bug, {ok:.3f} with BN",
                      d, d.spread("points", 100), kind="book")
