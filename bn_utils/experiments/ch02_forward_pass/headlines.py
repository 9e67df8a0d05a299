"""Chapter 02's claims in ``claims.row``'s shape: the paper's population statistics (Alg. 2)
checked on known data, and the book's own test of the eval-branch bug."""

from __future__ import annotations

from ...book import claims, results

TOLERANCE = 0.05   # the population estimates' relative error a check on known data allows


def population_check(record: results.Record) -> dict:
    """Return the paper's population statistics on the record's stream (``mean``, ``var``), the
    true ones, their ``error`` (the larger of the mean's error in standard deviations and the
    variance's relative error), the ``tolerance`` and the decision: an exact check of this one
    run against ``TOLERANCE`` (no seeds: the error is the measurement), yes when it is below."""
    m, v = record["paper_mean"], record["paper_var"]
    true_mean, true_var = record["true_mean"], record["true_var"]
    err = max(abs(m - true_mean) / true_var ** 0.5, abs(v - true_var) / true_var)
    return {"mean": m, "var": v, "true_mean": true_mean, "true_var": true_var, "error": err,
            "tolerance": TOLERANCE, "decision": claims.decide(TOLERANCE - err, 0.0, 1, min_seeds=1)}


def population_claim(record: results.Record | None) -> dict:
    """Alg. 2's population statistics recover the data's mean and variance: an exact check of the
    estimator on known data in one run (its error is the measurement, no seeds to compare),
    decided by ``TOLERANCE`` (:func:`population_check`)."""
    text, source, theirs = ("population statistics (mean of batch means, unbiased batch variance) "
                            "recover the data's mean and variance (one run checked against a "
                            "tolerance)", "Ioffe & Szegedy 2015", "Alg. 2")
    if record is None:
        return claims.missing(text, source, theirs)
    c = population_check(record)
    return claims.row(text, source, theirs,
                      f"mean {c['mean']:.2f} (true {c['true_mean']:g}), variance {c['var']:.2f} "
                      f"(true {c['true_var']:g})",
                      c["decision"],
                      f"exact check of one run, not a comparison over seeds: error {c['error']:.3f} "
                      f"against a tolerance of {c['tolerance']:g} (the mean's error in standard "
                      "deviations, the variance's relative)")


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
