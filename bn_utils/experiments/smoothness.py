"""Chapter 08: BN makes the loss landscape smoother (Santurkar et al. 2018, Sec. 3).

At regular steps of training, from the current weights x, we walk along the negative gradient
with a range of step sizes (VGG: [1/2, 4] × LR, DLN: [1/100, 30] × LR) and record the loss, the
change of the gradient, and the "effective" beta-smoothness (``measure.gradient_landscape``).
The VGG trains with and without BN and with the three ℓp normalisations; standard and BN VGGs
also train (and are measured) at a larger learning rate; the deep linear network trains with every
normalisation.

Why more than the paper's comparison at one learning rate: trained at a fixed rate, gradient
descent settles where the curvature along its path is about 2 / LR (the "edge of stability",
Cohen et al. 2021), whatever the network, so the β met along training mostly reflects the rate.
:func:`beta_comparison` gives the measurements that can separate the networks: β at
initialisation (before any step), β at each learning rate beside 2 / LR, and β when both
networks have reached the same training loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .. import book, measure, plotting, results, train
from ..norm_variants import NORM_NAMES
from ..profiles import param
from . import santurkar as S

CHAPTER = "08_santurkar_smoothness"
PAPER_NETS = ("none", "bn")
LP_NETS = ("l1", "l2", "linf")


@dataclass(frozen=True)
class SmoothnessConfig(S.SanturkarConfig):
    """Chapter 8's experiments (defaults: the paper's protocol, the ``full`` profile)."""

    lr: float = param(0.1, "VGG learning rate (the landscape is measured at this one)", min=1e-6)
    large_lr: float = param(0.5, "the larger VGG learning rate (standard and BN only)", min=1e-6)
    vgg_norms: tuple = param(("none", "bn", "l1", "l2", "linf"), "VGG normalisations",
                             choices=NORM_NAMES)
    step_range: tuple = param((0.5, 4.0), "VGG landscape: step sizes from/to, × LR", item_min=1e-6)
    dln_lr: float = param(1e-6, "DLN learning rate", min=1e-12)
    dln_norms: tuple = param(("none", "bn", "l1", "l2", "linf"), "DLN normalisations", choices=NORM_NAMES)
    dln_step_range: tuple = param((0.01, 30.0), "DLN landscape: step sizes from/to, × LR", item_min=1e-6)
    n_step_sizes: int = param(8, "step sizes per landscape measurement (log-spaced)", min=2)
    lp_over: str = param("layer", "ℓp statistic: per layer (our reading of the paper) or per unit",
                         choices=("layer", "unit"))

    PROFILES: ClassVar[dict] = {
        "full": {},
        # reference: the paper's VGG-16 layout at a quarter of the channels on all 50,000 images,
        # one seed; 7 VGG runs, each <= 30 min, the chapter <= 2 h on an idle 2-core CPU
        # (estimated from contended pilots: the chapter's notes)
        "reference": {"vgg": "vgg16", "width": 0.25, "vgg_steps": 2000, "eval_every": 250,
                      "measure_every": 100, "train_probe": 2000, "n_step_sizes": 6, "seeds": (0,)},
        # quick/smoke: a VGG-11 (see chapter 7's config), so that the standard network has left
        # the flat start of training when the landscape is measured; quick keeps one ℓp network
        # (ℓ1) of the three, to stay within its 3-minute budget
        "quick": {"vgg": "vgg11", "width": 0.125, "vgg_steps": 200, "n_train": 8192, "n_test": 1000,
                  "train_probe": 500, "eval_every": 40, "measure_every": 40, "n_step_sizes": 5,
                  "vgg_norms": ("none", "bn", "l1"), "dln_steps": 600, "dln_measure_every": 100,
                  "dln_norms": ("none", "bn", "l1"), "seeds": (0,)},
        "smoke": {"vgg": "vgg11", "width": 0.03125, "batch_size": 32, "vgg_steps": 8, "n_train": 256,
                  "n_test": 100, "train_probe": 100, "eval_every": 4, "measure_every": 4,
                  "n_step_sizes": 3, "dln_steps": 20, "dln_measure_every": 10,
                  "dln_norms": ("none", "bn", "l1"), "seeds": (0,)},
    }

    def validate(self) -> None:
        """Check the step-size ranges are ranges and the paper's two networks are included."""
        super().validate()
        for name, rng in (("step_range", self.step_range), ("dln_step_range", self.dln_step_range)):
            if len(rng) != 2 or not rng[0] < rng[1]:
                raise ValueError(f"parameter {name}={rng} must be (low, high) with low < high")
        for name, norms in (("vgg_norms", self.vgg_norms), ("dln_norms", self.dln_norms)):
            if not set(PAPER_NETS) <= set(norms):
                raise ValueError(f"parameter {name}={norms} must include 'none' and 'bn'")

    def norm_kwargs(self, norm: str) -> dict:
        """Return the ℓp layers' reading (per layer or per unit)."""
        return {"over": self.lp_over} if norm in LP_NETS else {}

    def step_sizes(self, arch: str, lr: float | None = None) -> np.ndarray:
        """Return the absolute step sizes of a landscape measurement for ``arch`` (relative to
        ``lr``, default the run's main learning rate)."""
        main, (lo, hi) = (self.lr, self.step_range) if arch == "vgg" else (self.dln_lr, self.dln_step_range)
        return (lr or main) * np.geomspace(lo, hi, self.n_step_sizes)


