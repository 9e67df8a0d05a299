"""What the book found: every chapter's headline claims beside the stored records (chapter 10).

Each claim names its source (a paper, a student reproduction, practitioners; or the book itself
for its own tests) and the number behind it there; ``ours`` is computed from the best record
stored under ``results/`` (``results.best_record``: full > reference > quick > smoke), with its
profile and seeds, and decided by the book's one rule (:mod:`bn_utils.book.claims`: yes / no beyond two standard errors,
inside the noise, not decided on one seed). A chapter without records says "not run at this
scale". Nothing here trains: it only reads records.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from ..book import claims, results
from ..book.page import Table, how_many
from . import ch01_covariate_shift as covariate_shift
from . import ch02_forward_pass as forward_pass
from . import ch04_mnist as mnist
from . import ch05_cifar_inception as inception
from . import ch06_ensemble as ensemble
from . import ch07_santurkar_noise as noise
from . import ch08_santurkar_smoothness as smoothness
from . import ch09_in_practice as in_practice
from . import santurkar
from .ch04_mnist import analysis as mnist_analysis
from .ch09_in_practice import headlines as practice_headlines

NOT_RUN = "not run at this scale"
SMOKE = "not tested at this scale (smoke record only)"


def _scale(record: results.Record) -> str:
    """Return the record as text: profile and seeds (an ensemble: its members stored so far)."""
    if "members" in record.config:       # an ensemble: its members (each one seed's run)
        n = record.meta.get("runs", len(record.config["members"]))
        return f"{record.profile}, {n} members"
    if record.meta.get("extra_runs"):      # chapters 07-08: seed 0's record + the extra seeds
        return f"{record.profile}, {santurkar.seeds_text(record)}"
    seeds = record.config.get("seeds")
    n = len(seeds) if isinstance(seeds, list) else 1
    return f"{record.profile}, {n} seed{'s' if n != 1 else ''}"


def _rows(chapter: str, record, heads: list[dict], scale: str | None = None) -> list[dict]:
    """Return the closing page's rows of one chapter's claims: each with its chapter and the
    record it was measured on; a smoke record (a few steps on a few images, made to test the
    code) decides nothing."""
    out = []
    for h in heads:
        verdict = SMOKE if record is not None and record.profile == "smoke" else h["verdict"]
        out.append({"chapter": chapter, **{k: h[k] for k in ("claim", "source", "their number", "ours",
                                                            "spread")},
                    "record": scale or (_scale(record) if record is not None else NOT_RUN),
                    "verdict": verdict, "kind": h["kind"]})
    return out


def _one(chapter: str, text: str, source: str, theirs: str, record, measure: Callable,
         kind: str = "paper", scale: str | None = None) -> dict:
    """Return one row measured here from ``record``: ``measure(record) -> (ours, Decision or
    verdict[, spread])``; ``scale`` replaces the record's "profile, seeds" where it misleads."""
    if record is None:
        return _rows(chapter, None, [claims.missing(text, source, theirs, kind=kind)])[0]
    ours, decision, *spread = measure(record)
    return _rows(chapter, record, [claims.row(text, source, theirs, ours, decision, *spread, kind=kind)],
                 scale)[0]


def _ch01(folder) -> list[dict]:
    rec = results.best_record(covariate_shift.CHAPTER, "shift", folder)

    def stable(r):
        s = covariate_shift.summary(r)
        bn, plain = s["bn"]["mean_range"], s["no_bn"]["mean_range"]
        d = claims.greater([plain], [bn])       # one run per network: not decided
        return f"range of the watched layer's mean: {bn:.2f} with BN, {plain:.2f} without", d, d.spread(digits=2)
    return [_one("01", "BN keeps a layer's input distribution stable while the layers below learn",
                 "Ioffe & Szegedy 2015", "Fig. 1(b, c), qualitative", rec, stable)]


