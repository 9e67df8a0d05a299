"""Chapter 08's numbers: per network the landscape measures, beta (the smoothness constant,
written λ in the book's text and tables; β is BN's shift there) at initialisation, along
training and at a common loss, the larger learning rate, and the numbers the page quotes."""

from __future__ import annotations

import warnings

import numpy as np

from ... import book
from ... import data
from ...book import claims, results
from .. import santurkar
from .config import LP_NETS, PAPER_NETS
from .experiment import record_lr, record_norms

# β "at the common loss" is the median over this many measurements around the first at which
# the run's loss (itself a running median over as many, of each step's batch loss) reached the
# level: one measurement can be a spike (143.7 at one step against a median of 19)
WINDOW = 5


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


def landscape_median(m: dict, key: str) -> float:
    """Return one run's median over training of a landscape measure (``MEASURES``)."""
    v = landscape_series(m, key)
    with np.errstate(invalid="ignore"):
        return float(np.nanmedian(v)) if np.isfinite(v).any() else float("nan")


def smoothness_summary(record: results.Record, arch: str) -> dict:
    """Return per network: the landscape measures (loss range along the gradient, largest
    gradient change, beta), each as one median over training per seed and the mean of those over
    the seeds (the numbers the claims table decides on), beta's maximum over training and seeds;
    final accuracy or loss."""
    runs, lr = santurkar.unpack(record), record_lr(record, arch)
    out = {}
    for norm in record_norms(record, arch):
        members = [m for m in santurkar.seeds_of(runs, santurkar.group(arch, norm, lr)) if "ls_losses" in m]
        if not members:
            continue
        row = {"n": len(members)}
        row.update({key: float(np.mean([landscape_median(m, key) for m in members])) for key in MEASURES})
        with np.errstate(invalid="ignore"):
            row["beta_max"] = float(np.nanmax(np.concatenate([np.asarray(m["ls_beta"], float)
                                                              for m in members])))
        key = "train_accuracy" if arch == "vgg" else "loss"
        row["final"] = santurkar.final(runs, santurkar.group(arch, norm, lr), key)
        if arch == "vgg":
            row["test"] = santurkar.final(runs, santurkar.group(arch, norm, lr), "test_accuracy")
        out[norm] = row
    return out


RATIO_TOLERANCE = 1.1   # a standard/BN ratio within this factor of 1 reads "about 1"


def landscape_ratios(summary: dict) -> tuple[dict, str]:
    """Return the standard network's landscape measures over BN's (``smoothness_summary``), by
    measure name, and what they say as a clause: above 1 is the paper's direction (rougher
    without BN), a ratio within ``RATIO_TOLERANCE`` of 1 is about equal."""
    ratios = {MEASURES[key]: summary["none"][key] / summary["bn"][key] for key in MEASURES}
    above = sum(r > RATIO_TOLERANCE for r in ratios.values())
    below = sum(r < 1 / RATIO_TOLERANCE for r in ratios.values())
    about = len(ratios) - above - below
    if above == len(ratios):
        return ratios, "all three above 1, the paper's direction"
    if below == len(ratios):
        return ratios, "all three below 1, the opposite of the paper's"
    words = {0: "none", 1: "one", 2: "two", 3: "three"}
    parts = [f"{words[n]} {what}" for n, what in ((above, "above 1 (the paper's direction)"),
                                                  (about, f"within {RATIO_TOLERANCE - 1:.0%} of 1"),
                                                  (below, "below 1")) if n]
    return ratios, book.in_words(parts)


