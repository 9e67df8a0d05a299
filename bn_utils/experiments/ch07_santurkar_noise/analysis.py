"""Chapter 07's numbers: how far the layers' input distributions move, the networks' final
accuracies, and gradient-based ICS, summarised over training and seeds."""

from __future__ import annotations

import numpy as np

from ... import book
from ...book import results
from .. import santurkar
from .config import ICS_NETS, NOISE_NETS

# G′ "points against" G when their cosine is below this (ics_summary's "anti" share)
ANTI_COSINE = -0.5


def moment_changes(r: dict, layer: int) -> dict:
    """Return, for one run and layer, how much the units' input distributions moved between
    successive measurements (the paper's Fig. 8): the mean over units of |Δ mean| and
    |Δ variance|, and the same relative to the layer's typical spread (divided by the mean over
    units of the standard deviation, resp. the variance, at the earlier measurement)."""
    mean, var = np.asarray(r[f"act_mean_L{layer}"]), np.asarray(r[f"act_var_L{layer}"])
    d_mean, d_var = np.abs(np.diff(mean, axis=0)).mean(1), np.abs(np.diff(var, axis=0)).mean(1)
    spread = np.sqrt(np.maximum(var[:-1], 0)).mean(1)
    return {"step": np.asarray(r["measure_step"])[1: len(mean)], "d_mean": d_mean, "d_var": d_var,
            "rel_d_mean": d_mean / np.maximum(spread, 1e-30),
            "rel_d_var": d_var / np.maximum(var[:-1].mean(1), 1e-30)}


def noise_networks(record: results.Record, runs: dict | None = None) -> dict[str, tuple[str, list[dict]]]:
    """Return ``{norm: (group, runs of its seeds)}`` for each of the four networks
    (``NOISE_NETS``) that the record holds at the first learning rate (``runs``: the record
    unpacked, when the caller has it)."""
    runs, lr = santurkar.unpack(record) if runs is None else runs, record.config["vgg_lrs"][0]
    groups = {norm: santurkar.group("vgg", norm, lr) for norm in NOISE_NETS}
    return {norm: (g, santurkar.seeds_of(runs, g)) for norm, g in groups.items() if santurkar.seeds_of(runs, g)}


def shift_summary(record: results.Record) -> dict:
    """Return per network at the first LR: final training accuracy as trained (noise on, over the
    last evaluation interval's batches), in evaluation mode, and test accuracy; per watched layer, the
    median over training of the mean shift (absolute and relative to the layer's spread) and of
    the spread itself (the units' mean standard deviation), each averaged over seeds; with the
    number of seeds."""
    runs, out = santurkar.unpack(record), {}
    for norm, (group, members) in noise_networks(record, runs).items():
        row = {
            "n": len(members),
            "train_batch_accuracy": santurkar.final(runs, group, "train_batch_accuracy"),
            "train_accuracy": santurkar.final(runs, group, "train_accuracy"),
            "test_accuracy": santurkar.final(runs, group, "test_accuracy"),
        }
        for k in record.config["watch_layers"]:
            ch = [moment_changes(m, k) for m in members if f"act_mean_L{k}" in m]
            for key in ("d_mean", "rel_d_mean"):
                vals = [float(np.median(c[key])) for c in ch]
                row[f"{key}_L{k}"] = (float(np.mean(vals)), book.seed_std(vals))
            # the layer's typical spread: mean over units of the standard deviation, median over training
            spread = [float(np.median(np.sqrt(np.maximum(np.asarray(m[f"act_var_L{k}"], float), 0)).mean(1)))
                      for m in members if f"act_var_L{k}" in m]
            row[f"spread_L{k}"] = (float(np.mean(spread)), book.seed_std(spread))
        out[norm] = row
    return out


