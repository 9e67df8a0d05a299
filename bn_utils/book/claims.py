"""How the book decides a claim: a measured difference against the claim's margin, with the
spread of the seeds behind it.

A claim says one quantity exceeds another (or a threshold) by at least a margin. Each seed gives
one measurement per side; the verdict is taken on the mean difference and its standard error
(SE, from the seeds' sample standard deviations):

* "yes" when the mean difference exceeds the margin by more than two SE,
* "no" when it falls short of the margin by more than two SE,
* "inside the noise" otherwise: the seeds do not decide it,
* "N seed(s): not decided" when a side has fewer seeds than the rule needs (two, to have a spread),
* "not comparable" when a network the claim compares did not learn (accuracy near chance),
* "not run" when the records lack a run the claim needs, "not measured" when the runs exist but
  their difference is not a number.

Every chapter's headline claims and chapter 10's table are rows of one shape (:func:`row`). This
module reads no records and imports no chapter: chapters import it, never the other way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .page import in_words

YES, NO, NOISE = "yes", "no", "inside the noise"
NOT_COMPARABLE, NOT_RUN = "not comparable", "not run"
NOT_MEASURED = "not measured"   # the runs exist but the measured difference is not a number
MIN_SEEDS = 2          # a spread needs two seeds
N_SE = 2.0             # a verdict needs the mean difference two standard errors past the margin
LEARNED = 0.05         # a network learned when its accuracy is this far above chance


def not_decided(n: int) -> str:
    """Return the verdict of a rule asked to decide on ``n`` seeds, fewer than it needs."""
    return f"{n} seed{'' if n == 1 else 's'}: not decided"


@dataclass(frozen=True)
class Decision:
    """A claim's measured difference (``mean`` over seeds, its standard error ``se``, the fewest
    seeds on a side ``n``), the ``margin`` it had to clear, and the ``verdict``."""
    mean: float
    se: float
    n: int
    margin: float
    verdict: str

    def spread(self, unit: str = "", scale: float = 1.0, digits: int = 1) -> str:
        """Return the difference as text, mean ± SE over the seeds: ``"+3.2 ± 0.8 points, 3 seeds"``
        (``scale`` multiplies both, e.g. 100 for fractions shown as points)."""
        if not np.isfinite(self.mean):
            return "—"
        se = "" if not np.isfinite(self.se) else f" ± {scale * self.se:.{digits}f}"
        unit = f" {unit}" if unit else ""
        return f"{scale * self.mean:+.{digits}f}{se}{unit}, {self.n} seed{'' if self.n == 1 else 's'}"


def _values(x) -> np.ndarray:
    v = np.atleast_1d(np.asarray(x, dtype=float))
    if v.ndim != 1:
        raise ValueError(f"a claim's measurements are one number per seed, got shape {v.shape}")
    return v


def decide(mean: float, se: float, n: int, margin: float = 0.0, min_seeds: int = MIN_SEEDS) -> Decision:
    """Return the verdict on a difference ``mean`` (claim direction positive) with standard error
    ``se`` measured on ``n`` seeds: yes / no beyond ``N_SE`` standard errors of ``margin``,
    inside the noise between, not decided on fewer than ``min_seeds`` seeds."""
    if n < min_seeds or not np.isfinite(se):
        verdict = not_decided(n)
    elif not np.isfinite(mean):
        verdict = NOT_MEASURED
    elif mean - margin > N_SE * se:
        verdict = YES
    elif mean - margin < -N_SE * se:
        verdict = NO
    else:
        verdict = NOISE
    return Decision(float(mean), float(se), int(n), float(margin), verdict)


def greater(a: Sequence[float], b: Sequence[float] | float, margin: float = 0.0,
            min_seeds: int = MIN_SEEDS) -> Decision:
    """Return the verdict on "``a`` exceeds ``b`` by more than ``margin``": ``a`` one value per
    seed, ``b`` one value per seed of another network (independent seeds: the two variances
    add) or a fixed threshold (a number)."""
    a = _values(a)
    fixed = np.isscalar(b) or np.ndim(b) == 0
    b_v = _values(b)
    n = len(a) if fixed else min(len(a), len(b_v))
    var = a.var(ddof=1) / len(a) if len(a) > 1 else np.inf
    if not fixed:
        var = var + (b_v.var(ddof=1) / len(b_v) if len(b_v) > 1 else np.inf)
    return decide(float(a.mean() - b_v.mean()), float(np.sqrt(var)), n, margin, min_seeds)


def paired(differences: Sequence[float], margin: float = 0.0, min_seeds: int = MIN_SEEDS) -> Decision:
    """Return the verdict on "the difference exceeds ``margin``" from one difference per seed
    (both sides measured on the same seed)."""
    d = _values(differences)
    se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else np.inf
    return decide(float(d.mean()), float(se), len(d), margin, min_seeds)


def confidence(df: int, n_se: float = N_SE) -> float:
    """Return how often a difference of zero lands within ``n_se`` standard errors of its mean
    when the SE is estimated from the data with ``df`` degrees of freedom (Student's t: the
    two-sided coverage of ``± n_se``; ``df`` = seeds − 1 for a paired difference). This is the
    confidence behind a yes or no: about 0.95 for many seeds, less for few."""
    if df < 1:
        raise ValueError(f"a standard error estimated from data needs df >= 1, got {df}")
    t = np.linspace(0.0, n_se, 20001)
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    pdf = np.exp(log_c - (df + 1) / 2 * np.log1p(t ** 2 / df))
    return float(2 * np.sum((pdf[1:] + pdf[:-1]) / 2 * np.diff(t)))


def learned(accuracies: Sequence[float], chance: float, margin: float) -> bool:
    """Return whether a network learned: its seeds' mean accuracy is above ``chance + margin``."""
    return bool(np.mean(_values(accuracies)) > chance + margin)


