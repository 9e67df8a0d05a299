"""The paper's headline claims about noise and internal covariate shift (Santurkar et al. 2018,
Sec. 2) and the book's own tests beside them, each decided by the book's rule
(:mod:`bn_utils.book.claims`) over the seeds the record holds.

A seed is one training run of a network (its initialisation, minibatch order and noise draws).
Two networks are independent runs, so the spreads of their seeds add (``claims.greater``); a
share that needs two networks (noisy BN's share of BN's gain) is one value per seed, from the two
networks of that seed. One seed gives "1 seed: not decided". The test set's own sampling error
is not added: every seed is scored on the same 10,000 test images (under half a point of
binomial error) or 32,000 training predictions, far below the differences decided here.

A claim about measurements over training (drift, ICS) needs every network it compares to have
learned (:func:`santurkar.learned`: half-way through training, accuracy as trained above twice
chance, or a DLN's loss at most half its initial loss); otherwise it is "not comparable". A
claim about accuracy itself is not comparable only when neither network learned: a network that
stays at chance is then the outcome, not a broken measurement.
"""

from __future__ import annotations

import numpy as np

from ... import book, data
from ...book import claims, results
from .. import santurkar
from .config import ICS_NETS
from .experiment import with_extra_seeds
from .analysis import moment_changes, noise_networks

SOURCE = "Santurkar et al. 2018"
BOOK = "book's test (not in the paper)"
# "trains nearly as well as BN": keeps at least this share of BN's training accuracy above chance
KEEP = 0.9


def _networks(record: results.Record) -> dict:
    """Return per network at the first LR: ``{"learned", "acc", "test", "d_mean", "rel"}``, each
    measurement as ``{seed: value}`` (accuracy as trained at the end, test accuracy, and the deep
    watched layer's median drift over training, absolute and relative to the layer's spread)."""
    runs, deep, out = santurkar.unpack(record), record.config["watch_layers"][-1], {}
    for norm, (group, members) in noise_networks(record, runs).items():
        def drift(m, key):
            return float(np.median(moment_changes(m, deep)[key])) if f"act_mean_L{deep}" in m else np.nan
        out[norm] = {
            "learned": santurkar.learned(members, "vgg"),
            "acc": santurkar.per_seed(
                runs, group, lambda m: santurkar.last_finite(m, "train_batch_accuracy")
            ),
            "test": santurkar.per_seed(
                runs, group, lambda m: santurkar.last_finite(m, "test_accuracy")
            ),
            "d_mean": santurkar.per_seed(runs, group, lambda m: drift(m, "d_mean")),
            "rel": santurkar.per_seed(runs, group, lambda m: drift(m, "rel_d_mean")),
        }
    return out


def _values(by_seed: dict) -> list[float]:
    return list(by_seed.values())


def _kept(nets: dict, noisy: str, clean: str) -> dict[int, float]:
    """Return ``{seed: share}``: the share of ``clean``'s final accuracy above chance (as trained:
    noise on, batch statistics) that ``noisy`` of the same seed keeps."""
    a, b = nets[noisy]["acc"], nets[clean]["acc"]
    with np.errstate(divide="ignore", invalid="ignore"):   # a clean network at chance: no gain to keep
        return {s: float(np.float64(a[s] - data.CHANCE) / (b[s] - data.CHANCE)) for s in sorted(set(a) & set(b))}


def _mean(by_seed: dict) -> float:
    return float(np.mean(_values(by_seed))) if by_seed else float("nan")


def kept_shares(record: results.Record) -> dict[str, float]:
    """Return, for each noisy network the record holds with its noise-free twin (``noisy_bn``
    with ``bn``, ``noise`` with ``none``), the share of the twin's gain over chance it kept as
    trained, the mean over the seeds: the numbers the claims table decides on."""
    nets = _networks(with_extra_seeds(record))
    return {noisy: _mean(_kept(nets, noisy, clean))
            for noisy, clean in (("noisy_bn", "bn"), ("noise", "none")) if noisy in nets and clean in nets}