def smoothness_table(record: results.Record, arch: str) -> book.Table:
    """Table: per network, median over training of the landscape measures (and the largest β
    met), and the final accuracy (VGG) or loss (DLN)."""
    rows = []
    for norm, v in smoothness_summary(record, arch).items():
        row = {"network": santurkar.LABELS[norm], "loss range along g": v["loss_range"],
               "max gradient change": v["grad_change"], "effective λ": v["beta"],
               "λ, worst point": v["beta_max"],
               "2/median λ": 2 / v["beta"] if v["beta"] > 0 else float("nan")}
        if arch == "vgg":
            row["train acc."] = santurkar.fmt_pm(*v["final"], v["n"])
            row["test acc."] = santurkar.fmt_pm(*v["test"], v["n"])
        else:
            row["final loss"] = santurkar.fmt_pm(*v["final"], v["n"], significant=True)
        rows.append(row)
    return book.Table(rows, fmt=santurkar.fixed_sig)


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
    rate: β at initialisation (step 0), the median β over training (per seed, then the mean over
    the seeds), that median times η / 2 (η the learning rate; about 1: the edge of stability,
    where the rate sets the curvature met), and β at the loss
    both networks reached (:func:`beta_at_loss`; per seed the level is the higher of the two
    networks' lowest smoothed losses): means over seeds, and per seed (``*_seeds``:
    ``{seed: value}``), with whether the network learned (``santurkar.learned``)."""
    runs, c = santurkar.unpack(record), record.config
    lrs = (c["lr"], c["large_lr"]) if arch == "vgg" else (c["dln_lr"],)
    out = {}
    for lr in dict.fromkeys(lrs):
        groups = {norm: santurkar.group(arch, norm, lr) for norm in PAPER_NETS}
        members = {
            norm: [m for m in santurkar.seeds_of(runs, g) if "ls_beta" in m]
            for norm, g in groups.items()
        }
        if not all(members.values()):
            continue
        lowest = {norm: santurkar.per_seed(runs, g, lambda m: _lowest(m) if "ls_loss" in m else np.nan)
                  for norm, g in groups.items()}
        common = sorted(set.intersection(*(set(v) for v in lowest.values())))
        level = {seed: max(lowest[norm][seed] for norm in PAPER_NETS) for seed in common}
        for norm, g in groups.items():
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)   # a seed with no finite λ
                median = float(np.nanmean([landscape_median(m, "beta") for m in members[norm]]))
            init = santurkar.per_seed(
                runs,
                g,
                lambda m: float(np.asarray(m["ls_beta"], float)[0]) if "ls_beta" in m else np.nan,
            )
            named = {int(n.rsplit("_s", 1)[1]): m for n, m in runs.items() if n.rsplit("_s", 1)[0] == g}
            at = {seed: beta_at_loss(named[seed], level[seed]) for seed in common}
            out[(norm, lr)] = {"n": len(members[norm]), "beta_init": float(np.mean(list(init.values()))),
                               "beta_init_seeds": init, "beta": median, "beta_lr_over_2": median * lr / 2,
                               "loss_level": float(np.mean(list(level.values()))) if level else float("nan"),
                               "beta_at_level": float(np.nanmean(list(at.values()))) if at else float("nan"),
                               "beta_at_level_seeds": at, "learned": santurkar.learned(members[norm], arch),
                               "diverged": any(bool(m.get("diverged")) for m in members[norm])}
    return out


def beta_table(record: results.Record, arch: str = "vgg") -> book.Table:
    """Table: per network and learning rate η, β at initialisation, over training (with βη/2,
    the edge-of-stability ratio), and at a loss level both networks reached."""
    rows = [{"network": santurkar.LABELS[norm], "η": f"{lr:g}", "λ at step 0": v["beta_init"],
             "median λ in training": v["beta"], "λη/2": v["beta_lr_over_2"],
             "at loss": v["loss_level"], "λ at that loss": v["beta_at_level"],
             "learned": "yes" if v["learned"] else "no", "diverged": "yes" if v["diverged"] else "no"}
            for (norm, lr), v in beta_comparison(record, arch).items()]
    return book.Table(rows, fmt=santurkar.fixed_sig)


# at step 0 the standard VGG is still on its flat start when its gradient's norm is below this
# share of BN's (the reference record: 0.119 against 27.2)
FLAT_GRADIENT = 0.1


def flat_start(record: results.Record, lr: float) -> dict:
    """Return what the VGGs' landscape was like at step 0 (the same weights at every learning
    rate), means over the seeds: the norm of the gradient (``grad_none``, ``grad_bn``) and the
    loss range along it (``range_none``, ``range_bn``), and ``reached``, the first measured step
    at which the standard network's λ at ``lr`` (mean over the seeds) was at least BN's (NaN if
    it never was): a Glorot-initialised standard VGG starts on a nearly flat part of the
    landscape (chapter 7), where its gradient, and with it its λ, is small."""
    runs, nan = santurkar.unpack(record), float("nan")
    members = {norm: [m for m in santurkar.seeds_of(runs, santurkar.group("vgg", norm, lr))
                      if all(k in m for k in ("ls_beta", "ls_grad_norm", "ls_losses"))]
               for norm in PAPER_NETS}
    if not all(members.values()):
        return {"grad_none": nan, "grad_bn": nan, "range_none": nan, "range_bn": nan, "reached": nan}
    out = {}
    for norm, ms in members.items():
        out[f"grad_{norm}"] = float(np.mean([np.asarray(m["ls_grad_norm"], float)[0] for m in ms]))
        out[f"range_{norm}"] = float(np.mean([landscape_series(m, "loss_range")[0] for m in ms]))
    (x, none), (_, bn) = (santurkar.stacked(members[n], "ls_beta", "measure_step") for n in PAPER_NETS)
    n = min(none.shape[1], bn.shape[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # a step no seed measured stays NaN
        at = np.flatnonzero(np.nanmean(none[:, :n], 0) >= np.nanmean(bn[:, :n], 0))
    out["reached"] = float(x[at[0]]) if at.size else nan
    return out


def on_flat_start(flat: dict) -> bool:
    """Return whether, at step 0 (:func:`flat_start`), the standard VGG's gradient was below
    ``FLAT_GRADIENT`` of BN's: a λ measured there is then small with its gradient."""
    return bool(flat["grad_none"] < FLAT_GRADIENT * flat["grad_bn"])


