"""The paper's claims about the loss landscape (Santurkar et al. 2018, Sec. 3) and the book's own
tests beside them, each decided by the book's rule (:mod:`bn_utils.book.claims`) over the seeds a
record holds."""

from __future__ import annotations

import numpy as np

from ... import book, data
from ...book import claims, results
from .. import santurkar
from .analysis import MEASURES, beta_comparison, flat_start, flat_start_clause, landscape_median
from .config import LP_NETS, PAPER_NETS
from .experiment import record_norms, with_extra_seeds

SOURCE = "Santurkar et al. 2018"
BOOK = "book's test (not in the paper)"


def _networks(record: results.Record, arch: str, lr: float, norms) -> dict:
    """Return per network of ``arch`` at ``lr``: whether it learned, and per seed (``{seed:
    value}``) each landscape measure, the final training accuracy (VGG; a diverged run at
    chance) or the final loss (DLN)."""
    runs, out = santurkar.unpack(record), {}
    for norm in norms:
        group = santurkar.group(arch, norm, lr)
        members = santurkar.seeds_of(runs, group)
        if not members:
            continue
        row = {"learned": santurkar.learned(members, arch)}
        row.update(
            {
                key: santurkar.per_seed(
                    runs,
                    group,
                    lambda m, key=key: landscape_median(m, key) if "ls_beta" in m else np.nan,
                )
                for key in MEASURES
            }
        )
        if arch == "vgg":
            row["final"] = santurkar.per_seed(runs, group, lambda m: data.CHANCE if m.get("diverged")
                                      else santurkar.last_finite(m, "train_accuracy"))
        else:
            row["final"] = santurkar.per_seed(runs, group, lambda m: santurkar.last_finite(m, "loss"))
        out[norm] = row
    return out


def _v(by_seed: dict) -> list[float]:
    return list(by_seed.values())


def _m(by_seed: dict) -> float:
    return float(np.mean(_v(by_seed))) if by_seed else float("nan")


def _smaller(nets: dict, key: str) -> claims.Decision | str:
    """Return the verdict on "BN's median ``key`` is smaller than the standard network's" in one
    architecture (not comparable unless both learned)."""
    if not (nets["none"]["learned"] and nets["bn"]["learned"]):
        return claims.NOT_COMPARABLE
    return claims.greater(_v(nets["none"][key]), _v(nets["bn"][key]))


def _text(d) -> str:
    return santurkar.spread(d) if isinstance(d, claims.Decision) else d


def claim_rows(record: results.Record) -> list[dict]:
    """Return chapter 08's claims in :func:`bn_utils.book.claims.row`'s shape, decided over the seeds
    the record holds (with the extra seeds' runs stored so far merged in). A seed is one training
    run of a network; the networks' seeds are independent (``claims.greater``), and a quantity of
    three networks (the ℓp claim's DLN part) is one value per seed (``claims.paired``). A claim
    about both networks must hold in the VGG and in the DLN (``claims.all_of``); a comparison of
    measurements over training needs both networks to have learned (``santurkar.learned``), else
    it is "not comparable"; β at step 0 is taken before any learning and compares at any rate."""
    record = with_extra_seeds(record)
    nets = _landscape_nets(record)
    vgg, dln = nets["VGG"], nets["DLN"]
    both = all(n in s for s in (vgg, dln) for n in PAPER_NETS)
    out = []
    for key, text, where in (
        (
            "loss_range",
            "with BN the loss changes less along the gradient (a smaller Lipschitz constant)",
            "Fig. 4(a) VGG, Fig. 10(a) DLN",
        ),
        ("grad_change", "with BN the gradient is more predictive", "Figs. 4(b), 10(b), 11"),
        (
            "beta",
            "BN lowers the effective smoothness constant λ (measured along training at one LR)",
            "Figs. 4(c), 10(c)",
        ),
    ):
        where, theirs = f"{SOURCE}, {where}", "qualitative (figures)"
        if not both:
            out.append(claims.missing(text, where, theirs))
            continue
        parts = {arch: _smaller(s, key) for arch, s in nets.items()}
        ours = "; ".join(f"{arch}: standard {book.sig(_m(s['none'][key]))}, BN {book.sig(_m(s['bn'][key]))}"
                         for arch, s in (("VGG", vgg), ("DLN", dln)))
        out.append(
            claims.row(
                text,
                where,
                theirs,
                f"median {MEASURES[key]}: {ours}",
                claims.all_of(parts.values()),
                spread="; ".join(f"{a}: {_text(d)}" for a, d in parts.items()),
            )
        )
    out.append(_beta_free_of_lr(record))
    out.append(_larger_lr(record))
    out.append(_lp_help(vgg, dln))
    return out