def runs(cfg: SmoothnessConfig) -> list[S.Run]:
    """Return the chapter's runs: every VGG norm at ``lr``, standard and BN at ``large_lr``, every
    DLN norm at ``dln_lr``."""
    out = []
    for seed in cfg.seeds:
        out += [S.Run("vgg", norm, cfg.lr, seed) for norm in cfg.vgg_norms]
        out += [S.Run("vgg", norm, cfg.large_lr, seed) for norm in PAPER_NETS if cfg.large_lr != cfg.lr]
        out += [S.Run("dln", norm, cfg.dln_lr, seed) for norm in cfg.dln_norms]
    return out


def make_hooks(cfg: SmoothnessConfig, ctx: S.Context) -> dict:
    """Return the landscape hooks of one run, step sizes relative to the run's own learning rate
    (the large-LR runs are measured too: β across learning rates is what can tell a smoother
    landscape from one whose curvature the learning rate sets)."""
    vgg = ctx.run.arch == "vgg"
    steps = cfg.step_sizes(ctx.run.arch, ctx.run.lr)

    def landscape(step, model, x, y):
        out = measure.gradient_landscape(model, lambda m: ctx.loss_fn(m(x), y), steps, seed=step)
        return {"ls_loss": out["loss"], "ls_grad_norm": out["grad_norm"], "ls_losses": out["losses"],
                "ls_grad_diffs": out["grad_diffs"], "ls_beta": out["beta"]}
    every = cfg.measure_every if vgg else cfg.dln_measure_every
    return {step: [landscape] for step in S.measure_steps(ctx.steps, every)}


def run(cfg: SmoothnessConfig) -> results.Record:
    """Return the chapter's record (at the unmodified quick profile: the best stored one, full,
    else reference), training and storing every run that is missing."""
    with train.cpu_threads(cfg.cpu_threads):
        return results.load_or_run(CHAPTER, "smoothness", cfg,
                                   lambda c: S.sweep(CHAPTER, c, runs(c), make_hooks), prefer_stored=True)


def _lr(record: results.Record, arch: str) -> float:
    return record.config["lr"] if arch == "vgg" else record.config["dln_lr"]


def _norms(record: results.Record, arch: str) -> tuple:
    return tuple(record.config["vgg_norms"] if arch == "vgg" else record.config["dln_norms"])


