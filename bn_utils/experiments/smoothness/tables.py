"""Chapter 08's numbers: per network the landscape measures, beta at initialisation, along
training and at a common loss, the larger learning rate, and the paper's claims beside ours."""

from __future__ import annotations

import numpy as np

from ... import book, results
from ...verdicts import claim
from .. import santurkar as S
from ..santurkar import CHANCE, LEARNED
from .experiment import LP_NETS, PAPER_NETS, record_lr, record_norms


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
               "max gradient change": v["grad_change"], "effective β": v["beta"],
               "β, worst point": v["beta_max"],
               "2/median β": 2 / v["beta"] if v["beta"] > 0 else float("nan")}
        if arch == "vgg":
            row["train acc."] = S.fmt_pm(*v["final"], v["n"])
            row["test acc."] = S.fmt_pm(*v["test"], v["n"])
        else:
            row["final loss"] = S.fmt_pm(*v["final"], v["n"], digits=1)
        rows.append(row)
    return book.Table(rows, fmt="{:.3g}")


def _beta_at_loss(m: dict, level: float) -> float:
    """Return β at the first measurement where the run's loss (on that step's batch) is <= level."""
    loss, beta = np.asarray(m["ls_loss"], float), np.asarray(m["ls_beta"], float)
    hit = np.flatnonzero(np.nan_to_num(loss, nan=np.inf) <= level)
    return float(beta[hit[0]]) if len(hit) else float("nan")


def beta_comparison(record: results.Record, arch: str = "vgg") -> dict:
    """Return ``{(norm, lr): row}`` for the standard and BN networks at every measured learning
    rate: β at initialisation (step 0), the median β over training, that median times LR / 2
    (about 1: the edge of stability, where the rate sets the curvature met), and β when the run
    first reached ``loss_level`` (the lowest training loss both networks at that rate reached)."""
    runs, c = S.unpack(record), record.config
    lrs = (c["lr"], c["large_lr"]) if arch == "vgg" else (c["dln_lr"],)
    out = {}
    for lr in dict.fromkeys(lrs):
        members = {norm: [m for m in S.seeds_of(runs, S.group(arch, norm, lr)) if "ls_beta" in m]
                   for norm in PAPER_NETS}
        if not all(members.values()):
            continue
        # a level each network reaches: the higher of the two networks' lowest measured losses
        level = max(float(np.nanmin(np.concatenate([np.asarray(m["ls_loss"], float) for m in ms])))
                    for ms in members.values())
        for norm, ms in members.items():
            beta = np.concatenate([np.asarray(m["ls_beta"], float) for m in ms])
            median = float(np.nanmedian(beta)) if np.isfinite(beta).any() else float("nan")
            out[(norm, lr)] = {"n": len(ms), "beta_init": float(np.mean([m["ls_beta"][0] for m in ms])),
                               "beta": median, "beta_lr_over_2": median * lr / 2,
                               "loss_level": level,
                               "beta_at_level": float(np.nanmean([_beta_at_loss(m, level) for m in ms])),
                               "diverged": any(bool(m.get("diverged")) for m in ms)}
    return out