def _landscape_nets(record: results.Record) -> dict[str, dict]:
    """Return :func:`_networks` of the VGG ("VGG") and the DLN ("DLN"), each at its learning rate."""
    c = record.config
    return {"VGG": _networks(record, "vgg", c["lr"], record_norms(record, "vgg")),
            "DLN": _networks(record, "dln", c["dln_lr"], record_norms(record, "dln"))}


def landscape_verdicts(record: results.Record) -> dict[str, dict[str, str]]:
    """Return per architecture ("VGG", "DLN") the verdict on "BN's median is smaller" for each
    landscape measure (``MEASURES``): the parts the paper's three landscape claims combine."""
    nets = _landscape_nets(with_extra_seeds(record))
    return {arch: {MEASURES[key]: claims.verdict_of(_smaller(s, key)) if all(n in s for n in PAPER_NETS)
                   else claims.NOT_RUN for key in MEASURES} for arch, s in nets.items()}


def verdicts_text(verdicts: dict[str, str]) -> str:
    """Return ``{measure: verdict}`` as a clause: "yes on all three measures", or each named."""
    if len(set(verdicts.values())) == 1:
        n = {2: "both", 3: "all three"}.get(len(verdicts), f"all {len(verdicts)}")
        return f"{next(iter(verdicts.values()))} on {n} measures"
    return ", ".join(f"{k}: {v}" for k, v in verdicts.items())


STEP_0, COMMON_LOSS = "step 0", "common loss"   # the two parts of the book's λ test, at each rate


def _beta_lrs(record: results.Record, betas: dict) -> list[float]:
    """Return the VGG's learning rates at which both networks' λ was measured (``betas``:
    :func:`beta_comparison`), the record's first rate first."""
    return [lr for lr in dict.fromkeys((record.config["lr"], record.config["large_lr"])) if ("none", lr) in betas]


def beta_parts(record: results.Record, betas: dict | None = None) -> dict[float, dict[str, claims.Decision | str]]:
    """Return the parts of the book's λ test (:func:`_beta_free_of_lr`) per learning rate of the
    VGG: ``{lr: {STEP_0: d, COMMON_LOSS: d}}``, each ``d`` the decision on "the standard network's
    λ is above BN's" (so a "no" is BN's λ decidedly larger), the common loss
    ``claims.NOT_COMPARABLE`` where a network had not learned half-way; empty when neither rate
    has both networks. ``record`` as the claims read it (:func:`with_extra_seeds`); ``betas``
    its :func:`beta_comparison` when the caller has it already."""
    betas, out = betas if betas is not None else beta_comparison(record, "vgg"), {}
    for lr in _beta_lrs(record, betas):
        n, b = betas[("none", lr)], betas[("bn", lr)]
        out[lr] = {STEP_0: claims.greater(_v(n["beta_init_seeds"]), _v(b["beta_init_seeds"])),
                   COMMON_LOSS: claims.greater(_v(n["beta_at_level_seeds"]), _v(b["beta_at_level_seeds"]))
                   if n["learned"] and b["learned"] else claims.NOT_COMPARABLE}
    return out


def _rates(lrs: list[float]) -> str:
    return f"learning rate{'s' if len(lrs) > 1 else ''} " + book.in_words([f"{lr:g}" for lr in lrs])