def _ch02(folder) -> list[dict]:
    est = results.best_record(forward_pass.CHAPTER, "running_estimates", folder)
    branch = results.best_record(forward_pass.CHAPTER, "eval_branch", folder)
    tolerance = 0.05

    def population(r):
        # a check of the estimator on known data, not a comparison of trained networks: decided
        # by its tolerance on the one sample (its error is the measurement)
        m, v = r["paper_mean"], r["paper_var"]
        err = max(abs(m - r["true_mean"]) / r["true_var"] ** 0.5, abs(v - r["true_var"]) / r["true_var"])
        return (f"mean {m:.2f} (true {r['true_mean']:g}), variance {v:.2f} (true {r['true_var']:g})",
                claims.decide(tolerance - err, 0.0, 1, min_seeds=1),
                f"relative error {err:.3f} (tolerance {tolerance}; a check on known data)")

    def eval_branch(r):
        acc = {k: r[k]["evals"]["test_accuracy"][-1] for k in r.metrics}
        bug, ok = acc.get("eval-branch BN (buggy) @ lr 2"), acc.get("torch BN @ lr 2")
        d = claims.greater([ok], [bug])
        return f"test accuracy at LR 2: {bug:.3f} with the bug, {ok:.3f} with BN", d, d.spread("points", 100)
    return [_one("02", "population statistics (mean of batch means, unbiased batch variance) "
                       "recover the data's mean and variance", "Ioffe & Szegedy 2015", "Alg. 2", est,
                 population),
            _one("02", "normalising with running statistics during training loses BN's benefit",
                 "book (a common bug)", "—", branch, eval_branch, kind="book")]


def _ch04(folder) -> list[dict]:
    runs = results.best_record(mnist.CHAPTER, "runs", folder)
    bs1 = results.best_record(mnist.CHAPTER, "batch_size_one", folder)

    def per_seed(r, bn: bool, values) -> list[float]:
        return [float(v) for v in np.asarray(values)[mnist_analysis.select(r, "sigmoid", bn)]]

    def accuracy(r):
        s = mnist.summary(r)
        bn, plain = s["sigmoid", True], s["sigmoid", False]
        d = claims.greater(bn["final"], plain["final"])
        return (f"{bn['final_mean']:.4f} with BN, {plain['final_mean']:.4f} without", d,
                d.spread("points", 100, digits=2))

    def faster(r):
        at = mnist_analysis.accuracy_at(r, 2500)
        bn, plain = per_seed(r, True, at), per_seed(r, False, at)
        d = claims.greater(bn, plain)
        return (f"accuracy at step 2,500: {np.mean(bn):.4f} with BN, {np.mean(plain):.4f} without", d,
                d.spread("points", 100))

    def drift(r):
        d = mnist.distribution_drift(r)
        seeds = {bn: d[bn]["median_range"].reshape(len(mnist_analysis.select(r, "sigmoid", bn)), -1).mean(1)
                 for bn in (True, False)}
        d = claims.greater(seeds[False], seeds[True])
        return (f"median of a sigmoid input moves {seeds[True].mean():.2f} with BN, "
                f"{seeds[False].mean():.2f} without", d, d.spread(digits=2))

    def batch_one(r):
        acc = r["evals"]["test_accuracy"][-1]     # one network trains at batch 1
        d = claims.greater([0.2], [acc])
        return f"test accuracy {acc:.3f} at batch 1 (the line: 0.2)", d, d.spread("points", 100)
    return [_one("04", "BN network reaches a higher test accuracy (MNIST, 3×100 sigmoid)",
                 "Ioffe & Szegedy 2015", "Fig. 1(a)", runs, accuracy),
            _one("04", "BN network trains faster", "student reproduction", "high accuracy by ~2,500 steps",
                 runs, faster),
            _one("04", "sigmoid inputs stay stable with BN and drift without", "Ioffe & Szegedy 2015",
                 "Fig. 1(b, c)", runs, drift),
            _one("04", "at batch size 1 BN's hidden layers cannot learn", "student reproduction",
                 "trained at batch 1 by mistake", bs1, batch_one,
                 scale=None if bs1 is None else f"{bs1.profile}, 1 network")]


def _chapter(chapter: str, record, heads: Callable, claim: str, source: str, theirs: str,
             scale: str | None = None) -> list[dict]:
    """Rows of a chapter whose module lists its headline claims (``heads(record)``)."""
    if record is None:
        return _rows(chapter, None, [claims.missing(claim, source, theirs)])
    return _rows(chapter, record, heads(record), scale)


