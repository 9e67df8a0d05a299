"""The paper's headline claims about the ablation table, beside what a stored record shows, each
decided on the seeds' spread (:mod:`bn_utils.book.claims`)."""

from __future__ import annotations

import dataclasses

import numpy as np

from ... import data
from ...book import claims
from .config import TARGET_ROW
from .analysis import EARLY_EPOCHS, PAPER, paper_speedups, percent_pm

SOURCE = "Ioffe & Szegedy 2015"
LEARNS = data.CHANCE + claims.LEARNED    # a row whose mean best accuracy is below this did not learn
BUDGET = "not decided: its run ends before Inception's reaches the target"


def _accuracy(s: dict) -> str:
    """Return a row's best accuracy as text, with its spread over seeds when there are several."""
    return f"{percent_pm(s['max_accuracy'], s['max_accuracy_std'], s['n_seeds'])} %"


def _learned(*rows: dict) -> bool:
    return all(claims.learned(s["max_accuracy_seeds"], data.CHANCE, claims.LEARNED) for s in rows)


def _points(d: claims.Decision) -> str:
    return d.spread("points", scale=100)


def _faster(s: dict, base: dict) -> tuple[str, str, str]:
    """Return (ours, spread, verdict) for "the row reaches Inception's best in fewer steps": each
    seed's speed-up over Inception's mean curve, decided on their logarithms against the
    measurement's resolution (a speed-up must exceed 1 + resolution)."""
    if s["target_at_chance"]:
        return "no target (Inception stayed at chance)", "—", claims.NOT_COMPARABLE
    x = s["speedup_seeds"]
    reached = [v for v in x if v]
    if not reached and s["last_step"] < base["steps_to_target"]:
        # its run ended before Inception got there: "fewer steps" is neither shown nor refuted
        return (f"did not reach it in its {s['last_step']:,} steps (Inception: "
                f"{base['steps_to_target']:,})", f"0 of {len(x)} seeds reached it", BUDGET)
    if not reached:
        return "did not reach it", f"0 of {len(x)} seeds reached it", claims.NO
    if len(reached) < len(x):
        return (f"{len(reached)} of {len(x)} seeds reached it", ", ".join(
            "never" if not v else f"{v:.1f}x" for v in x), claims.NOISE)
    res = s["speedup_resolution"] or 0.0
    d = claims.paired(np.log(reached), margin=float(np.log1p(res)))
    spread = (f"{min(reached):.1f}–{max(reached):.1f}x over {len(x)} seeds" if len(x) > 1
              else "1 seed")
    return f"{np.exp(np.mean(np.log(reached))):.1f}x fewer steps (± {100 * res:.0f} %)", spread, d.verdict


def _above(summ: dict, high: str, low: str, ours: str = "") -> tuple:
    """Measure "``high``'s best accuracy is above ``low``'s" (``ours`` says it otherwise)."""
    a, b = summ[high], summ[low]
    ours = ours or f"{_accuracy(a)} vs {_accuracy(b)}"
    if not _learned(a, b):
        return ours, "—", claims.NOT_COMPARABLE
    d = claims.greater(a["max_accuracy_seeds"], b["max_accuracy_seeds"])
    return ours, _points(d), d.verdict


def _slower_then_higher(summ: dict) -> tuple:
    x30, x5 = summ["BN-x30"], summ["BN-x5"]
    if not _learned(x30, x5):
        return "—", "—", claims.NOT_COMPARABLE
    early = claims.greater(x5["early_accuracy_seeds"], x30["early_accuracy_seeds"])
    late = claims.greater(x30["max_accuracy_seeds"], x5["max_accuracy_seeds"])
    e30, e5 = (100 * np.nanmean(s["early_accuracy_seeds"]) for s in (x30, x5))
    return (f"after {EARLY_EPOCHS:g} epoch: {e30:.1f} % vs {e5:.1f} %; best: {_accuracy(x30)} vs "
            f"{_accuracy(x5)}", f"early {_points(early)}; best {_points(late)}", claims.all_of((early, late)))


def _never_reaches(summ: dict) -> tuple:
    """Measure "BN-x5-Sigmoid never reaches Inception's best" as Inception's best above its."""
    sig, inc = summ["BN-x5-Sigmoid"], summ[TARGET_ROW]
    reach = sig.get("steps_to_target") if sig.get("target") is not None else None
    crossing = ("" if reach is None else
                f"; its mean curve does cross the peak of Inception's mean curve "
                f"({100 * sig['target']:.1f} %), at step {reach:,}")
    return _above(summ, TARGET_ROW, "BN-x5-Sigmoid",
                  ours=f"best {_accuracy(sig)} vs Inception's {_accuracy(inc)}{crossing}")