def flat_start_clause(flat: dict) -> str:
    """Return the caveat on β at step 0 as a clause (the claims row and the takeaways say it):
    "at step 0 the standard network was still on its flat start (gradient norm 0.119 against
    BN's 27.2), so ..."; empty when it was not (:func:`on_flat_start`)."""
    if not on_flat_start(flat):
        return ""
    return (f"at step 0 the standard network was still on its flat start (gradient norm "
            f"{book.sig(flat['grad_none'])} against BN's {book.sig(flat['grad_bn'])}), so the step-0 "
            "parts may measure its vanishing gradient rather than a rougher landscape with BN")


def flat_start_note(flat: dict) -> str:
    """Return the page's sentences on the standard network's flat start at step 0
    (:func:`flat_start`): its gradient and loss range against BN's, and when its λ first reached
    BN's; empty when it was not on its flat start (:func:`on_flat_start`)."""
    if not on_flat_start(flat):
        return ""
    reached = (f"its λ first reached BN's at step {flat['reached']:,.0f}" if np.isfinite(flat["reached"])
               else "its λ stayed below BN's at every measurement")
    return ("Step 0 has a second catch. As chapter 7 explains, a Glorot-initialised VGG without BN "
            "starts on a nearly flat part of the landscape, and at step 0 the standard network is "
            f"still there: the norm of its gradient was {book.sig(flat['grad_none'])} against BN's "
            f"{book.sig(flat['grad_bn'])}, and over the whole range of step sizes its loss changed by "
            f"{book.sig(flat['range_none'])} against BN's {book.sig(flat['range_bn'])} (means over the "
            f"seeds); {reached}. BN's larger λ at step 0 may then measure the standard network's "
            "vanishing gradient on that flat start rather than a rougher landscape with BN.")