def beta_parts_text(record: results.Record) -> str:
    """Return, as sentences for the takeaways, which parts of the book's λ test (:func:`beta_parts`
    of the record with its extra seeds) fail, hold or sit inside the noise, and at which learning
    rates, the failing parts first with the reminder that one failing part refutes the test
    whatever the others show: e.g. "At step 0 the test fails: BN's λ was larger, beyond the seeds'
    noise, at learning rates 0.1 and 0.5, and that part alone refutes it. At the loss both reached
    the difference sits inside the seeds' noise (BN's λ smaller on average) at learning rate 0.1,
    and it is left out at learning rate 0.5 (a network had not learned half-way)"."""
    parts = beta_parts(with_extra_seeds(record))
    if not parts:
        return "The test was not run: no learning rate has both networks' λ"
    where = {STEP_0: "at step 0", COMMON_LOSS: "at the loss both reached"}
    failing = [p for p in where if any(claims.verdict_of(d[p]) == claims.NO for d in parts.values())]
    sentences = []
    for part in failing + [p for p in where if p not in failing]:
        by = {}                                           # verdict -> [(rate, decision)]
        for lr, d in parts.items():
            by.setdefault(claims.verdict_of(d[part]), []).append((lr, d[part]))
        clauses = []
        for verdict, items in by.items():
            lrs = _rates([lr for lr, _ in items])
            if verdict == claims.NO:
                clauses.append(f"the test fails: BN's λ was larger, beyond the seeds' noise, at {lrs}")
            elif verdict == claims.YES:
                clauses.append(f"BN's λ was smaller, beyond the seeds' noise, at {lrs}")
            elif verdict == claims.NOISE:
                means = [d.mean for _, d in items]   # standard − BN
                lean = (" (BN's λ smaller on average)" if all(m > 0 for m in means) else
                        " (BN's λ larger on average)" if all(m < 0 for m in means) else "")
                clauses.append(f"the difference sits inside the seeds' noise{lean} at {lrs}")
            elif verdict == claims.NOT_COMPARABLE:
                clauses.append(f"it is left out at {lrs} (a network had not learned half-way)")
            else:
                clauses.append(f"the verdict is {verdict} at {lrs}")
        sentences.append(f"{where[part][0].upper()}{where[part][1:]} " + ", and ".join(clauses))
    if failing:
        k = len(failing) - 1
        sentences[k] += (", and that part alone refutes it" if len(failing) == 1
                         else ", and either part alone refutes it")
    return ". ".join(sentences)


def _beta_free_of_lr(record: results.Record) -> dict:
    """The book's test: BN's β is smaller at step 0 (before any step) and, where both networks
    learned, at the loss both reached (:func:`beta_at_loss`), at each learning rate
    (:func:`beta_parts`); parts that are not comparable are left out (the claim is not comparable
    when every part is). Where the standard network is still on its flat start at step 0, the row
    says so (:func:`flat_start_clause`)."""
    text = "BN lowers λ where the learning rate sets it less directly (at step 0 and at a loss both reached)"
    betas = beta_comparison(record, "vgg")
    by_lr = beta_parts(record, betas)
    if not by_lr:
        return claims.missing(text, BOOK, "—", kind="book")
    parts, texts, skipped = [], [], []
    for lr, d in by_lr.items():
        n, b = betas[("none", lr)], betas[("bn", lr)]
        parts.append(d[STEP_0])
        texts.append(
            f"LR {lr:g}: at step 0 standard {book.sig(n['beta_init'])}, BN {book.sig(b['beta_init'])} "
            f"({_text(d[STEP_0])})"
        )
        if d[COMMON_LOSS] == claims.NOT_COMPARABLE:
            skipped.append(f"LR {lr:g} at the common loss (a network had not learned half-way)")
            continue
        parts.append(d[COMMON_LOSS])
        texts.append(f"LR {lr:g}: at loss {book.sig(n['loss_level'])} standard {book.sig(n['beta_at_level'])}, "
                     f"BN {book.sig(b['beta_at_level'])} ({_text(d[COMMON_LOSS])})")
    ours = "; ".join(texts) + (f". Not comparable: {'; '.join(skipped)}" if skipped else "")
    caveat = flat_start_clause(flat_start(record, next(iter(by_lr))))
    ours += f". {caveat[0].upper()}{caveat[1:]}" if caveat else ""
    return claims.row(text, BOOK, "—", ours, claims.all_of(parts),
                      spread="standard − BN per part, in the brackets", kind="book")


def _larger_lr(record: results.Record) -> dict:
    """BN at the larger rate learns (final training accuracy above chance by ``claims.LEARNED``) and ends
    higher than the standard network there (a diverged run counts as chance): an outcome."""
    text = "BN tolerates a larger learning rate (and learns at it)"
    where, theirs = f"{SOURCE}, Fig. 1 (VGG at LR 0.5)", "qualitative (figures)"
    lr = record.config["large_lr"]
    nets = _networks(record, "vgg", lr, PAPER_NETS)
    if not all(n in nets for n in PAPER_NETS):
        return claims.missing(text, where, theirs)
    bn, plain = _v(nets["bn"]["final"]), _v(nets["none"]["final"])
    learns, beats = claims.greater(bn, data.CHANCE, margin=claims.LEARNED), claims.greater(bn, plain)
    return claims.row(
        text,
        where,
        theirs,
        f"final training accuracy at LR {lr:g}: BN {np.mean(bn):.3f}, "
        f"standard {np.mean(plain):.3f} (a diverged run counts as chance)",
        claims.all_of([learns, beats]),
        spread=f"BN − chance (must pass {100 * claims.LEARNED:g} points): {learns.spread('points', 100)}; BN − standard: "
        f"{beats.spread('points', 100)}",
    )