def _ch05_to_08(folder) -> list[dict]:
    table = _stored_or_partial(results.best_record(inception.CHAPTER, "ablation", folder),
                               lambda: inception.stored_table(inception.AblationConfig.for_profile("reference")))
    ens = _stored_or_partial(results.best_record(ensemble.CHAPTER, "ensemble", folder),
                             lambda: ensemble.stored_ensemble(ensemble.EnsembleConfig.for_profile("reference")))
    return (_chapter("05", table, lambda rec: inception.headlines(inception.summary(rec)),
                     "BN lets Inception reach its accuracy in fewer steps", "Ioffe & Szegedy 2015", "Fig. 3",
                     None if table is None else _table_scale(table))
            + _chapter("06", ens, ensemble.headlines, "an ensemble of BN networks is more accurate than its best member",
                       "Ioffe & Szegedy 2015", "Table 3")
            + _chapter("07", _merged(results.best_record(noise.CHAPTER, "noise", folder),
                                     noise.with_extra_seeds), noise.headlines,
                       "BN's benefit does not come from stable layer inputs", "Santurkar et al. 2018",
                       "Figs. 2, 3")
            + _chapter("08", _merged(results.best_record(smoothness.CHAPTER, "smoothness", folder),
                                     smoothness.with_extra_seeds),
                       smoothness.headlines, "BN makes the loss landscape smoother",
                       "Santurkar et al. 2018", "Fig. 4"))


def _merged(record: results.Record | None, with_extra_seeds: Callable) -> results.Record | None:
    """Return chapter 07's or 08's record with its extra seeds merged in (None stays None)."""
    return None if record is None else with_extra_seeds(record)


def _stored_or_partial(record: results.Record | None,
                       partial: Callable[[], results.Record | None]) -> results.Record | None:
    """Return ``record`` if it is a full or reference one; else what ``partial()`` assembles from
    the reference runs stored so far (while a table lands run by run they beat a quick or smoke
    record), else ``record``."""
    if record is not None and record.profile in results.STORED_PROFILES:
        return record
    return partial() or record


def _table_scale(record: results.Record) -> str:
    """Return chapter 05's record as text: profile, and seeds per row (they differ while runs land)."""
    n = sorted({len(row["seeds"]) for row in record.metrics.values()})
    seeds = f"{n[0]}" if len(n) == 1 else f"{n[0]}–{n[-1]}"
    runs = f", {record.meta['runs']} runs" if "runs" in record.meta else ""
    return f"{record.profile}, {seeds} seed{'s' if n[-1] != 1 else ''} per row{runs}"


def _ch09(folder) -> list[dict]:
    names = ("batch_sweep", "placement", "dropout", "initialisation", "ga_search", "cost",
             "weight_decay", "finetune")
    recs = {n: results.best_record(in_practice.CHAPTER, n, folder) for n in names}
    if any(r is None for r in recs.values()):
        return _rows("09", None, [claims.missing("the practitioners' claims about BN (chapter 9)",
                                                 "practitioners' advice", "—")])
    cfg = in_practice.PracticeConfig.from_record(recs["batch_sweep"])
    return _rows("09", recs["batch_sweep"], practice_headlines.claims(recs, cfg))


def verdicts(folder: Path | None = None) -> list[dict]:
    """Return the book's verdict rows, chapter by chapter, from the stored records."""
    return [*_ch01(folder), *_ch02(folder), *_ch04(folder), *_ch05_to_08(folder), *_ch09(folder)]


def tally(rows: list[dict], kind: str = "paper") -> dict:
    """Return how many claims of ``kind`` ("paper": the papers' and reproductions' claims; "book":
    the book's own tests) hold (yes), fail (no), sit inside the seeds' noise, or are undecided
    (``claims.counts``)."""
    return claims.counts([r["verdict"] for r in rows if r["kind"] == kind])