def beta_table(record: results.Record, arch: str = "vgg") -> book.Table:
    """Table: per network and learning rate, β at initialisation, over training (with β·LR/2,
    the edge-of-stability ratio), and at a loss level both networks reached."""
    rows = [{"network": S.LABELS[norm], "LR": f"{lr:g}", "β at step 0": v["beta_init"],
             "median β in training": v["beta"], "β · LR / 2": v["beta_lr_over_2"],
             "at loss": v["loss_level"], "β at that loss": v["beta_at_level"],
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


def headlines(record: results.Record) -> list[dict]:
    """Return one line per claim of the paper (and the book's own test of β): the claim, where
    the paper shows it, ours from ``record`` and whether ours shows it ("yes"/"no", or "not run"
    when a network it needs is missing). A comparison of VGG and DLN must hold in both."""
    vgg, dln = smoothness_summary(record, "vgg"), smoothness_summary(record, "dln")
    big, betas = large_lr_summary(record), beta_comparison(record, "vgg")
    c, out = record.config, []

    def add(text: str, where: str, measure, available: bool) -> None:
        out.append(claim(text, f"{SOURCE}, {where}" if where else "book's test (not in the paper)",
                         "qualitative (figures)" if where else "—", measure, available))

    both = all(n in s for s in (vgg, dln) for n in PAPER_NETS)

    def smaller(key: str, what: str):
        text = "; ".join(f"{arch}: standard {s['none'][key]:.3g}, BN {s['bn'][key]:.3g}"
                         for arch, s in (("VGG", vgg), ("DLN", dln)))
        return f"median {what}: {text}", all(s["bn"][key] < s["none"][key] for s in (vgg, dln))

    def acc(norm: str, lr: float) -> float:
        mean, _, diverged = big[(norm, lr)]
        return float("nan") if diverged else mean

    def larger_lr():
        lr, a_bn, a_none = c["large_lr"], acc("bn", c["large_lr"]), acc("none", c["large_lr"])
        show = lambda a: "diverged" if not np.isfinite(a) else f"{a:.3f}"  # noqa: E731
        return (f"final training accuracy at LR {lr:g}: BN {show(a_bn)}, standard {show(a_none)}",
                np.isfinite(a_bn) and a_bn - CHANCE >= LEARNED and (not np.isfinite(a_none) or a_bn > a_none))

    pairs = [(lr, betas[("none", lr)], betas[("bn", lr)])
             for lr in dict.fromkeys((c["lr"], c["large_lr"])) if ("none", lr) in betas]

    def beta_free_of_lr():
        text = "; ".join(f"LR {lr:g}: at step 0 standard {n['beta_init']:.3g}, BN {b['beta_init']:.3g}; "
                         f"at loss {n['loss_level']:.3g} standard {n['beta_at_level']:.3g}, "
                         f"BN {b['beta_at_level']:.3g}" for lr, n, b in pairs)
        return text, all(b["beta_init"] < n["beta_init"] and b["beta_at_level"] < n["beta_at_level"]
                         for _, n, b in pairs)

    nets = [n for n in LP_NETS if n in vgg and n in dln]

    def lp_help():
        vgg_text = ", ".join(f"{S.LABELS[n]} {vgg[n]['final'][0]:.3f}" for n in nets)
        dln_text = ", ".join(f"{S.LABELS[n]} {dln[n]['final'][0]:.1f}" for n in nets)
        none_loss, bn_loss = dln["none"]["final"][0], dln["bn"]["final"][0]
        half_of_bns_drop = none_loss - 0.5 * max(none_loss - bn_loss, 0.0)
        return (f"VGG final training accuracy: standard {vgg['none']['final'][0]:.3f}, "
                f"BN {vgg['bn']['final'][0]:.3f}; {vgg_text}. DLN final loss: standard "
                f"{none_loss:.1f}, BN {bn_loss:.1f}; {dln_text}",
                all(vgg[n]["final"][0] > vgg["none"]["final"][0] and vgg[n]["final"][0] - CHANCE >= LEARNED
                    and dln[n]["final"][0] <= half_of_bns_drop for n in nets))

    add("with BN the loss changes less along the gradient (a smaller Lipschitz constant)",
        "Fig. 4(a) VGG, Fig. 10(a) DLN", lambda: smaller("loss_range", "loss range along g"), both)
    add("with BN the gradient is more predictive", "Figs. 4(b), 10(b), 11",
        lambda: smaller("grad_change", "largest gradient change"), both)
    add("BN lowers the effective β-smoothness (measured along training at one LR)", "Figs. 4(c), 10(c)",
        lambda: smaller("beta", "β"), both)
    add("BN lowers β where the learning rate cannot set it (at step 0 and at a loss both reached)",
        "", beta_free_of_lr, bool(pairs))
    add("BN tolerates a larger learning rate (and learns at it)", "Fig. 1 (VGG at LR 0.5)", larger_lr,
        all((n, c["large_lr"]) in big for n in PAPER_NETS))
    add("ℓp normalisations help as BN does, without controlling the moments (VGG: a higher training "
        "accuracy than the standard network's; DLN: at least half of BN's drop in final loss)",
        "Figs. 5, 12, 13", lp_help, bool(nets) and all("none" in s and "bn" in s for s in (vgg, dln)))
    return out


def claims_table(record: results.Record) -> book.Table:
    """Table: each claim of the paper, where the paper shows it, our measurement and whether it
    shows the claim (:func:`headlines`)."""
    return book.Table(headlines(record), fmt="{}")


EDGE_FACTOR = 2.0   # "at the edge of stability": β·LR/2 within this factor of 1


def edge_reading(summary: dict, lr: float) -> str:
    """Return, as a clause, where the median β along training (``smoothness_summary``) of the
    standard and BN networks sits against the edge of stability, β·LR/2 = 1, where gradient
    descent at a fixed learning rate tends to settle whatever the landscape. The measurement's
    step sizes scale with the learning rate too, so a β near 2/LR does not tell the two apart."""
    share = {norm: summary[norm]["beta"] * lr / 2 for norm in PAPER_NETS}
    at = {norm: 1 / EDGE_FACTOR <= v <= EDGE_FACTOR for norm, v in share.items()}
    values = f"β·LR/2 = {share['none']:.2f} without BN and {share['bn']:.2f} with it"
    if all(at.values()):
        return (f"{values}, both within a factor of two of 1, as the edge of stability would predict "
                f"whatever the landscape; the step sizes measured also scale with the learning rate, so "
                f"this record cannot tell the two apart")
    if not any(at.values()):
        return f"{values}: neither within a factor of two of 1"
    near, far = ("BN's", "the standard network's") if at["bn"] else ("the standard network's", "BN's")
    return f"{values}: {near} within a factor of two of 1, {far} not"
