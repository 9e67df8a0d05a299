"""Chapter 08's numbers: per network the landscape measures, beta (the smoothness constant,
written λ in the book's text and tables; β is BN's shift there) at initialisation, along
training and at a common loss, the larger learning rate, and the paper's claims beside ours,
decided by the book's rule (:mod:`bn_utils.book.claims`) over the seeds a record holds."""

from __future__ import annotations

import numpy as np

from ... import book
from ...book import claims, results
from .. import santurkar as S
from ..santurkar import CHANCE, LEARNED
from .experiment import LP_NETS, PAPER_NETS, record_lr, record_norms, with_extra_seeds

# β "at the common loss" is the median over this many measurements around the first at which
# the run's loss (itself a running median over as many, of each step's batch loss) reached the
# level: one measurement can be a spike (143.7 at one step against a median of 19)
WINDOW = 5


def smoothness_summary(record: results.Record, arch: str) -> dict:
    """Return per network: medians over training (and seeds) of the loss range along the
    gradient (max − min), the largest gradient change, and beta (and beta's maximum over
    training); final accuracy or loss."""
    runs, lr = S.unpack(record), record_lr(record, arch)
    out = {}
    for norm in record_norms(record, arch):
        members = [m for m in S.seeds_of(runs, S.group(arch, norm, lr)) if "ls_losses" in m]
        if not members:
            continue
        losses = np.concatenate([np.asarray(m["ls_losses"], float) for m in members])
        diffs = np.concatenate([np.asarray(m["ls_grad_diffs"], float) for m in members])
        beta = np.concatenate([np.asarray(m["ls_beta"], float) for m in members])
        with np.errstate(invalid="ignore"):
            row = {"n": len(members), "loss_range": float(np.nanmedian(np.ptp(losses, 1))),
                   "grad_change": float(np.nanmedian(np.nanmax(diffs, 1))),
                   "beta": float(np.nanmedian(beta)), "beta_max": float(np.nanmax(beta))}
        key = "train_accuracy" if arch == "vgg" else "loss"
        row["final"] = S.final(runs, S.group(arch, norm, lr), key)
        if arch == "vgg":
            row["test"] = S.final(runs, S.group(arch, norm, lr), "test_accuracy")
        out[norm] = row
    return out


def smoothness_table(record: results.Record, arch: str) -> book.Table:
    """Table: per network, median over training of the landscape measures (and the largest β
    met), and the final accuracy (VGG) or loss (DLN)."""
    rows = []
    for norm, v in smoothness_summary(record, arch).items():
        row = {"network": S.LABELS[norm], "loss range along g": v["loss_range"],
               "max gradient change": v["grad_change"], "effective λ": v["beta"],
               "λ, worst point": v["beta_max"],
               "2/median λ": 2 / v["beta"] if v["beta"] > 0 else float("nan")}
        if arch == "vgg":
            row["train acc."] = S.fmt_pm(*v["final"], v["n"])
            row["test acc."] = S.fmt_pm(*v["test"], v["n"])
        else:
            row["final loss"] = S.fmt_pm(*v["final"], v["n"], digits=1)
        rows.append(row)
    return book.Table(rows, fmt="{:.3g}")