def _counts(rows: list[dict], total: bool = True) -> str:
    """Return a group's verdicts as prose: "of 9 claims, 3 hold, 1 does not, ..." (without the
    "of 9 claims, " when not ``total``)."""
    if not rows:
        return "no claim in the records"
    listed = claims.counts_text([r["verdict"] for r in rows])
    return f"of {how_many(len(rows), 'claim')}, {listed}" if total else listed


def _find(rows: list[dict], chapter: str, words: str) -> dict | None:
    return next((r for r in rows if r["chapter"] == chapter and words in r["claim"]), None)


def _verdict(row: dict | None) -> str:
    return row["verdict"] if row else claims.NOT_RUN


def _reads(row: dict | None) -> str:
    """A claim's verdict as a predicate: "holds", "sits inside the noise", "is not run"."""
    v = _verdict(row)
    return {claims.YES: "holds", claims.NO: "does not hold",
            claims.NOISE: "sits inside the seeds' noise"}.get(v, f"is {v}")


def answer(rows: list[dict]) -> dict:
    """Return the closing page's opening paragraphs as glue texts, from the verdict rows alone:
    the tally per source (``ans_*``) and the answer to the book's question (``q_shift``: does BN's
    benefit survive layer inputs made to move? ``q_ics``: does BN reduce gradient ICS?
    ``q_smooth``: do the landscape measurements show smoothing?), each sentence saying only
    what its verdicts allow."""
    papers = [r for r in rows if r["kind"] == "paper"]
    group = lambda chs: [r for r in papers if r["chapter"] in chs]  # noqa: E731
    out = {"ans_ioffe": _counts(group(("01", "02", "03", "04", "05", "06"))),
           "ans_santurkar": _counts(group(("07", "08"))), "ans_practice": _counts(group(("09",)))}
    moves, better = _find(papers, "07", "inputs move more"), _find(papers, "07", "better than the standard")
    nearly, ics = _find(papers, "07", "nearly as well"), _find(papers, "07", "ICS")
    if _verdict(moves) == claims.YES and _verdict(better) == claims.YES:
        shift = ("In chapter 07, BN with injected noise has layer inputs that move more than the "
                 "standard network's, and it still trains better than the standard network (both "
                 "yes): at our scale BN's benefit does not need steady layer inputs, as Santurkar et "
                 "al. argue against the covariate-shift explanation.")
    else:
        shift = ("Chapter 07 does not show that BN's benefit survives layer inputs made to move "
                 f"(inputs move more: {_verdict(moves)}; noisy BN trains better than the standard "
                 f"network: {_verdict(better)}).")
    out["q_shift"] = shift + (" The paper's stronger claim, that it trains nearly as well as BN, "
                              f"{_reads(nearly)}.")
    out["q_ics"] = f"Their second test, that BN does not reduce gradient-based ICS, {_reads(ics)}."
    smooth = group(("08",))
    held = [r["claim"] for r in smooth if r["verdict"] == claims.YES]
    out["q_smooth"] = (f"Of chapter 08's {how_many(len(smooth), 'claim')} that BN smooths the "
                       f"landscape, {_counts(smooth, total=False)}"
                       + (f" (the one that holds: {held[0]})" if len(held) == 1 else "") + ": "
                       + ("at our scale the records do not show BN smoothing the landscape on every "
                          "measure, so they leave open why BN helps."
                          if len(held) < len(smooth) else
                          "at our scale the landscape measurements side with smoothness."))
    return out


def tables(rows: list[dict]):
    """Show ``rows`` as one table per chapter (claim, verdict, ours, spread, record, theirs and
    their source), each under its chapter's name: readable at page width."""
    from IPython.display import Markdown, display

    for chapter in dict.fromkeys(r["chapter"] for r in rows):
        mine = [r for r in rows if r["chapter"] == chapter]
        records = {r["record"] for r in mine}
        one = records.pop() if len(records) == 1 else None     # one record: named in the heading
        display(Markdown(f"**Chapter {chapter}**" + (f" (record: {one})" if one else "")))
        display(Table([{"claim": r["claim"], "verdict": r["verdict"], "ours": r["ours"],
                        "spread (mean ± SE)": r["spread"], **({} if one else {"record": r["record"]}),
                        "theirs (source)": f"{r['their number']} ({r['source']})"} for r in mine]))