def accuracy_table(record: results.Record) -> book.Table:
    """Table: per network, final training accuracy (as trained, noise on; and in evaluation mode)
    and test accuracy (mean ± std over seeds)."""
    rows = [{"network": santurkar.LABELS[norm],
             "training, as trained": santurkar.fmt_pm(*v["train_batch_accuracy"], v["n"]),
             "training, eval mode": santurkar.fmt_pm(*v["train_accuracy"], v["n"]),
             "test, eval mode": santurkar.fmt_pm(*v["test_accuracy"], v["n"])}
            for norm, v in shift_summary(record).items()]
    return book.Table(rows)


def shift_table(record: results.Record) -> book.Table:
    """Table: per watched layer and network, the typical shift of a unit's mean between
    measurements (median over training of |Δμ|, absolute and relative to the spread σ) and the
    spread itself, mean ± std over seeds with three significant digits."""
    summary, rows = shift_summary(record), []
    for k in record.config["watch_layers"]:
        for norm, v in summary.items():
            n = v["n"]
            rows.append(
                {
                    "layer": k,
                    "network": santurkar.LABELS[norm],
                    # 3 significant digits: BN's drift is orders of magnitude below the others'
                    "|Δμ|": santurkar.fmt_pm(*v[f"d_mean_L{k}"], n, significant=True),
                    "|Δμ| / σ": santurkar.fmt_pm(*v[f"rel_d_mean_L{k}"], n, significant=True),
                    "σ": santurkar.fmt_pm(*v[f"spread_L{k}"], n, significant=True),
                }
            )
    return book.Table(rows)



def ics_summary(record: results.Record, arch: str) -> dict:
    """Return ``{(lr, layer, norm): {"l2": median, "cos": median, "rel": median ||G-G'||/||G||,
    "anti": share of measurements with cos < ANTI_COSINE}}`` over training and seeds (a median cosine
    near 0 can be a cosine that swings between -1 and 1: the share tells them apart)."""
    runs, c = santurkar.unpack(record), record.config
    lrs = c["vgg_lrs"] if arch == "vgg" else c["dln_lrs"]
    layers = c["ics_layers"] if arch == "vgg" else c["dln_ics_layers"]
    out = {}
    for lr in lrs:
        for k in layers:
            for norm in ICS_NETS:
                members = santurkar.seeds_of(runs, santurkar.group(arch, norm, lr))
                if not members:
                    continue
                l2 = np.concatenate([np.asarray(m[f"ics_l2_L{k}"]) for m in members])
                cos = np.concatenate([np.asarray(m[f"ics_cos_L{k}"]) for m in members])
                norm_g = np.concatenate([np.asarray(m[f"grad_norm_L{k}"]) for m in members])
                with np.errstate(divide="ignore", invalid="ignore"):
                    rel = l2 / norm_g
                out[(lr, k, norm)] = {"l2": float(np.nanmedian(l2)), "cos": float(np.nanmedian(cos)),
                                      "rel": float(np.nanmedian(rel)),
                                      "anti": float(np.mean(cos[np.isfinite(cos)] < ANTI_COSINE))}
    return out


def ics_table(record: results.Record, arch: str) -> book.Table:
    """Table: median over training (and seeds) of ‖G − G′‖ and ‖G − G′‖/‖G‖ (three significant
    digits), cos(G, G′), and the share of measurements in which G′ points against G (cos < −½)."""
    rows = []
    for (lr, k, norm), v in ics_summary(record, arch).items():
        rows.append(
            {
                "η": f"{lr:g}",
                "layer": k,
                "network": santurkar.LABELS[norm],
                "‖G−G′‖": v["l2"],
                "‖G−G′‖/‖G‖": v["rel"],
                "cos(G, G′)": v["cos"],
                "share cos < −½": v["anti"],
            }
        )
    return book.Table(
        rows,
        fmt={
            "‖G−G′‖": santurkar.fixed_sig,
            "‖G−G′‖/‖G‖": santurkar.fixed_sig,
            "cos(G, G′)": "{:.3f}",
            "share cos < −½": "{:.0%}",
        },
    )