def ics_cases(record: results.Record) -> list[dict]:
    """Return one row per measured (network, learning rate, layer) case of gradient ICS: its
    name, whether both networks learned (else it is not comparable), and the verdicts on "BN
    reduced ICS here" on the paper's two measures: a smaller ‖G − G′‖ (``l2``, a
    :class:`claims.Decision` on the standard network's minus BN's, per seed the median over
    training) and a larger cos(G, G′) (``cos``, BN's minus the standard network's), ``reduced``
    needing both; and, beside them, the book's relative change ‖G − G′‖/‖G‖ (``rel``, standard
    minus BN), which discounts BN's larger gradients."""
    runs, c = santurkar.unpack(record), record.config
    out = []
    for arch in ("vgg", "dln"):
        lrs = c["vgg_lrs"] if arch == "vgg" else c["dln_lrs"]
        layers = c["ics_layers"] if arch == "vgg" else c["dln_ics_layers"]
        for lr in lrs:
            groups = {norm: santurkar.group(arch, norm, lr) for norm in ICS_NETS}
            members = {norm: santurkar.seeds_of(runs, g) for norm, g in groups.items()}
            if not all(members.values()):
                continue
            comparable = all(santurkar.learned(m, arch) for m in members.values())
            for k in layers:
                def rel(m, k=k):
                    with np.errstate(divide="ignore", invalid="ignore"):
                        return np.nanmedian(np.asarray(m[f"ics_l2_L{k}"], float)
                                            / np.asarray(m[f"grad_norm_L{k}"], float))

                def l2(m, k=k):
                    return np.nanmedian(np.asarray(m[f"ics_l2_L{k}"], float))

                def cos(m, k=k):
                    return np.nanmedian(np.asarray(m[f"ics_cos_L{k}"], float))
                v = {norm: {"l2": santurkar.per_seed(runs, g, l2), "rel": santurkar.per_seed(runs, g, rel),
                            "cos": santurkar.per_seed(runs, g, cos)}
                     for norm, g in groups.items()}
                d_l2 = claims.greater(_values(v["none"]["l2"]), _values(v["bn"]["l2"]))
                d_rel = claims.greater(_values(v["none"]["rel"]), _values(v["bn"]["rel"]))
                d_cos = claims.greater(_values(v["bn"]["cos"]), _values(v["none"]["cos"]))
                out.append(
                    {
                        "case": f"{arch.upper()} LR {lr:g} layer {k}",
                        "comparable": comparable,
                        "l2": d_l2,
                        "rel": d_rel,
                        "cos": d_cos,
                        "reduced": (
                            claims.all_of([d_l2, d_cos]) if comparable else claims.NOT_COMPARABLE
                        ),
                    }
                )
    return out


def worse_text(cases: list[dict]) -> str:
    """Return where BN was decidedly worse on one of the paper's measures (``ics_cases``: the
    comparable cases whose ``reduced`` is "no"), each case named once, grouped by the measures it
    was worse on: "in 4 cases: on ‖G − G′‖ alone in A and B, on both measures in C and D" (a
    worse ‖G − G′‖ is a larger one, a worse cosine a smaller one); "in no case"."""
    worse = [c for c in cases if c["comparable"] and c["reduced"] == claims.NO]
    if not worse:
        return "in no case"
    groups: dict[str, list[str]] = {}
    for c in worse:
        on = tuple(k for k in ("l2", "cos") if c[k].verdict == claims.NO)
        what = {("l2",): "on ‖G − G′‖ alone", ("cos",): "on the cosine alone"}.get(on, "on both measures")
        groups.setdefault(what, []).append(c["case"])
    return f"in {book.how_many(len(worse), 'case')}: " + ", ".join(
        f"{what} in {book.in_words(names)}" for what, names in groups.items())