def _vs_learns(d: claims.Decision, needs: str) -> str:
    """Return a row's best accuracy against the "learned" threshold as text, the sign that of
    accuracy minus threshold (``d`` measured threshold minus accuracy, for a claim that it stays
    below), and which side the claim needs."""
    sign = -1.0 if needs == "below" else 1.0
    return f"{_points(dataclasses.replace(d, mean=sign * d.mean))} (the claim needs it {needs})"


def _sigmoid_needs_bn(summ: dict) -> tuple:
    bn, plain = summ["BN-x5-Sigmoid"], summ["Inception-x5-Sigmoid"]
    trains = claims.greater(bn["max_accuracy_seeds"], LEARNS)
    stays = claims.paired(LEARNS - np.asarray(plain["max_accuracy_seeds"]))
    return (f"{_accuracy(bn)} with BN, {_accuracy(plain)} without (chance {100 * data.CHANCE:.0f} %)",
            f"vs {100 * LEARNS:.0f} % (chance + {100 * claims.LEARNED:.0f} points): with BN "
            f"{_vs_learns(trains, 'above')}; without {_vs_learns(stays, 'below')}",
            claims.all_of((trains, stays)))


def _x30_fails(summ: dict) -> tuple:
    s = summ["Inception-x30"]
    if s["diverged_at"] is not None:
        n = s["n_seeds"]
        return "diverged", f"{s['n_diverged']} of {n} seeds diverged", \
            claims.YES if n >= claims.MIN_SEEDS else claims.not_decided(n)
    # a seed that diverged counts as chance accuracy: it failed
    acc = [data.CHANCE if d else a for a, d in zip(s["max_accuracy_seeds"], s["diverged_seeds"])]
    d = claims.paired(LEARNS - np.asarray(acc))
    spread = f"vs {100 * LEARNS:.0f} % (chance + {100 * claims.LEARNED:.0f} points): {_vs_learns(d, 'below')}"
    return f"trained to {_accuracy(s)}", spread, d.verdict


def _claims() -> list[tuple]:
    """Return each claim as (text, where, theirs, the rows it needs, measure(summ) -> (ours,
    spread, verdict))."""
    speedups, p = paper_speedups(), lambda row: PAPER[row]["max_accuracy"]  # noqa: E731
    out = [(f"{row} reaches Inception's best accuracy in fewer steps", "Fig. 3",
            f"{speedups[row]:.1f}x fewer steps", (TARGET_ROW, row),
            lambda summ, row=row: _faster(summ[row], summ[TARGET_ROW]))
           for row in ("BN-Baseline", "BN-x5", "BN-x30")]
    out += [(f"{high}'s best accuracy is above {low}'s", "Fig. 3", f"{p(high):.1f} % vs {p(low):.1f} %",
             (high, low), lambda summ, high=high, low=low: _above(summ, high, low))
            for high, low in (("BN-x30", "BN-x5"), ("BN-x30", TARGET_ROW))]
    return out + [
        ("BN-x30 trains more slowly than BN-x5 at first but ends higher", "Sec. 4.2.2, Fig. 2",
         f"slower initially; {p('BN-x30'):.1f} % vs {p('BN-x5'):.1f} %", ("BN-x30", "BN-x5"),
         _slower_then_higher),
        ("BN-x5-Sigmoid never reaches Inception's best accuracy (its seeds' mean best below Inception's)",
         "Fig. 3",
         f"{p('BN-x5-Sigmoid'):.1f} % vs {p(TARGET_ROW):.1f} %", ("BN-x5-Sigmoid", TARGET_ROW), _never_reaches),
        ("with BN a sigmoid network trains; without BN it stays at chance", "Sec. 4.2.2, Fig. 3",
         f"{p('BN-x5-Sigmoid'):.1f} % with BN; chance without", ("BN-x5-Sigmoid", "Inception-x5-Sigmoid"),
         _sigmoid_needs_bn),
        ("without BN, the BN-x30 recipe fails (diverges or does not learn)", "Sec. 3.3 (argued, not run)",
         "—", ("Inception-x30",), _x30_fails)]


def claim_rows(summ: dict) -> list[dict]:
    """Return one row per headline claim of the paper about the ablation (its Figures 2 and 3,
    Sec. 4.2) in :func:`bn_utils.book.claims.row`'s shape: ours from ``summ`` (:func:`summary`), the
    spread over seeds and the verdict ("not run" when a row it needs is missing)."""
    out = []
    for text, where, theirs, needs, measure in _claims():
        if not all(r in summ for r in needs):
            out.append(claims.missing(text, f"{SOURCE}, {where}", theirs))
            continue
        ours, spread, verdict = measure(summ)
        out.append(claims.row(text, f"{SOURCE}, {where}", theirs, ours, verdict, spread))
    return out