def large_lr_summary(record: results.Record) -> dict:
    """Return ``{(norm, lr): (final train accuracy mean, std, diverged in any seed)}``."""
    runs, c = santurkar.unpack(record), record.config
    out = {}
    for lr in (c["lr"], c["large_lr"]):
        for norm in PAPER_NETS:
            group = santurkar.group("vgg", norm, lr)
            members = santurkar.seeds_of(runs, group)
            if members:
                out[(norm, lr)] = (*santurkar.final(runs, group, "train_accuracy"),
                                   any(bool(m.get("diverged")) for m in members))
    return out


EDGE_FACTOR = 2.0   # "at the edge of stability": βη/2 (η the learning rate) within this factor of 1


def _at_edge(summary: dict, lr: float) -> dict:
    """Return ``{norm: (βη/2, whether it is within EDGE_FACTOR of 1)}`` for the standard and BN networks."""
    share = {norm: summary[norm]["beta"] * lr / 2 for norm in PAPER_NETS}
    return {norm: (v, 1 / EDGE_FACTOR <= v <= EDGE_FACTOR) for norm, v in share.items()}


def edge_reading(summary: dict, lr: float, why: bool = True) -> str:
    """Return, as a clause, where the median β along training (``smoothness_summary``) of the
    standard and BN networks sits against the edge of stability, βη/2 = 1 (η the learning rate),
    where gradient descent at a fixed learning rate tends to settle whatever the landscape
    (``why``: when both sit there, add that the edge predicts it; :func:`edge_readings` adds it
    once per page). The
    measurement's step sizes scale with the learning rate too, so a β near 2/η does not tell the
    two apart (the page says so once, after both networks' clauses)."""
    edge = _at_edge(summary, lr)
    share, at = {n: v for n, (v, _) in edge.items()}, {n: a for n, (_, a) in edge.items()}
    values = f"λη/2 = {share['none']:.2f} without BN and {share['bn']:.2f} with it"
    if all(at.values()):
        return (f"{values}, both within a factor of two of 1"
                + (", as the edge of stability would predict whatever the landscape" if why else ""))
    if not any(at.values()):
        return f"{values}: neither within a factor of two of 1"
    near, far = ("BN's", "the standard network's") if at["bn"] else ("the standard network's", "BN's")
    return f"{values}: {near} within a factor of two of 1, {far} not"


def edge_readings(readings: dict) -> dict:
    """Return ``{arch: edge_reading(summary, lr)}`` for ``readings`` ``{arch: (summary, lr)}`` in
    the order the page quotes them, saying why both networks sit at the edge only in the last
    clause where they do (the page then says it once)."""
    both = [arch for arch, (s, lr) in readings.items() if all(a for _, a in _at_edge(s, lr).values())]
    return {arch: edge_reading(s, lr, why=arch == both[-1] if both else True)
            for arch, (s, lr) in readings.items()}


def large_lr_note(big: dict, large_lr: float) -> str:
    """Return, as a clause, what the standard network did at the larger learning rate
    (``large_lr_summary``): diverged, did not learn, or learned (or was not run at that rate)."""
    if ("none", large_lr) not in big:
        return "was not run at that rate in this record"
    mean, _, diverged = big[("none", large_lr)]
    if diverged:
        return "diverged, so its λ there was measured only until it did"
    if not mean - data.CHANCE >= claims.LEARNED:
        return (f"did not learn (final training accuracy {mean:.3f}; chance is {data.CHANCE:g}), so λ "
                "compared at that rate is not a trained network's")
    return f"learned (final training accuracy {mean:.3f})"