def _ics_row(record: results.Record) -> dict:
    text = ("BN does not reduce gradient-based ICS (in no comparable case is it smaller on both "
            "measures, ‖G − G′‖ and cos(G, G′))")
    where, theirs = f"{SOURCE}, Fig. 3", "qualitative (VGG and DLN, two LRs each)"
    cases = ics_cases(record)
    if not cases:
        return claims.missing(text, where, theirs)
    comparable = [r for r in cases if r["comparable"]]
    skipped = [r["case"] for r in cases if not r["comparable"]]
    label = {
        claims.YES: "reduced on both measures",
        claims.NO: "not reduced (BN decidedly worse on a measure)",
    }
    by: dict = {}
    for r in comparable:
        by.setdefault(r["reduced"], []).append(r["case"])
    ours = (
        "; ".join(
            f"{label.get(v, v)} in {len(names)}"
            + (f" ({', '.join(names)})" if v != claims.NO else "")
            for v, names in by.items()
        )
        or "no comparable case"
    )
    if comparable:
        larger = sum(r["l2"].verdict == claims.NO for r in comparable)
        ours += f"; BN's ‖G − G′‖ decidedly larger in {larger} of {len(comparable)}"
    if skipped:
        ours += f". Not comparable (a network had not learned half-way): {', '.join(skipped)}"
    verdict = (claims.all_of([claims.negated(r["reduced"]) for r in comparable]) if comparable
               else claims.NOT_COMPARABLE)
    n = min((r["l2"].n for r in comparable), default=0)
    spread = "; ".join(
        f"{r['case']}: ‖G − G′‖ {santurkar.spread(r['l2'], seeds=False)}, "
        f"cos(G, G′) {santurkar.spread(r['cos'], seeds=False)}"
        for r in comparable
    )
    spread = f"BN's gain per case ({n} seed{'' if n == 1 else 's'}; the claim needs no case with a decided gain on both): {spread}" if comparable else "—"
    return claims.row(text, where, theirs, ours, verdict, spread=spread)


def claim_rows(record: results.Record) -> list[dict]:
    """Return chapter 07's claims in :func:`bn_utils.book.claims.row`'s shape, decided over the seeds
    the record holds (with the extra seeds' runs stored so far merged in): the paper's
    (``kind`` "paper") and the book's own tests ("book"); a claim whose networks are missing is
    "not run"."""
    record = with_extra_seeds(record)
    nets, deep = _networks(record), record.config["watch_layers"][-1]
    return [_drift(nets, deep, "d_mean"), _drift(nets, deep, "rel"), _nearly(nets),
            _accuracy(nets, "noisy_bn", "none", "acc"), _noise_stops(nets), _noise_cost(nets),
            _accuracy(nets, "bn", "none", "test"), _ics_row(record)]


def _drift(nets: dict, deep: int, key: str) -> dict:
    """Noisy BN's inputs to the deep watched layer move more than the standard network's (the
    median over training of |Δμ| between measurements, absolute or relative to the layer's spread):
    a measurement over training, so both networks must have learned."""
    if key == "d_mean":
        text = ("noisy BN's layer inputs move more than the standard network's (absolute change of the "
                "units' means, the paper's measure)")
        where, theirs, kind, what = (
            f"{SOURCE}, Figs. 2 and 8",
            "qualitative (distribution plots)",
            "paper",
            "|Δμ|",
        )
    else:
        text = ("noisy BN's layer inputs move more than the standard network's relative to each layer's "
                "own spread (|Δμ|/σ)")
        where, theirs, kind, what = BOOK, "—", "book", "|Δμ|/σ"
    if not all(n in nets for n in ("noisy_bn", "none")):
        return claims.missing(text, where, theirs, kind=kind)
    a, b = nets["noisy_bn"][key], nets["none"][key]
    ours = f"layer {deep}, median {what} between measurements: {book.sig(_mean(a), zeros=True)} (noisy BN) vs {book.sig(_mean(b), zeros=True)} (standard)"
    if not (nets["noisy_bn"]["learned"] and nets["none"]["learned"]):
        return claims.row(text, where, theirs, ours + "; a network had not learned half-way",
                          claims.NOT_COMPARABLE, kind=kind)
    d = claims.greater(_values(a), _values(b))
    return claims.row(text, where, theirs, ours, d, spread=santurkar.spread(d), kind=kind)


def _nearly(nets: dict) -> dict:
    """Noisy BN keeps at least ``KEEP`` of BN's gain over chance, per seed (needs BN to have learned)."""
    text = f"noisy BN trains nearly as well as BN (keeps ≥ {100 * KEEP:.0f} % of its accuracy above chance)"
    where, theirs = f"{SOURCE}, Fig. 2", "qualitative (training curves)"
    if not all(n in nets for n in ("noisy_bn", "bn")):
        return claims.missing(text, where, theirs)
    ours = (f"training accuracy as trained {100 * _mean(nets['noisy_bn']['acc']):.1f} % vs "
            f"{100 * _mean(nets['bn']['acc']):.1f} %")
    if not nets["bn"]["learned"]:
        return claims.row(
            text,
            where,
            theirs,
            ours + " (BN did not learn: no gain to keep)",
            claims.NOT_COMPARABLE,
        )
    kept = _kept(nets, "noisy_bn", "bn")
    d = claims.greater(_values(kept), KEEP)
    return claims.row(text, where, theirs, f"{ours}: keeps {100 * _mean(kept):.1f} %", d,
                      spread=f"share kept − {100 * KEEP:.0f} %: {d.spread('points', 100)}")