def _what(record: results.Record, arch: str) -> str:
    c = record.config
    if arch == "vgg":
        return f"{c['vgg']} × width {c['width']:g} on {c['n_train']} CIFAR-10 images, batch {c['batch_size']}"
    return f"{c['dln_depth']}-layer linear network of width {c['dln_width']}, full batch of {c['dln_examples']}"


# ---------------------------------------------------------------------------------------------
# Figures and tables


def plot_landscape(record: results.Record, arch: str = "vgg", norms: tuple | None = None):
    """Figure (the paper's Figs. 4, 10, 12, 13): over training, (a) the range of the loss along
    the gradient direction, (b) the range of the gradient change ("gradient predictiveness"),
    (c) the effective beta-smoothness; one colour per network (range: min–max over step sizes,
    averaged over seeds)."""
    import matplotlib.pyplot as plt

    runs, lr = S.unpack(record), _lr(record, arch)
    norms = norms or PAPER_NETS
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.9))
    for norm in norms:
        members = [m for m in S.seeds_of(runs, S.group(arch, norm, lr)) if "ls_losses" in m]
        if not members:
            continue
        color, label = S.COLORS[norm], S.LABELS[norm]
        for ax, key in zip(axes[:2], ("ls_losses", "ls_grad_diffs")):
            lo = [{"v": np.nanmin(np.asarray(m[key], float), 1), "s": m["measure_step"]} for m in members]
            hi = [{"v": np.nanmax(np.asarray(m[key], float), 1), "s": m["measure_step"]} for m in members]
            x, ylo = S.stacked(lo, "v", "s")
            _, yhi = S.stacked(hi, "v", "s")
            ax.fill_between(x, np.nanmean(ylo, 0), np.nanmean(yhi, 0), color=color, alpha=0.3, lw=0)
            ax.plot(x, np.nanmean(ylo, 0), color=color, lw=0.8)
            ax.plot(x, np.nanmean(yhi, 0), color=color, lw=0.8, label=label)
        S.plot_curve(axes[2], runs, S.group(arch, norm, lr), "ls_beta", "measure_step", label=label, color=color)
    c = record.config
    lo_hi = c["step_range"] if arch == "vgg" else c["dln_step_range"]
    plotting.label(axes[0], title="(a) loss landscape: loss along the gradient", xlabel="training step",
                   ylabel="loss (min–max over step sizes)")
    plotting.label(axes[1], title="(b) gradient predictiveness", xlabel="training step",
                   ylabel="‖∇L(x − ηg) − ∇L(x)‖₂ (min–max)")
    plotting.label(axes[2], title="(c) effective β-smoothness", xlabel="training step",
                   ylabel="max_η ‖∇L(x − ηg) − g‖ / ‖ηg‖")
    for ax in axes:
        ax.set_yscale("log")
    plotting.caption(fig, f"{arch.upper()}: {_what(record, arch)}, LR {lr:g}; η from {lo_hi[0]:g} to "
                          f"{lo_hi[1]:g} × LR ({c['n_step_sizes']} sizes). Source: {record.caption()}")
    fig.tight_layout()
    return fig


