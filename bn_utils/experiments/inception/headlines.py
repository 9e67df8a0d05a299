"""The paper's headline claims about the ablation table, beside what a stored record shows."""

from __future__ import annotations

from ...verdicts import claim
from .config import CHANCE, CHANCE_MARGIN, TARGET_ROW
from .speedups import PAPER, _pm, paper_speedups

SOURCE = "Ioffe & Szegedy 2015"


def _accuracy(s: dict) -> str:
    """Return a row's best accuracy as text, with its spread over seeds when there are several."""
    return f"{_pm(s['max_accuracy'], s['max_accuracy_std'], s['n_seeds'])} %"


def _faster(s: dict) -> tuple[str, bool]:
    """Return how much sooner a row reached the target, and whether that is a speed-up beyond
    the measurement's resolution."""
    if s["target_at_chance"]:
        return "no target (Inception stayed at chance)", False
    if s["steps_to_target"] is None:
        return "did not reach it", False
    gain, res = s["speedup"], s["speedup_resolution"]
    return f"{gain:.1f}x fewer steps (± {100 * res:.0f} %)", gain * (1 - res) > 1


def headlines(summ: dict) -> list[dict]:
    """Return one line per headline claim of the paper about the ablation (its Figures 2 and 3,
    Sec. 4.2): the claim, its source, the paper's number, ours from ``summ`` (:func:`summary`),
    and whether ours shows it ("yes", "no", or "not run" when a row it needs is missing)."""
    speedups, out = paper_speedups(), []

    def add(text: str, where: str, theirs: str, needs: tuple, measure) -> None:
        out.append(claim(text, f"{SOURCE}, {where}", theirs, measure, all(r in summ for r in needs)))

    for row in ("BN-Baseline", "BN-x5", "BN-x30"):
        add(f"{row} reaches Inception's best accuracy in fewer steps", "Fig. 3",
            f"{speedups[row]:.1f}x fewer steps", (TARGET_ROW, row),
            lambda row=row: _faster(summ[row]))
    for high, low in (("BN-x30", "BN-x5"), ("BN-x30", TARGET_ROW)):
        add(f"{high}'s best accuracy is above {low}'s", "Fig. 3",
            f"{PAPER[high]['max_accuracy']:.1f} % vs {PAPER[low]['max_accuracy']:.1f} %", (high, low),
            lambda high=high, low=low: (f"{_accuracy(summ[high])} vs {_accuracy(summ[low])}",
                                        summ[high]["max_accuracy"] > summ[low]["max_accuracy"]))
    learns = CHANCE + CHANCE_MARGIN
    add("with BN a sigmoid network trains; without BN it stays at chance", "Sec. 4.2.2, Fig. 3",
        f"{PAPER['BN-x5-Sigmoid']['max_accuracy']:.1f} % with BN; chance without",
        ("BN-x5-Sigmoid", "Inception-x5-Sigmoid"),
        lambda: (f"{_accuracy(summ['BN-x5-Sigmoid'])} with BN, "
                 f"{_accuracy(summ['Inception-x5-Sigmoid'])} without",
                 summ["BN-x5-Sigmoid"]["max_accuracy"] >= learns
                 > summ["Inception-x5-Sigmoid"]["max_accuracy"]))
    add("without BN, the BN-x30 recipe fails (diverges or does not learn)", "Sec. 3.3 (argued, not run)",
        "—", ("Inception-x30",),
        lambda: ("diverged" if summ["Inception-x30"]["diverged_at"] is not None
                 else f"trained to {_accuracy(summ['Inception-x30'])}",
                 summ["Inception-x30"]["diverged_at"] is not None
                 or summ["Inception-x30"]["max_accuracy"] < learns))
    return out
