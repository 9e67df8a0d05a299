"""Chapter 08's numbers: per network the landscape measures, beta at initialisation, along
training and at a common loss, the larger learning rate, and the paper's claims beside ours."""

from __future__ import annotations

import numpy as np

from ... import book, results
from .. import santurkar as S
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
               "2/β (a safe LR)": 2 / v["beta"] if v["beta"] > 0 else float("nan")}
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


def claims_table(record: results.Record) -> book.Table:
    """Table: each claim of the paper, where the paper shows it (figure), and our measurement."""
    vgg, dln = smoothness_summary(record, "vgg"), smoothness_summary(record, "dln")
    big, betas = large_lr_summary(record), beta_comparison(record, "vgg")
    c = record.config

    def pair(summary: dict, key: str) -> str:
        return f"standard {summary['none'][key]:.3g}, BN {summary['bn'][key]:.3g}"

    def acc(norm: str, lr: float) -> str:
        mean, _, diverged = big.get((norm, lr), (float("nan"), 0.0, False))
        return "diverged" if diverged or not np.isfinite(mean) else f"{mean:.3f}"

    def beta_at(key: str) -> str:
        return "; ".join(f"LR {lr:g}: standard {betas[('none', lr)][key]:.3g}, BN {betas[('bn', lr)][key]:.3g}"
                         for lr in dict.fromkeys((c["lr"], c["large_lr"])) if ("none", lr) in betas)

    lp = ", ".join(f"{S.LABELS[n]} {vgg[n]['final'][0]:.3f} (β {vgg[n]['beta']:.3g})"
                   for n in LP_NETS if n in vgg)
    rows = [
        {"claim": "with BN the loss changes less along the gradient (a smaller Lipschitz constant)",
         "paper": "Fig. 4(a) VGG, Fig. 10(a) DLN",
         "ours": f"median loss range along g: VGG {pair(vgg, 'loss_range')}; DLN {pair(dln, 'loss_range')}"},
        {"claim": "with BN the gradient is more predictive",
         "paper": "Figs. 4(b), 10(b), 11",
         "ours": f"median largest gradient change: VGG {pair(vgg, 'grad_change')}; DLN {pair(dln, 'grad_change')}"},
        {"claim": "BN lowers the effective β-smoothness (measured along training at one LR)",
         "paper": "Figs. 4(c), 10(c)",
         "ours": f"median β: VGG {pair(vgg, 'beta')}; DLN {pair(dln, 'beta')}"},
        {"claim": "(a test the paper does not make) BN lowers β where the learning rate cannot set it",
         "paper": "—",
         "ours": f"VGG β at step 0: {beta_at('beta_init')}. At a loss both reached: {beta_at('beta_at_level')}"},
        {"claim": "BN tolerates a larger learning rate",
         "paper": "Fig. 1 (VGG at LR 0.5)",
         "ours": f"final training accuracy at LR {c['large_lr']:g}: standard "
                 f"{acc('none', c['large_lr'])}, BN {acc('bn', c['large_lr'])} "
                 f"(at LR {c['lr']:g}: {acc('none', c['lr'])}, {acc('bn', c['lr'])})"},
        {"claim": "ℓp normalisations help as BN does, without controlling the moments",
         "paper": "Figs. 5, 12, 13",
         "ours": f"VGG final training accuracy: BN {vgg['bn']['final'][0]:.3f}, "
                 f"standard {vgg['none']['final'][0]:.3f}; {lp}"},
    ]
    return book.Table(rows)
