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

from ..book import claims, results
from ..book.page import how_many
from . import ch01_covariate_shift as covariate_shift
from . import ch02_forward_pass as forward_pass
from . import ch04_mnist as mnist
from . import ch05_cifar_inception as inception
from . import ch06_ensemble as ensemble
from . import ch07_santurkar_noise as noise
from . import ch08_santurkar_smoothness as smoothness
from . import ch09_in_practice as in_practice
from . import santurkar
from .ch09_in_practice import headlines as practice_headlines

NOT_RUN = "not run at this scale"
SMOKE = "not tested at this scale (smoke record only)"
PER_ROW = "seeds as each row's spread says"


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
    where = scale or (_scale(record) if record is not None else NOT_RUN)
    smoke = record is not None and record.profile == "smoke"
    return [{"chapter": chapter, **h, "record": where, **({"verdict": SMOKE} if smoke else {})}
            for h in heads]


def _ch01(folder) -> list[dict]:
    rec = results.best_record(covariate_shift.CHAPTER, "shift", folder)
    seeds = results.best_record(covariate_shift.CHAPTER, "shift_seeds", folder)
    if rec is None:
        return _rows("01", rec, covariate_shift.claim_rows(rec))
    n = len(covariate_shift.seed_summaries(rec, seeds))
    return _rows("01", rec, covariate_shift.claim_rows(rec, seeds),
                 f"{rec.profile}, {n} seed{'s' if n != 1 else ''}")


def _ch02(folder) -> list[dict]:
    est = results.best_record(forward_pass.CHAPTER, "running_estimates", folder)
    branch = results.best_record(forward_pass.CHAPTER, "eval_branch", folder)
    return (_rows("02", est, [forward_pass.population_claim(est)])
            + _rows("02", branch, [forward_pass.eval_branch_claim(branch)]))