def _around(i: int, n: int, window: int) -> slice:
    """Return the ``window`` positions centred on ``i`` of a series of ``n``, kept inside it."""
    lo = int(np.clip(i - window // 2, 0, max(n - window, 0)))
    return slice(lo, lo + window)


def _median(x: np.ndarray) -> float:
    return float(np.nanmedian(x)) if np.isfinite(x).any() else float("nan")


def running_median(x, window: int = WINDOW) -> np.ndarray:
    """Return, at each position of ``x``, the median of the ``window`` values centred on it (at
    the ends, the first or last ``window``)."""
    x = np.asarray(x, float)
    return np.array([_median(x[_around(i, len(x), window)]) for i in range(len(x))])


def beta_at_loss(m: dict, level: float, window: int = WINDOW) -> float:
    """Return the median β of one run over the ``window`` measurements centred on the first at
    which its loss (:func:`running_median` of each measured step's batch loss) was <= ``level``;
    NaN if it never was."""
    loss, beta = running_median(m["ls_loss"], window), np.asarray(m["ls_beta"], float)
    hit = np.flatnonzero(np.nan_to_num(loss, nan=np.inf) <= level)
    return _median(beta[_around(int(hit[0]), len(beta), window)]) if len(hit) else float("nan")


def _lowest(m: dict, window: int = WINDOW) -> float:
    loss = running_median(m["ls_loss"], window)
    return float(np.nanmin(loss)) if np.isfinite(loss).any() else float("nan")


def beta_comparison(record: results.Record, arch: str = "vgg") -> dict:
    """Return ``{(norm, lr): row}`` for the standard and BN networks at every measured learning
    rate: β at initialisation (step 0), the median β over training, that median times LR / 2
    (about 1: the edge of stability, where the rate sets the curvature met), and β at the loss
    both networks reached (:func:`beta_at_loss`; per seed the level is the higher of the two
    networks' lowest smoothed losses): means over seeds, and per seed (``*_seeds``:
    ``{seed: value}``), with whether the network learned (``santurkar.learned``)."""
    runs, c = S.unpack(record), record.config
    lrs = (c["lr"], c["large_lr"]) if arch == "vgg" else (c["dln_lr"],)
    out = {}
    for lr in dict.fromkeys(lrs):
        groups = {norm: S.group(arch, norm, lr) for norm in PAPER_NETS}
        members = {norm: [m for m in S.seeds_of(runs, g) if "ls_beta" in m] for norm, g in groups.items()}
        if not all(members.values()):
            continue
        lowest = {norm: S.per_seed(runs, g, lambda m: _lowest(m) if "ls_loss" in m else np.nan)
                  for norm, g in groups.items()}
        common = sorted(set.intersection(*(set(v) for v in lowest.values())))
        level = {seed: max(lowest[norm][seed] for norm in PAPER_NETS) for seed in common}
        for norm, g in groups.items():
            beta = np.concatenate([np.asarray(m["ls_beta"], float) for m in members[norm]])
            median = float(np.nanmedian(beta)) if np.isfinite(beta).any() else float("nan")
            init = S.per_seed(runs, g, lambda m: float(np.asarray(m["ls_beta"], float)[0]) if "ls_beta" in m else np.nan)
            named = {int(n.rsplit("_s", 1)[1]): m for n, m in runs.items() if n.rsplit("_s", 1)[0] == g}
            at = {seed: beta_at_loss(named[seed], level[seed]) for seed in common}
            out[(norm, lr)] = {"n": len(members[norm]), "beta_init": float(np.mean(list(init.values()))),
                               "beta_init_seeds": init, "beta": median, "beta_lr_over_2": median * lr / 2,
                               "loss_level": float(np.mean(list(level.values()))) if level else float("nan"),
                               "beta_at_level": float(np.nanmean(list(at.values()))) if at else float("nan"),
                               "beta_at_level_seeds": at, "learned": S.learned(members[norm], arch),
                               "diverged": any(bool(m.get("diverged")) for m in members[norm])}
    return out


def beta_table(record: results.Record, arch: str = "vgg") -> book.Table:
    """Table: per network and learning rate, β at initialisation, over training (with β·LR/2,
    the edge-of-stability ratio), and at a loss level both networks reached."""
    rows = [{"network": S.LABELS[norm], "LR": f"{lr:g}", "λ at step 0": v["beta_init"],
             "median λ in training": v["beta"], "λ · LR / 2": v["beta_lr_over_2"],
             "at loss": v["loss_level"], "λ at that loss": v["beta_at_level"],
             "diverged": "yes" if v["diverged"] else "no"}
            for (norm, lr), v in beta_comparison(record, arch).items()]
    return book.Table(rows, fmt="{:.3g}")


def large_lr_summary(record: results.Record) -> dict:
    """Return ``{(norm, lr): (final train accuracy mean, std, diverged in any seed)}``."""
    runs, c = S.unpack(record), record.config
    out = {}
    for lr in (c["lr"], c["large_lr"]):
        for norm in PAPER_NETS:
            group = S.group("vgg", norm, lr)
            members = S.seeds_of(runs, group)
            if members:
                out[(norm, lr)] = (*S.final(runs, group, "train_accuracy"),
                                   any(bool(m.get("diverged")) for m in members))
    return out


SOURCE = "Santurkar et al. 2018"
BOOK = "book's test (not in the paper)"
MEASURES = {"loss_range": "loss range along g", "grad_change": "largest gradient change", "beta": "λ"}


def landscape_series(m: dict, key: str) -> np.ndarray:
    """Return one run's landscape measure ``key`` (``MEASURES``) at each of its measurement steps:
    the loss range (max − min over the step sizes), the largest gradient change, or λ."""
    with np.errstate(invalid="ignore"):
        if key == "loss_range":
            return np.ptp(np.asarray(m["ls_losses"], float), 1)
        if key == "grad_change":
            return np.nanmax(np.asarray(m["ls_grad_diffs"], float), 1)
        return np.asarray(m["ls_beta"], float)


def _landscape(m: dict, key: str) -> float:
    """Return one run's median over training of a landscape measure (``MEASURES``)."""
    v = landscape_series(m, key)
    with np.errstate(invalid="ignore"):
        return float(np.nanmedian(v)) if np.isfinite(v).any() else float("nan")


def _networks(record: results.Record, arch: str, lr: float, norms) -> dict:
    """Return per network of ``arch`` at ``lr``: whether it learned, and per seed (``{seed:
    value}``) each landscape measure, the final training accuracy (VGG; a diverged run at
    chance) or the final loss (DLN)."""
    runs, out = S.unpack(record), {}
    for norm in norms:
        group = S.group(arch, norm, lr)
        members = S.seeds_of(runs, group)
        if not members:
            continue
        row = {"learned": S.learned(members, arch)}
        row.update({key: S.per_seed(runs, group, lambda m, key=key: _landscape(m, key) if "ls_beta" in m else np.nan)
                    for key in MEASURES})
        if arch == "vgg":
            row["final"] = S.per_seed(runs, group, lambda m: CHANCE if m.get("diverged")
                                      else S.last_finite(m, "train_accuracy"))
        else:
            row["final"] = S.per_seed(runs, group, lambda m: S.last_finite(m, "loss"))
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
    return S.spread(d) if isinstance(d, claims.Decision) else d


def headlines(record: results.Record) -> list[dict]:
    """Return chapter 08's claims in :func:`bn_utils.book.claims.row`'s shape, decided over the seeds
    the record holds (with the extra seeds' runs stored so far merged in). A seed is one training
    run of a network; the networks' seeds are independent (``claims.greater``), and a quantity of
    three networks (the ℓp claim's DLN part) is one value per seed (``claims.paired``). A claim
    about both networks must hold in the VGG and in the DLN (``claims.all_of``); a comparison of
    measurements over training needs both networks to have learned (``santurkar.learned``), else
    it is "not comparable"; β at step 0 is taken before any learning and compares at any rate."""
    record = with_extra_seeds(record)
    c = record.config
    vgg = _networks(record, "vgg", c["lr"], record_norms(record, "vgg"))
    dln = _networks(record, "dln", c["dln_lr"], record_norms(record, "dln"))
    both = all(n in s for s in (vgg, dln) for n in PAPER_NETS)
    out = []
    for key, text, where in (
            ("loss_range", "with BN the loss changes less along the gradient (a smaller Lipschitz constant)",
             "Fig. 4(a) VGG, Fig. 10(a) DLN"),
            ("grad_change", "with BN the gradient is more predictive", "Figs. 4(b), 10(b), 11"),
            ("beta", "BN lowers the effective smoothness constant λ (measured along training at one LR)", "Figs. 4(c), 10(c)")):
        where, theirs = f"{SOURCE}, {where}", "qualitative (figures)"
        if not both:
            out.append(claims.missing(text, where, theirs))
            continue
        parts = {arch: _smaller(s, key) for arch, s in (("VGG", vgg), ("DLN", dln))}
        ours = "; ".join(f"{arch}: standard {_m(s['none'][key]):.3g}, BN {_m(s['bn'][key]):.3g}"
                         for arch, s in (("VGG", vgg), ("DLN", dln)))
        out.append(claims.row(text, where, theirs, f"median {MEASURES[key]}: {ours}", claims.all_of(parts.values()),
                              spread="; ".join(f"{a}: {_text(d)}" for a, d in parts.items())))
    out.append(_beta_free_of_lr(record))
    out.append(_larger_lr(record))
    out.append(_lp_help(vgg, dln))
    return out


def _beta_free_of_lr(record: results.Record) -> dict:
    """The book's test: BN's β is smaller at step 0 (before any step) and, where both networks
    learned, at the loss both reached (:func:`beta_at_loss`), at each learning rate; parts that are
    not comparable are left out (the claim is not comparable when every part is)."""
    text = "BN lowers λ where the learning rate cannot set it (at step 0 and at a loss both reached)"
    betas = beta_comparison(record, "vgg")
    lrs = [lr for lr in dict.fromkeys((record.config["lr"], record.config["large_lr"])) if ("none", lr) in betas]
    if not lrs:
        return claims.missing(text, BOOK, "—", kind="book")
    parts, texts, skipped = [], [], []
    for lr in lrs:
        n, b = betas[("none", lr)], betas[("bn", lr)]
        d = claims.greater(_v(n["beta_init_seeds"]), _v(b["beta_init_seeds"]))
        parts.append(d)
        texts.append(f"LR {lr:g}: at step 0 standard {n['beta_init']:.3g}, BN {b['beta_init']:.3g} ({_text(d)})")
        if not (n["learned"] and b["learned"]):
            skipped.append(f"LR {lr:g} at the common loss (a network had not learned half-way)")
            continue
        d = claims.greater(_v(n["beta_at_level_seeds"]), _v(b["beta_at_level_seeds"]))
        parts.append(d)
        texts.append(f"LR {lr:g}: at loss {n['loss_level']:.3g} standard {n['beta_at_level']:.3g}, "
                     f"BN {b['beta_at_level']:.3g} ({_text(d)})")
    ours = "; ".join(texts) + (f". Not comparable: {'; '.join(skipped)}" if skipped else "")
    return claims.row(text, BOOK, "—", ours, claims.all_of(parts),
                      spread="standard − BN per part, in the brackets", kind="book")


def _larger_lr(record: results.Record) -> dict:
    """BN at the larger rate learns (final training accuracy above chance by ``LEARNED``) and ends
    higher than the standard network there (a diverged run counts as chance): an outcome."""
    text = "BN tolerates a larger learning rate (and learns at it)"
    where, theirs = f"{SOURCE}, Fig. 1 (VGG at LR 0.5)", "qualitative (figures)"
    lr = record.config["large_lr"]
    nets = _networks(record, "vgg", lr, PAPER_NETS)
    if not all(n in nets for n in PAPER_NETS):
        return claims.missing(text, where, theirs)
    bn, plain = _v(nets["bn"]["final"]), _v(nets["none"]["final"])
    learns, beats = claims.greater(bn, CHANCE, margin=LEARNED), claims.greater(bn, plain)
    return claims.row(text, where, theirs, f"final training accuracy at LR {lr:g}: BN {np.mean(bn):.3f}, "
                                           f"standard {np.mean(plain):.3f} (a diverged run counts as chance)",
                      claims.all_of([learns, beats]),
                      spread=f"BN − chance − {LEARNED:g}: {learns.spread('points', 100)}; BN − standard: "
                             f"{beats.spread('points', 100)}")


def _lp_help(vgg: dict, dln: dict) -> dict:
    """ℓp normalisations help as BN does: in the VGG every ℓp network learns and ends with a higher
    training accuracy than the standard one; in the DLN every ℓp network gains at least half of
    BN's drop in final loss (per seed: standard − ℓp − ½ max(standard − BN, 0) > 0)."""
    text = ("ℓp normalisations help as BN does, without controlling the moments (VGG: a higher training "
            "accuracy than the standard network's; DLN: at least half of BN's drop in final loss)")
    where, theirs = f"{SOURCE}, Figs. 5, 12, 13", "qualitative (figures)"
    nets = [n for n in LP_NETS if n in vgg and n in dln]
    if not nets or not all(n in s for s in (vgg, dln) for n in PAPER_NETS):
        return claims.missing(text, where, theirs)
    parts, spreads = [], []
    for n in nets:
        learns = claims.greater(_v(vgg[n]["final"]), CHANCE, margin=LEARNED)
        beats = claims.greater(_v(vgg[n]["final"]), _v(vgg["none"]["final"]))
        none, bn, lp = dln["none"]["final"], dln["bn"]["final"], dln[n]["final"]
        seeds = sorted(set(none) & set(bn) & set(lp))
        half = claims.paired([none[s] - lp[s] - 0.5 * max(none[s] - bn[s], 0.0) for s in seeds])
        parts += [learns, beats, half]
        spreads.append(f"{S.LABELS[n]}: VGG {beats.spread('points', 100)}; DLN {S.spread(half)}")
    vgg_text = ", ".join(f"{S.LABELS[n]} {_m(vgg[n]['final']):.3f}" for n in nets)
    dln_text = ", ".join(f"{S.LABELS[n]} {_m(dln[n]['final']):.1f}" for n in nets)
    ours = (f"VGG final training accuracy: standard {_m(vgg['none']['final']):.3f}, BN {_m(vgg['bn']['final']):.3f}; "
            f"{vgg_text}. DLN final loss: standard {_m(dln['none']['final']):.1f}, BN {_m(dln['bn']['final']):.1f}; "
            f"{dln_text}")
    return claims.row(text, where, theirs, ours, claims.all_of(parts), spread="; ".join(spreads))


def claims_table(record: results.Record) -> book.Table:
    """Table: each claim (the paper's, and the book's own test), its verdict, our measurement,
    its spread over the seeds, and the paper's number with where it is shown (:func:`headlines`)."""
    rows = [{"claim": r["claim"], "verdict": r["verdict"], "ours": r["ours"], "spread": r["spread"],
             "theirs (source)": f"{r['their number']} ({r['source']})"} for r in headlines(record)]
    return book.Table(rows, fmt="{}")


EDGE_FACTOR = 2.0   # "at the edge of stability": β·LR/2 within this factor of 1


def edge_reading(summary: dict, lr: float) -> str:
    """Return, as a clause, where the median β along training (``smoothness_summary``) of the
    standard and BN networks sits against the edge of stability, β·LR/2 = 1, where gradient
    descent at a fixed learning rate tends to settle whatever the landscape. The measurement's
    step sizes scale with the learning rate too, so a β near 2/LR does not tell the two apart."""
    share = {norm: summary[norm]["beta"] * lr / 2 for norm in PAPER_NETS}
    at = {norm: 1 / EDGE_FACTOR <= v <= EDGE_FACTOR for norm, v in share.items()}
    values = f"λ·LR/2 = {share['none']:.2f} without BN and {share['bn']:.2f} with it"
    if all(at.values()):
        return (f"{values}, both within a factor of two of 1, as the edge of stability would predict "
                f"whatever the landscape; the step sizes measured also scale with the learning rate, so "
                f"this record cannot tell the two apart")
    if not any(at.values()):
        return f"{values}: neither within a factor of two of 1"
    near, far = ("BN's", "the standard network's") if at["bn"] else ("the standard network's", "BN's")
    return f"{values}: {near} within a factor of two of 1, {far} not"


def large_lr_note(big: dict, large_lr: float) -> str:
    """Return, as a clause, what the standard network did at the larger learning rate
    (``large_lr_summary``): diverged, did not learn, or learned (or was not run at that rate)."""
    if ("none", large_lr) not in big:
        return "was not run at that rate in this record"
    mean, _, diverged = big[("none", large_lr)]
    if diverged:
        return "diverged, so its λ there was measured only until it did"
    if not mean - CHANCE >= LEARNED:
        return (f"did not learn (final training accuracy {mean:.3f}; chance is {CHANCE:g}), so λ "
                "compared at that rate is not a trained network's")
    return f"learned (final training accuracy {mean:.3f})"


def page_numbers(record: results.Record, vgg_s: dict, dln_s: dict) -> dict:
    """Return the numbers chapter 8's prose quotes, by glue name: per learning rate and network
    the β measurements (``beta_comparison``) and final accuracy, where β sits against the edge of
    stability (``edge_reading``), the BN/standard ratios at initialisation and at a common loss,
    what the standard network did at the larger rate, and the final accuracies of the ℓp nets."""
    c, nan = record.config, float("nan")
    big, betas = large_lr_summary(record), beta_comparison(record, "vgg")
    out = {"dln_lr": c["dln_lr"]}
    for i, lr in enumerate((c["lr"], c["large_lr"])):
        out[f"vgg_lr_{i}"] = lr
        for norm in PAPER_NETS:
            row = betas.get((norm, lr), {})
            for key in ("beta_init", "beta", "beta_lr_over_2", "beta_at_level", "loss_level"):
                out[f"b_{key}_{norm}_{i}"] = row.get(key, nan)
            out[f"final_{norm}_{i}"] = big.get((norm, lr), (nan,))[0]
    for arch, s, lr in (("vgg", vgg_s, c["lr"]), ("dln", dln_s, c["dln_lr"])):
        out[f"{arch}_edge"] = edge_reading(s, lr)
    first = lambda norm, key: betas.get((norm, c["lr"]), {}).get(key, nan)  # noqa: E731
    out["init_ratio"] = first("bn", "beta_init") / first("none", "beta_init")
    out["level_ratio"] = first("bn", "beta_at_level") / first("none", "beta_at_level")
    out["large_lr_note"] = large_lr_note(big, c["large_lr"])
    lp = [vgg_s[n]["final"][0] for n in LP_NETS if n in vgg_s]
    out["lp_acc_lo"], out["lp_acc_hi"] = min(lp, default=nan), max(lp, default=nan)
    out["acc_none"], out["acc_bn"] = vgg_s["none"]["final"][0], vgg_s["bn"]["final"][0]
    return out