def page_numbers(record: results.Record, vgg_s: dict, dln_s: dict) -> dict:
    """Return the numbers chapter 8's prose quotes, by glue name: per learning rate and network
    the β measurements (``beta_comparison``) and final accuracy, where β sits against the edge of
    stability (``edge_reading``), the BN/standard ratios at initialisation and at a common loss,
    what the standard network did at the larger rate, the VGGs at step 0 (``flat_start``, at the
    first rate: ``flat_*``), the final accuracies of the ℓp nets, and
    the sentence on the DLN's plateau levels (``loss_levels_note``)."""
    c, nan = record.config, float("nan")
    big, betas = large_lr_summary(record), beta_comparison(record, "vgg")
    out = {"dln_lr": c["dln_lr"], "dln_levels_note": loss_levels_note(record)}
    for i, lr in enumerate((c["lr"], c["large_lr"])):
        out[f"vgg_lr_{i}"] = lr
        for norm in PAPER_NETS:
            row = betas.get((norm, lr), {})
            for key in ("beta_init", "beta", "beta_lr_over_2", "beta_at_level", "loss_level"):
                out[f"b_{key}_{norm}_{i}"] = row.get(key, nan)
            out[f"final_{norm}_{i}"] = big.get((norm, lr), (nan,))[0]
    for arch, text in edge_readings({"vgg": (vgg_s, c["lr"]), "dln": (dln_s, c["dln_lr"])}).items():
        out[f"{arch}_edge"] = text
    first = lambda norm, key: betas.get((norm, c["lr"]), {}).get(key, nan)  # noqa: E731
    out["init_ratio"] = first("bn", "beta_init") / first("none", "beta_init")
    out["level_ratio"] = first("bn", "beta_at_level") / first("none", "beta_at_level")
    out["large_lr_note"] = large_lr_note(big, c["large_lr"])
    flat = flat_start(record, c["lr"])
    out.update({f"flat_{key}": v for key, v in flat.items()})
    out["flat_note"], out["flat_clause"] = flat_start_note(flat), flat_start_clause(flat)
    lp = [vgg_s[n]["final"][0] for n in LP_NETS if n in vgg_s]
    out["lp_acc_lo"], out["lp_acc_hi"] = min(lp, default=nan), max(lp, default=nan)
    out["acc_none"], out["acc_bn"] = vgg_s["none"]["final"][0], vgg_s["bn"]["final"][0]
    return out


def _dln_final_losses(record: results.Record) -> list[float]:
    """Return every DLN run's final loss (all networks and seeds; NaN for a run with none)."""
    return [santurkar.last_finite(m, "loss") for name, m in santurkar.unpack(record).items()
            if name.startswith("dln_")]


def _levels(values: list[float], tolerance: float) -> list[float]:
    """Return the levels the finite ``values`` fall on, lowest first: each value within
    ``tolerance`` (relative) of the one below it joins its group, one mean per group."""
    groups: list[list[float]] = []
    for v in sorted(v for v in values if np.isfinite(v)):
        if groups and v <= groups[-1][-1] * (1 + tolerance):
            groups[-1].append(v)
        else:
            groups.append([v])
    return [float(np.mean(g)) for g in groups]


def final_loss_levels(record: results.Record, tolerance: float = 0.01) -> list[float]:
    """Return the levels the DLN runs' final losses fall on, lowest first (:func:`_levels`). A
    deep linear network stops on a few plateaus, so different networks can end with the same
    mean loss."""
    return _levels(_dln_final_losses(record), tolerance)


def loss_levels_note(record: results.Record, tolerance: float = 0.01) -> str:
    """Return the sentence on the DLN's plateaus when its runs share final-loss levels (fewer
    levels than runs), else an empty string."""
    finals, levels = _dln_final_losses(record), final_loss_levels(record, tolerance)
    if not levels or len(levels) >= len(finals):
        return ""
    shown = ", ".join(f"{v:,.0f}" for v in levels[:-1]) + f" and {levels[-1]:,.0f}"
    return (f"In the DLN the {len(finals)} runs' final losses fall on only {len(levels)} levels "
            f"({shown}; runs within {100 * tolerance:g} % of each other count as one), the plateaus "
            "where training stops, so networks whose seeds stop on the same plateaus show the same "
            "mean final loss in the DLN table, and nearly the same spread.")