def _accuracy(nets: dict, a: str, b: str, key: str) -> dict:
    """``a`` reaches a higher accuracy than ``b`` (as trained, or on the test set): an outcome,
    not comparable only when neither network learned."""
    if key == "acc":
        text, where, theirs = ("noisy BN trains better than the standard network (training accuracy as "
                               "trained, noise on)", f"{SOURCE}, Fig. 2", "qualitative (training curves)")
    else:
        text, where = "BN improves test accuracy", f"{SOURCE}, Sec. 2.2"
        theirs = "qualitative (\"significantly better in terms of accuracy\")"
    if not all(n in nets for n in (a, b)):
        return claims.missing(text, where, theirs)
    # "as trained": each network's own training batches, with its noise on where it has noise
    what = "training accuracy as trained" if key == "acc" else "test accuracy"
    ours = f"{what} {100 * _mean(nets[a][key]):.1f} % vs {100 * _mean(nets[b][key]):.1f} %"
    if key == "acc":   # beside it the network training leaves, scored without the noise
        ours += (f"; test accuracy (evaluation mode, noise off) {100 * _mean(nets[a]['test']):.1f} % vs "
                 f"{100 * _mean(nets[b]['test']):.1f} %")
    if not (nets[a]["learned"] or nets[b]["learned"]):
        return claims.row(text, where, theirs, ours + " (neither learned)", claims.NOT_COMPARABLE)
    d = claims.greater(_values(nets[a][key]), _values(nets[b][key]))
    return claims.row(text, where, theirs, ours, d, spread=d.spread("points", 100))


def _noise_stops(nets: dict) -> dict:
    """The paper's report that the same noise, added to the standard network, "prevented the
    network from training entirely": yes when the noisy standard network's accuracy as trained is
    decidedly below the learned line (chance + ``claims.LEARNED``), no when decidedly above; not
    comparable when the standard network did not learn without the noise either."""
    text = "the same noise stops a standard network from training"
    where, theirs = f"{SOURCE}, Sec. 2.1", "did not train at all"
    if "noise" not in nets:
        return claims.missing(text, where, theirs)
    line = data.CHANCE + claims.LEARNED
    ours = f"training accuracy as trained {100 * _mean(nets['noise']['acc']):.1f} % (chance {100 * data.CHANCE:.0f} %)"
    if not nets.get("none", {}).get("learned"):   # the noise can only stop a network that trains
        return claims.row(text, where, theirs, ours + " (the standard network did not learn)",
                          claims.NOT_COMPARABLE)
    d = claims.greater(_values(nets["noise"]["acc"]), line)
    return claims.row(text, where, theirs, ours, claims.negated(d),
                      spread=f"accuracy − {100 * line:.0f} %: {d.spread('points', 100)} (the claim needs it below)")


def _noise_cost(nets: dict) -> dict:
    """The book's test: the same noise costs the standard network a larger share of its gain
    over chance than it costs BN (needs both noise-free networks to have learned)."""
    text = "the same noise costs a standard network more than a BN network"
    where = BOOK
    if not all(n in nets for n in ("noise", "none", "noisy_bn", "bn")):
        return claims.missing(text, where, "—", kind="book")
    plain, bn = _kept(nets, "noise", "none"), _kept(nets, "noisy_bn", "bn")
    ours = (f"share of accuracy above chance kept: {100 * _mean(plain):.1f} % ({santurkar.LABELS['noise']}) vs "
            f"{100 * _mean(bn):.1f} % ({santurkar.LABELS['noisy_bn']})")
    if not (nets["none"]["learned"] and nets["bn"]["learned"]):
        return claims.row(text, where, "—", ours + " (a network without noise did not learn)",
                          claims.NOT_COMPARABLE, kind="book")
    d = claims.greater(_values(bn), _values(plain))
    return claims.row(text, where, "—", ours, d, spread=d.spread("points", 100), kind="book")


def claims_table(record: results.Record) -> book.Table:
    """Table of :func:`claim_rows` (``claims.table``)."""
    return claims.table(claim_rows(record))