def plot_step_profile(record: results.Record, arch: str = "vgg", seed: int | None = None):
    """Figure (the paper's Fig. 11): the gradient change ‖∇L(x − ηg) − ∇L(x)‖ against the step
    size η, at every measured training step (colour: early to late), without and with BN."""
    import matplotlib.pyplot as plt
    from matplotlib import cm

    runs, lr = S.unpack(record), _lr(record, arch)
    seed = record.config["seeds"][0] if seed is None else seed
    cfg = SmoothnessConfig(**record.config)
    eta = cfg.step_sizes(arch)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
    for ax, norm in zip(axes, PAPER_NETS):
        r = runs.get(S.group(arch, norm, lr) + f"_s{seed}", {})
        diffs = np.asarray(r.get("ls_grad_diffs", np.zeros((0, len(eta)))), float)
        steps = np.asarray(r.get("measure_step", []))[: len(diffs)]
        for i, (step, row) in enumerate(zip(steps, diffs)):
            ax.plot(eta, row, color=cm.viridis(i / max(1, len(diffs) - 1)), marker=".",
                    label=f"step {step}" if i in (0, len(diffs) - 1) else None)
        ax.set_xscale("log"), ax.set_yscale("log")
        plotting.label(ax, title=f"{arch.upper()}, {S.LABELS[norm]}", xlabel="step size η along the gradient",
                       ylabel="‖∇L(x − ηg) − ∇L(x)‖₂")
    plotting.caption(fig, f"{_what(record, arch)}, LR {lr:g}; seed {seed}. Source: {record.caption()}")
    fig.tight_layout()
    return fig


def plot_training(record: results.Record):
    """Figure (the paper's Fig. 5): VGG training and test accuracy and DLN training loss for
    every normalisation."""
    import matplotlib.pyplot as plt

    runs = S.unpack(record)
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.9))
    for norm in _norms(record, "vgg"):
        for ax, key in zip(axes[:2], ("train_accuracy", "test_accuracy")):
            S.plot_curve(ax, runs, S.group("vgg", norm, record.config["lr"]), key, "eval_step",
                         label=S.LABELS[norm], color=S.COLORS[norm])
    for norm in _norms(record, "dln"):
        S.plot_curve(axes[2], runs, S.group("dln", norm, record.config["dln_lr"]), "loss", "loss_step",
                     label=S.LABELS[norm], color=S.COLORS[norm])
    plotting.label(axes[0], title=f"VGG training accuracy, LR {record.config['lr']:g}",
                   xlabel="training step", ylabel="training accuracy (fraction)")
    plotting.label(axes[1], title="VGG test accuracy", xlabel="training step", ylabel="test accuracy (fraction)")
    plotting.label(axes[2], title=f"DLN training loss, LR {record.config['dln_lr']:g}",
                   xlabel="training step", ylabel="loss (sum of squares)")
    axes[2].set_yscale("log")
    plotting.caption(fig, f"VGG: {_what(record, 'vgg')}. DLN: {_what(record, 'dln')}. "
                          f"ℓp statistic per {record.config['lp_over']}. Source: {record.caption()}")
    fig.tight_layout()
    return fig


def plot_large_lr(record: results.Record):
    """Figure (the paper's Fig. 1): standard and BN VGGs at the two learning rates."""
    import matplotlib.pyplot as plt

    runs, c = S.unpack(record), record.config
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for lr, style in ((c["lr"], "-"), (c["large_lr"], "--")):
        for norm in PAPER_NETS:
            for ax, key in zip(axes, ("train_accuracy", "test_accuracy")):
                if S.plot_curve(ax, runs, S.group("vgg", norm, lr), key, "eval_step",
                                label=f"{S.LABELS[norm]}, LR {lr:g}", color=S.COLORS[norm]):
                    ax.lines[-1].set_linestyle(style)
    plotting.label(axes[0], title="VGG training accuracy", xlabel="training step", ylabel="training accuracy (fraction)")
    plotting.label(axes[1], title="VGG test accuracy", xlabel="training step", ylabel="test accuracy (fraction)")
    plotting.caption(fig, f"{_what(record, 'vgg')}. A run that diverged stops where its loss "
                          f"became infinite. Source: {record.caption()}")
    fig.tight_layout()
    return fig


def smoothness_summary(record: results.Record, arch: str) -> dict:
    """Return per network: medians over training (and seeds) of the loss range along the
    gradient (max − min), the largest gradient change, and beta (and beta's maximum over
    training); final accuracy or loss."""
    runs, lr = S.unpack(record), _lr(record, arch)
    out = {}
    for norm in _norms(record, arch):
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