def _ch04(folder) -> list[dict]:
    runs = results.best_record(mnist.CHAPTER, "runs", folder)
    bs1 = results.best_record(mnist.CHAPTER, "batch_size_one", folder)
    return (_rows("04", runs, mnist.run_claims(runs))
            + _rows("04", bs1, [mnist.batch_one_claim(bs1)], None if bs1 is None else f"{bs1.profile}, 1 network"))


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
    return (_chapter("05", table, lambda rec: inception.claim_rows(inception.summary(rec)),
                     "BN lets Inception reach its accuracy in fewer steps", "Ioffe & Szegedy 2015", "Fig. 3",
                     None if table is None else _table_scale(table))
            + _chapter("06", ens, ensemble.claim_rows, "an ensemble of BN networks is more accurate than its best member",
                       "Ioffe & Szegedy 2015", "Table 3")
            + _chapter("07", _merged(results.best_record(noise.CHAPTER, "noise", folder),
                                     noise.with_extra_seeds), noise.claim_rows,
                       "BN's benefit does not come from stable layer inputs", "Santurkar et al. 2018",
                       "Figs. 2, 3")
            + _chapter("08", _merged(results.best_record(smoothness.CHAPTER, "smoothness", folder),
                                     smoothness.with_extra_seeds),
                       smoothness.claim_rows, "BN makes the loss landscape smoother",
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
    # its records differ in seeds (the batch sweep's extra seeds, the GA's searches): each
    # claim's spread names them
    return _rows("09", recs["batch_sweep"], practice_headlines.claim_rows(recs, cfg),
                 f"{recs['batch_sweep'].profile}, {PER_ROW}")


def verdicts(folder: Path | None = None) -> list[dict]:
    """Return the book's verdict rows, chapter by chapter, from the stored records."""
    return [*_ch01(folder), *_ch02(folder), *_ch04(folder), *_ch05_to_08(folder), *_ch09(folder)]


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
    the tally per source (``ans_*``), the answer in one sentence (``q_short``) and in full
    (``q_shift``: does BN's benefit survive layer inputs made to move? ``q_ics``: does BN reduce
    gradient ICS? ``q_smooth``: do the landscape measurements show smoothing?), each sentence
    saying only what its verdicts allow."""
    papers = [r for r in rows if r["kind"] == "paper"]
    group = lambda chs: [r for r in papers if r["chapter"] in chs]  # noqa: E731
    out = {"ans_ioffe": _counts(group(("01", "02", "03", "04", "05", "06"))),
           "ans_santurkar": _counts(group(("07", "08"))), "ans_practice": _counts(group(("09",)))}
    moves, better = _find(papers, "07", "inputs move more"), _find(papers, "07", "better than the standard")
    nearly, ics = _find(papers, "07", "nearly as well"), _find(papers, "07", "ICS")
    survives = _verdict(moves) == claims.YES and _verdict(better) == claims.YES
    if survives:
        shift = ("In chapter 7, BN with injected noise has layer inputs that move more than the "
                 "standard network's, and it still trains better than the standard network (both "
                 "yes; the measure is training accuracy with the noise on, and chapter 7 shows how "
                 "the noisy network fares at test time): at our scale BN's benefit to training does "
                 "not need steady layer inputs, as Santurkar et al. argue against the "
                 "covariate-shift explanation.")
    else:
        shift = ("Chapter 7 does not show that BN's benefit survives layer inputs made to move "
                 f"(inputs move more: {_verdict(moves)}; noisy BN trains better than the standard "
                 f"network: {_verdict(better)}).")
    out["q_shift"] = shift + (" The paper's stronger claim, that it trains nearly as well as BN, "
                              f"{_reads(nearly)}.")
    out["q_ics"] = f"Their second test, that BN does not reduce gradient-based ICS, {_reads(ics)}" + (
        ": in no case was BN decidedly better on both measures at once, but a claim that something "
        "does not happen holds "
        "only if every comparable case shows BN decidedly worse on a measure, and some cases show "
        "neither (chapter 7 lists them)." if _verdict(ics) == claims.NOISE else ".")
    out["q_smooth"] = _smooth_answer(group(("08",)), [r for r in rows if r["chapter"] == "08"
                                                      and r["kind"] == "book"])
    out["q_short"] = _short_answer(survives, _smooths(group(("08",))))
    return out


def _short_answer(survives: bool, smooths: bool) -> str:
    """Return the book's answer in one sentence: whether BN's benefit survived layer inputs made
    to move (chapter 7) and whether the landscape measurements side with smoothness (chapter 8)."""
    shift = ("the records argue against the covariate-shift explanation (BN with noise injected "
             "into its layer inputs still reaches a higher training accuracy than the standard "
             "network)" if survives else
             "the records do not decide the covariate-shift explanation")
    smooth = ("side with the smoother landscape" if smooths else
              "do not show BN smoothing the landscape in every network they measure either (chapter 8 "
              "gives each network's reading), so why BN helps stays open")
    return f"At our scale, {shift}, and {smooth}."


# chapter 08's two claims that are not a smoothing measure, by a phrase of their claim
NOT_A_MEASURE = ("larger learning rate", "ℓp")


def _smoothing_measures(papers: list[dict]) -> list[dict]:
    """Return chapter 08's claims that BN makes the landscape smoother: all but the larger
    learning rate and the ℓp normalisations (``NOT_A_MEASURE``)."""
    return [r for r in papers if not any(p in r["claim"] for p in NOT_A_MEASURE)]


def _smooths(papers: list[dict]) -> bool:
    """Whether every one of chapter 08's smoothing measures holds (each in every network it
    measures: ``claims.all_of``)."""
    measures = _smoothing_measures(papers)
    return bool(measures) and all(r["verdict"] == claims.YES for r in measures)


def _smooth_answer(papers: list[dict], own: list[dict]) -> str:
    """Return the answer on smoothness from chapter 08's verdicts: the paper's claims that BN makes
    the landscape smoother (its measures), then its other two (a larger learning rate, the ℓp
    normalisations), then the book's own tests, and what they leave open."""
    lr, lp = (next((r for r in papers if phrase in r["claim"]), None) for phrase in NOT_A_MEASURE)
    measures = _smoothing_measures(papers)
    held = sum(r["verdict"] == claims.YES for r in measures)
    text = (f"Of chapter 8's {how_many(len(measures), 'claim')} that BN makes the loss landscape "
            f"smoother, {_counts(measures, total=False)}")

    def that(r: dict) -> str:   # the claim without its parenthesis of how it is measured
        return f"that {r['claim'].split(' (')[0]}, {_reads(r)}"

    others = [that(r) for r in (lr, lp) if r is not None]
    text += (f"; of the paper's {how_many(len(others), 'other claim')} there: {'; '.join(others)}"
             if others else "") + "."
    if own:
        text += " The book's own " + ("test, " if len(own) == 1 else "tests: ") + "; ".join(map(that, own)) + "."
    if _smooths(papers):
        return text + " At our scale the landscape measurements side with smoothness."
    # a measure holds only when it holds in every network chapter 8 measures (claims.all_of)
    return text + (" At our scale the records do not show BN smoothing the landscape"
                   + (" on every measure" if held else " in every network on any measure")
                   + " (chapter 8 gives each network's reading), so they leave open why BN helps.")


def _heading_record(rows: list[dict]) -> str | None:
    """Return what the heading over one chapter's table says of its records: the record when
    every row has the same one; the profile when they differ only in seeds and each row's spread
    names its seeds; None when the rows need a record column."""
    records = {r["record"] for r in rows}
    if len(records) == 1:
        return records.pop()
    profiles = {r.split(",")[0] for r in records}
    if len(profiles) == 1 and all("seed" in r["spread"] for r in rows):
        return f"{profiles.pop()}, {PER_ROW}"
    return None


def tables(rows: list[dict]):
    """Show ``rows`` as one table per chapter (claim, verdict, ours, spread, record, theirs and
    their source), each under its chapter's name: readable at page width."""
    from IPython.display import Markdown, display

    for chapter in dict.fromkeys(r["chapter"] for r in rows):
        mine = [r for r in rows if r["chapter"] == chapter]
        one = _heading_record(mine)                            # one record: named in the heading
        display(Markdown(f"**Chapter {int(chapter)}**" + (f" (record: {one})" if one else "")))
        display(claims.table(mine, extra=() if one else ("record",)))