def _lp_nets(vgg: dict, dln: dict) -> list[str]:
    """Return the ℓp networks both architectures trained (none unless both have the paper's two)."""
    if not all(n in s for s in (vgg, dln) for n in PAPER_NETS):
        return []
    return [n for n in LP_NETS if n in vgg and n in dln]


def _lp_parts(vgg: dict, dln: dict, n: str) -> dict[str, list[claims.Decision]]:
    """Return the decisions on "ℓp network ``n`` helps as BN does", by architecture: in the VGG
    it learns and ends with a higher training accuracy than the standard network; in the DLN it
    gains at least half of BN's drop in final loss (per seed: standard − ℓp − ½ max(standard −
    BN, 0) > 0)."""
    learns = claims.greater(_v(vgg[n]["final"]), data.CHANCE, margin=claims.LEARNED)
    beats = claims.greater(_v(vgg[n]["final"]), _v(vgg["none"]["final"]))
    none, bn, lp = dln["none"]["final"], dln["bn"]["final"], dln[n]["final"]
    seeds = sorted(set(none) & set(bn) & set(lp))
    half = claims.paired([none[s] - lp[s] - 0.5 * max(none[s] - bn[s], 0.0) for s in seeds])
    return {"VGG": [learns, beats], "DLN": [half]}


def lp_verdicts(record: results.Record) -> dict[str, str]:
    """Return per architecture ("VGG", "DLN") the verdict on "the ℓp normalisations help as BN
    does" there (every ℓp network's parts, ``claims.all_of``): the two halves the ℓp claim needs."""
    nets = _landscape_nets(with_extra_seeds(record))
    vgg, dln, lp = nets["VGG"], nets["DLN"], _lp_nets(nets["VGG"], nets["DLN"])
    if not lp:
        return {"VGG": claims.NOT_RUN, "DLN": claims.NOT_RUN}
    return {arch: claims.all_of([d for n in lp for d in _lp_parts(vgg, dln, n)[arch]]) for arch in ("VGG", "DLN")}


def _lp_help(vgg: dict, dln: dict) -> dict:
    """ℓp normalisations help as BN does, in the VGG and in the DLN (:func:`_lp_parts`)."""
    text = ("ℓp normalisations help as BN does, without fixing each unit's variance (VGG: a higher training "
            "accuracy than the standard network's; DLN: at least half of BN's drop in final loss)")
    where, theirs = f"{SOURCE}, Figs. 5, 12, 13", "qualitative (figures)"
    nets = _lp_nets(vgg, dln)
    if not nets:
        return claims.missing(text, where, theirs)
    parts, spreads = [], []
    for n in nets:
        by_arch = _lp_parts(vgg, dln, n)
        parts += by_arch["VGG"] + by_arch["DLN"]
        beats, half = by_arch["VGG"][1], by_arch["DLN"][0]
        spreads.append(
            f"{santurkar.LABELS[n]}: VGG {beats.spread('points', 100)}; DLN {santurkar.spread(half)}"
        )
    vgg_text = ", ".join(f"{santurkar.LABELS[n]} {_m(vgg[n]['final']):.3f}" for n in nets)
    dln_text = ", ".join(f"{santurkar.LABELS[n]} {book.sig(_m(dln[n]['final']))}" for n in nets)
    ours = (
        f"VGG final training accuracy: standard {_m(vgg['none']['final']):.3f}, BN {_m(vgg['bn']['final']):.3f}; "
        f"{vgg_text}. DLN final loss: standard {book.sig(_m(dln['none']['final']))}, BN {book.sig(_m(dln['bn']['final']))}; "
        f"{dln_text}"
    )
    return claims.row(text, where, theirs, ours, claims.all_of(parts), spread="; ".join(spreads))


def claims_table(record: results.Record) -> book.Table:
    """Table of :func:`claim_rows` (``claims.table``)."""
    return claims.table(claim_rows(record))
