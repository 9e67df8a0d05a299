"""The paper's headline claims about noise and internal covariate shift (Santurkar et al. 2018,
Sec. 2), beside what a stored record shows, each with the rule that decides "shown?"."""

from __future__ import annotations

from ... import results
from ...verdicts import claim
from ..santurkar import CHANCE, LEARNED
from .experiment import PAPER
from .tables import ics_summary, shift_summary

SOURCE = "Santurkar et al. 2018"
# "trains nearly as well as BN": keeps at least this share of BN's training accuracy above chance
KEEP = 0.9


def _kept(shift: dict, noisy: str, clean: str) -> float | None:
    """Return the share of ``clean``'s final training accuracy above chance that ``noisy`` keeps
    (training accuracy as trained: noise on, batch statistics); None when ``clean`` itself did
    not learn (within ``LEARNED`` of chance), since there is then no gain to keep."""
    acc = {n: shift[n]["train_batch_accuracy"][0] for n in (noisy, clean)}
    if not acc[clean] - CHANCE >= LEARNED:
        return None
    return (acc[noisy] - CHANCE) / (acc[clean] - CHANCE)


def _pct(share: float | None) -> str:
    return "undefined (the network without noise did not learn)" if share is None else f"{share:.1%}"


def ics_reductions(record: results.Record) -> tuple[int, int, list[str]]:
    """Return in how many measured (network, learning rate, layer) cases BN *reduced* gradient
    ICS on both of the paper's measures (a smaller ‖G − G′‖/‖G‖ and a larger cos(G, G′) than
    the standard network's), out of how many, and those cases by name."""
    found, total = [], 0
    for arch in ("vgg", "dln"):
        ics = ics_summary(record, arch)
        for (lr, k, norm), bn in ics.items():
            plain = ics.get((lr, k, "none"))
            if norm != "bn" or plain is None:
                continue
            total += 1
            if bn["rel"] < plain["rel"] and bn["cos"] > plain["cos"]:
                found.append(f"{arch.upper()} LR {lr:g} layer {k}")
    return len(found), total, found


def headlines(record: results.Record) -> list[dict]:
    """Return one line per claim: the claim, its source, their number, ours from ``record``,
    and whether ours shows it ("yes"/"no"; "not run" when a network it needs is missing)."""
    shift, c = shift_summary(record), record.config
    deep = c["watch_layers"][-1]
    out = []

    def add(text: str, where: str, theirs: str, needs: tuple, measure) -> None:
        out.append(claim(text, where, theirs, measure, all(n in shift for n in needs)))

    acc = lambda n: shift[n]["train_batch_accuracy"][0]  # noqa: E731
    rel = lambda n: shift[n][f"rel_d_mean_L{deep}"][0]  # noqa: E731
    moved = lambda n: shift[n][f"d_mean_L{deep}"][0]  # noqa: E731
    add("noisy BN's layer inputs move more than the standard network's (absolute change of the "
        "units' means, the paper's measure)", f"{SOURCE}, Figs. 2 and 8", "qualitative (distribution plots)",
        ("noisy_bn", "none"),
        lambda: (f"layer {deep}, between measurements: |Δμ| {moved('noisy_bn') / moved('none'):.2g}× "
                 "the standard network's", moved("noisy_bn") > moved("none")))
    add("noisy BN's layer inputs move more than the standard network's relative to each layer's "
        "own spread (|Δμ|/σ)", "book's test (not in the paper)", "—",
        ("noisy_bn", "none"),
        lambda: (f"layer {deep}: |Δμ|/σ {rel('noisy_bn'):.3g} (noisy BN) vs {rel('none'):.3g} (standard)",
                 rel("noisy_bn") > rel("none")))
    kept_bn = lambda: _kept(shift, "noisy_bn", "bn")  # noqa: E731
    add(f"noisy BN trains nearly as well as BN (keeps ≥ {KEEP:.0%} of its accuracy above chance)",
        f"{SOURCE}, Fig. 2", "qualitative (training curves)", ("noisy_bn", "bn"),
        lambda: (f"training accuracy (noise on) {acc('noisy_bn'):.3f} vs {acc('bn'):.3f}: "
                 f"keeps {_pct(kept_bn())}", kept_bn() is not None and kept_bn() >= KEEP))
    add("noisy BN trains better than the standard network", f"{SOURCE}, Fig. 2",
        "qualitative (training curves)", ("noisy_bn", "none"),
        lambda: (f"training accuracy {acc('noisy_bn'):.3f} vs {acc('none'):.3f}",
                 acc("noisy_bn") > acc("none") and acc("noisy_bn") - CHANCE >= LEARNED))
    kept_plain = lambda: _kept(shift, "noise", "none")  # noqa: E731
    add("the same noise costs a standard network more than a BN network", "book's control (not in the paper)",
        "—", ("noise", "none", "noisy_bn", "bn"),
        lambda: (f"share of accuracy above chance kept: {_pct(kept_plain())} (standard) "
                 f"vs {_pct(kept_bn())} (BN)",
                 None not in (kept_plain(), kept_bn()) and kept_plain() < kept_bn()))
    test = lambda n: shift[n]["test_accuracy"][0]  # noqa: E731
    add("BN improves test accuracy", f"{SOURCE}, App. A",
        f"{100 * PAPER['test_accuracy_bn']:.0f} % vs {100 * PAPER['test_accuracy_standard']:.0f} %",
        ("bn", "none"), lambda: (f"{100 * test('bn'):.1f} % vs {100 * test('none'):.1f} %",
                                 test("bn") > test("none") and test("bn") - CHANCE >= LEARNED))
    n, total, cases = ics_reductions(record)
    out.append(claim("BN does not reduce gradient-based ICS (in no measured layer is it smaller on "
                     "both measures)", f"{SOURCE}, Fig. 3", "qualitative (VGG and DLN, two LRs each)",
                     lambda: (f"BN reduced it on both measures in {n} of {total} cases"
                              + (f" ({', '.join(cases)})" if cases else ""), n == 0), total > 0))
    return out