def verdict_of(decision: Decision | str) -> str:
    """Return a decision's verdict (a verdict word is its own)."""
    return decision.verdict if isinstance(decision, Decision) else decision


def all_of(parts: Sequence[Decision | str]) -> str:
    """Return the verdict on a claim that needs every one of its parts (in the VGG and in the
    DLN, at every learning rate): "no" when a part is no (one decided counterexample refutes it
    whatever the others), else "not run", "not comparable", the fewest seeds' "not decided" or
    "inside the noise" when a part is, else "yes"; a part with any other verdict (a chapter's own
    reason it is not decided) is returned as it is, never counted as a yes."""
    verdicts = [verdict_of(p) for p in parts]
    if not verdicts:
        raise ValueError("a claim of several parts needs at least one; no part given")
    if NO in verdicts:
        return NO
    for word in (NOT_RUN, NOT_COMPARABLE):
        if word in verdicts:
            return word
    undecided = [v for v in verdicts if v.endswith(": not decided")]
    if undecided:
        return min(undecided, key=lambda v: int(v.split()[0]))
    other = [v for v in verdicts if v not in (YES, NOISE)]
    if other:                 # a chapter's own "not decided" reason: never read as a yes
        return other[0]
    return NOISE if NOISE in verdicts else YES


def negated(verdict: Decision | str) -> str:
    """Return the verdict on the opposite claim: yes and no swapped, every other verdict kept."""
    v = verdict_of(verdict)
    return {YES: NO, NO: YES}.get(v, v)


def row(claim: str, source: str, theirs: str, ours: str, decision: Decision | str,
        spread: str | None = None, kind: str = "paper") -> dict:
    """Return one claim in the book's one shape: what is claimed, by whom (``kind`` "paper": a
    paper or reproduction claims it; "book": the book's own test), their number, ours, the
    spread behind ours, and the verdict (a :class:`Decision` or one of the verdict words)."""
    if isinstance(decision, Decision):
        verdict, spread = decision.verdict, decision.spread() if spread is None else spread
    else:
        verdict = decision
    if kind not in ("paper", "book"):
        raise ValueError(f"a claim's kind is 'paper' or 'book', not {kind!r}")
    return {"claim": claim, "source": source, "their number": theirs, "ours": ours,
            "spread": spread or "—", "verdict": verdict, "kind": kind}


def missing(claim: str, source: str, theirs: str, kind: str = "paper") -> dict:
    """Return the row of a claim whose records lack a run it needs."""
    return row(claim, source, theirs, "—", NOT_RUN, kind=kind)


def table(rows: Sequence[dict], extra: Sequence[str] = ()):
    """Return the page's table of claim rows (:func:`row`), the same columns in every chapter:
    the claim, its verdict, our measurement, its spread over the seeds, then the rows' ``extra``
    fields (the closing page's record), and their number with where they show it."""
    from .page import Table

    return Table([{"claim": r["claim"], "verdict": r["verdict"], "ours": r["ours"], "spread": r["spread"],
                   **{k: r[k] for k in extra},
                   "theirs (source)": f"{r['their number']} ({r['source']})"} for r in rows], fmt="{}")


UNDECIDED = "not decided"   # the tally's name for every verdict but yes, no and inside the noise


def counts(verdicts: Sequence[str]) -> dict[str, int]:
    """Return how many of ``verdicts`` are yes, no, inside the noise, and not decided (too few
    seeds, not comparable, not run: every other verdict)."""
    n = {YES: 0, NO: 0, NOISE: 0, UNDECIDED: 0}
    for v in verdicts:
        n[v if v in n else UNDECIDED] += 1
    return n


def counts_text(verdicts: Sequence[str]) -> str:
    """Return :func:`counts` as a clause in agreeing grammar, zeros left out: "4 hold, 3 do not,
    1 sits inside the noise and 1 is not decided"."""
    n = counts(verdicts)
    words = {YES: ("holds", "hold"), NO: ("does not", "do not"),
             NOISE: ("sits inside the noise", "sit inside the noise"),
             UNDECIDED: ("is not decided", "are not decided")}
    parts = [f"{k} {words[v][k != 1]}" for v, k in n.items() if k]
    return in_words(parts) or "none"
