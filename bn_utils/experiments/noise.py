"""Chapter 07: is BN about internal covariate shift? (Santurkar et al. 2018, Sec. 2)

Two experiments. (1) "Noisy BN": four VGGs train at one learning rate (standard, BN, BN followed
by the paper's time-varying noise, and the standard network with the same noise); while they
train we record the distribution of a few layers' inputs to the ReLU on a fixed batch (training
mode, noise on). (2) Gradient-based ICS (the paper's Definition 2.1): at regular steps, how much
the gradient of layer i changes when the layers before it take their SGD step, for the VGG at two
learning rates and for the deep linear network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .. import book, measure, models, plotting, results, train
from ..norm_variants import N_MU, N_SIGMA, R_MU, R_SIGMA
from ..profiles import param
from . import santurkar as S
from .santurkar import unpack  # noqa: F401  (the chapter reads its record's runs with it)

CHAPTER = "07_santurkar_noise"
NOISE_NETS = ("none", "bn", "noisy_bn", "noise")
ICS_NETS = ("none", "bn")
PERCENTILES = (5, 15, 50, 85, 95)
# Santurkar et al. (2018), Appendix A (as this chapter cited it before; not re-checked against
# the paper in this revision): test accuracy of their VGG after 15k steps, with and without BN
PAPER = {"test_accuracy_bn": 0.83, "test_accuracy_standard": 0.80}


@dataclass(frozen=True)
class NoiseConfig(S.SanturkarConfig):
    """Chapter 7's experiments (defaults: the paper's protocol, the ``full`` profile)."""

    vgg_lrs: tuple = param((0.1, 0.01), "VGG learning rates: the noise comparison uses the first, "
                                        "the ICS figure all (standard and BN)", item_min=1e-6)
    dln_lrs: tuple = param((1e-6, 1e-7), "DLN learning rates (ICS figure)", item_min=1e-12)
    ics_layers: tuple = param((5, 10), "VGG layers whose ICS is measured (1 = first conv)", item_min=1)
    dln_ics_layers: tuple = param((9, 17), "DLN layers whose ICS is measured", item_min=1)
    watch_layers: tuple = param((2, 9, 13), "VGG conv layers whose input distribution we plot", item_min=1)
    noise_n_mu: float = param(N_MU, "noise: per-step unit mean mu ~ U(-n_mu, n_mu)", min=0.0)
    noise_n_sigma: float = param(N_SIGMA, "noise: per-step unit scale sigma ~ U(1, n_sigma)", min=1.0)
    noise_r_mu: float = param(R_MU, "noise: per-activation shift m ~ U(mu - r_mu, mu + r_mu)", min=0.0)
    noise_r_sigma: float = param(R_SIGMA, "noise: per-activation scale s ~ N(sigma, r_sigma)", min=0.0)

    PROFILES: ClassVar[dict] = {
        "full": {},
        # reference: the paper's VGG-16 layout at a quarter of the channels on all 50,000 images,
        # one seed; each VGG run <= 30 min and the chapter <= 2 h on an idle 2-core CPU
        # (estimated from contended pilots: the chapter's notes)
        "reference": {"vgg": "vgg16", "width": 0.25, "vgg_steps": 2500, "eval_every": 250,
                      "measure_every": 100, "train_probe": 2000, "seeds": (0,)},
        # quick/smoke: a VGG-11 (8 convolutions), whose standard version leaves the flat start
        # of training within the few hundred steps a CPU can afford; the layers watched and
        # measured sit at about the same relative depths as the paper's in VGG-16
        "quick": {"vgg": "vgg11", "width": 0.125, "vgg_steps": 200, "n_train": 8192, "n_test": 1000,
                  "train_probe": 1000, "eval_every": 40, "measure_every": 20, "dln_steps": 1000,
                  "dln_measure_every": 40, "seeds": (0,), "ics_layers": (3, 6),
                  "watch_layers": (2, 6, 8)},
        "smoke": {"vgg": "vgg11", "width": 0.03125, "batch_size": 32, "vgg_steps": 8, "n_train": 256,
                  "n_test": 100, "train_probe": 100, "eval_every": 4, "measure_every": 4,
                  "dln_steps": 20, "dln_measure_every": 10, "seeds": (0,), "ics_layers": (3, 6),
                  "watch_layers": (2, 6, 8)},
    }

    def validate(self) -> None:
        """Check that the watched layers exist in the networks."""
        super().validate()
        n_conv = sum(1 for e in models.VGG_CONFIGS[self.vgg] if e != "M")
        for name, layers, top in (("ics_layers", self.ics_layers, n_conv + 1),
                                  ("watch_layers", self.watch_layers, n_conv),
                                  ("dln_ics_layers", self.dln_ics_layers, self.dln_depth)):
            if max(layers) > top:
                raise ValueError(f"parameter {name}={layers} must be <= {top} for this network")

    def norm_kwargs(self, norm: str) -> dict:
        """Return the noise constants for the noisy layers."""
        if norm in ("noisy_bn", "noise"):
            return {"n_mu": self.noise_n_mu, "n_sigma": self.noise_n_sigma,
                    "r_mu": self.noise_r_mu, "r_sigma": self.noise_r_sigma}
        return {}


def runs(cfg: NoiseConfig) -> list[S.Run]:
    """Return the chapter's runs: four VGGs at the first LR, standard/BN at the other LRs, the DLNs."""
    out = []
    for seed in cfg.seeds:
        out += [S.Run("vgg", norm, cfg.vgg_lrs[0], seed) for norm in NOISE_NETS]
        out += [S.Run("vgg", norm, lr, seed) for lr in cfg.vgg_lrs[1:] for norm in ICS_NETS]
        out += [S.Run("dln", norm, lr, seed) for lr in cfg.dln_lrs for norm in ICS_NETS]
    return out


def make_hooks(cfg: NoiseConfig, ctx: S.Context) -> dict:
    """Return the measurement hooks of one run: the ICS of the chosen layers at every measured
    step, and (VGGs at the first LR) the activation statistics of the watched layers."""
    vgg = ctx.run.arch == "vgg"
    layers = cfg.ics_layers if vgg else cfg.dln_ics_layers
    every = cfg.measure_every if vgg else cfg.dln_measure_every
    weights = [models.weight_layers(ctx.model)[k - 1].weight for k in layers]

    def ics(step, model, x, y):
        rows = measure.gradient_ics(model, lambda m: ctx.loss_fn(m(x), y), weights, ctx.run.lr,
                                    seed=step)
        out = {}
        for k, row in zip(layers, rows):
            out[f"ics_l2_L{k}"], out[f"ics_cos_L{k}"], out[f"grad_norm_L{k}"] = \
                row["l2"], row["cos"], row["norm"]
        return out

    todo = [ics]
    if vgg and ctx.run.lr == cfg.vgg_lrs[0]:
        watched = [models.relu_inputs(ctx.model)[k - 1] for k in cfg.watch_layers]
        rng = np.random.default_rng(7)   # one random unit per watched layer, the same in all nets
        units = [int(rng.integers(getattr(models.weight_layers(ctx.model)[k - 1], "out_channels")))
                 for k in cfg.watch_layers]

        def activations(step, model, x, y):
            stats = measure.train_mode_activations(model, watched, ctx.probe_x, units=units,
                                                   q=PERCENTILES, seed=10_000 + step)
            out = {}
            for k, s in zip(cfg.watch_layers, stats):
                out[f"act_pct_L{k}"], out[f"act_mean_L{k}"], out[f"act_var_L{k}"] = \
                    s["percentiles"], s["mean"], s["var"]
            return out
        todo.append(activations)
    return {step: todo for step in S.measure_steps(ctx.steps, every)}


def run(cfg: NoiseConfig) -> results.Record:
    """Return the chapter's record (at the unmodified quick profile: the best stored one, full,
    else reference), training and storing every run that is missing."""
    with train.cpu_threads(cfg.cpu_threads):
        return results.load_or_run(CHAPTER, "noise", cfg,
                                   lambda c: S.sweep(CHAPTER, c, runs(c), make_hooks), prefer_stored=True)


def _n(runs: dict, group: str) -> int:
    return len(S.seeds_of(runs, group))


# ---------------------------------------------------------------------------------------------
# Figures and tables


ACCURACIES = {   # key in a run's record -> what it measures
    "train_batch_accuracy": "Training accuracy as trained (noise on, batches trained on)",
    "train_accuracy": "Training accuracy, evaluation mode (noise off)",
    "test_accuracy": "Test accuracy, evaluation mode",
}


def plot_training(record: results.Record):
    """Figure: accuracy of the four VGGs (standard, BN, noisy BN, standard + noise) at the first
    learning rate: as they train (noise on, on their training batches: the paper's training
    accuracy), in evaluation mode on training images (noise off), and on the test set."""
    import matplotlib.pyplot as plt

    runs, lr = S.unpack(record), record.config["vgg_lrs"][0]
    keys = [k for k in ACCURACIES if any(k in r for r in runs.values())]
    fig, axes = plt.subplots(1, len(keys), figsize=(5.2 * len(keys), 3.8), squeeze=False)
    for norm in NOISE_NETS:
        for ax, key in zip(axes[0], keys):
            S.plot_curve(ax, runs, S.group("vgg", norm, lr), key, "eval_step",
                         label=S.LABELS[norm], color=S.COLORS[norm])
    for ax, key in zip(axes[0], keys):
        plotting.label(ax, title=ACCURACIES[key], xlabel="training step", ylabel="accuracy (fraction)")
        ax.axhline(0.1, color="0.6", lw=0.8, ls=":")
    plotting.caption(fig, f"VGG on CIFAR-10, LR {lr:g}: {_arch(record)}; the first panel averages each "
                          f"network's own training batches since the previous point. Band: ± std over "
                          f"seeds. Source: {record.caption()}")
    fig.tight_layout()
    return fig


def _arch(record: results.Record) -> str:
    c = record.config
    return (f"{c['vgg']} × width {c['width']:g}, batch {c['batch_size']}, "
            f"{c['n_train']} training images")


def plot_distributions(record: results.Record, seed: int | None = None):
    """Figure: the distribution over a fixed batch (training mode, noise on) of one random unit's
    input to the ReLU, for each watched layer (rows) and network (columns), over training:
    median, 15-85th and 5-95th percentile bands."""
    import matplotlib.pyplot as plt

    runs, lr = S.unpack(record), record.config["vgg_lrs"][0]
    seed = record.config["seeds"][0] if seed is None else seed
    layers = record.config["watch_layers"]
    fig, axes = plt.subplots(len(layers), len(NOISE_NETS), figsize=(3.3 * len(NOISE_NETS), 2.5 * len(layers)),
                             squeeze=False)
    for col, norm in enumerate(NOISE_NETS):
        r = runs.get(S.group("vgg", norm, lr) + f"_s{seed}", {})
        for row, k in enumerate(layers):
            ax = axes[row, col]
            if f"act_pct_L{k}" not in r:
                ax.set_axis_off()
                continue
            steps, p = np.asarray(r["measure_step"])[: len(r[f"act_pct_L{k}"])], np.asarray(r[f"act_pct_L{k}"])
            color = S.COLORS[norm]
            ax.fill_between(steps, p[:, 0], p[:, 4], color=color, alpha=0.15, lw=0, label="5–95th pct")
            ax.fill_between(steps, p[:, 1], p[:, 3], color=color, alpha=0.35, lw=0, label="15–85th pct")
            ax.plot(steps, p[:, 2], color=color, lw=1.2, label="median")
            plotting.label(ax, title=f"{S.LABELS[norm]}, layer {k}", xlabel="training step",
                           ylabel="input to ReLU", legend=(row == 0 and col == 0))
    plotting.caption(fig, f"One random unit per layer (the same in every network), {record.config['batch_size']} "
                          f"fixed training images; each panel has its own scale. Seed {seed}. "
                          f"Source: {record.caption()}")
    fig.tight_layout()
    return fig


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


def plot_moment_changes(record: results.Record):
    """Figure (the paper's Fig. 8): per watched layer, the mean over units of |Δ mean| and
    |Δ variance| of the ReLU inputs between successive measurements."""
    import matplotlib.pyplot as plt

    runs, lr = S.unpack(record), record.config["vgg_lrs"][0]
    layers = record.config["watch_layers"]
    fig, axes = plt.subplots(2, len(layers), figsize=(4 * len(layers), 6.2), squeeze=False)
    for col, k in enumerate(layers):
        for norm in NOISE_NETS:
            members = [m for m in S.seeds_of(runs, S.group("vgg", norm, lr)) if f"act_mean_L{k}" in m]
            if not members:
                continue
            changes = [moment_changes(m, k) for m in members]
            for row, key in enumerate(("d_mean", "d_var")):
                x, ys = S.stacked(changes, key, "step")
                plotting.band(axes[row, col], x, ys, label=S.LABELS[norm], color=S.COLORS[norm])
        plotting.label(axes[0, col], title=f"Layer {k}: change of the mean", xlabel="training step",
                       ylabel="|μ(t+Δ) − μ(t)| (mean over units)", legend=col == 0)
        plotting.label(axes[1, col], title=f"Layer {k}: change of the variance", xlabel="training step",
                       ylabel="|σ²(t+Δ) − σ²(t)| (mean over units)", legend=False)
        for row in range(2):
            axes[row, col].set_yscale("log")
    every = record.config["measure_every"]
    plotting.caption(fig, f"Δ = {every} steps; inputs to the ReLU on a fixed batch in training mode. "
                          f"Source: {record.caption()}")
    fig.tight_layout()
    return fig


def shift_summary(record: results.Record) -> dict:
    """Return per network at the first LR: final training accuracy as trained (noise on, over the
    last evaluation interval's batches), in evaluation mode, and test accuracy; per watched layer, the
    median over training of the mean shift (absolute and relative to the layer's spread), each
    averaged over seeds; with the number of seeds."""
    runs, lr = S.unpack(record), record.config["vgg_lrs"][0]
    out = {}
    for norm in NOISE_NETS:
        group = S.group("vgg", norm, lr)
        members = S.seeds_of(runs, group)
        if not members:
            continue
        row = {"n": len(members), "train_batch_accuracy": S.final(runs, group, "train_batch_accuracy"),
               "train_accuracy": S.final(runs, group, "train_accuracy"),
               "test_accuracy": S.final(runs, group, "test_accuracy")}
        for k in record.config["watch_layers"]:
            ch = [moment_changes(m, k) for m in members if f"act_mean_L{k}" in m]
            for key in ("d_mean", "rel_d_mean"):
                vals = [float(np.median(c[key])) for c in ch]
                row[f"{key}_L{k}"] = (float(np.mean(vals)), float(np.std(vals)))
        out[norm] = row
    return out


def shift_table(record: results.Record) -> book.Table:
    """Table: per network, final training accuracy (as trained, noise on; and in evaluation mode),
    test accuracy, and each watched layer's typical shift
    between measurements (median over training of |Δμ|, absolute and relative to the spread)."""
    rows = []
    for norm, v in shift_summary(record).items():
        n = v["n"]
        row = {"network": S.LABELS[norm],
               "train acc. (noise on)": S.fmt_pm(*v["train_batch_accuracy"], n),
               "train acc. (eval mode)": S.fmt_pm(*v["train_accuracy"], n),
               "test acc.": S.fmt_pm(*v["test_accuracy"], n)}
        for k in record.config["watch_layers"]:
            row[f"L{k} |Δμ|"] = S.fmt_pm(*v[f"d_mean_L{k}"], n)
            row[f"L{k} |Δμ|/σ"] = S.fmt_pm(*v[f"rel_d_mean_L{k}"], n)
        rows.append(row)
    return book.Table(rows)


def plot_ics(record: results.Record, arch: str = "vgg"):
    """Figure (the paper's Fig. 3): per learning rate (columns), the training accuracy (VGG) or
    loss (DLN), then for each measured layer the ℓ2 difference and the cosine between G and G'."""
    import matplotlib.pyplot as plt

    runs = S.unpack(record)
    c = record.config
    lrs = c["vgg_lrs"] if arch == "vgg" else c["dln_lrs"]
    layers = c["ics_layers"] if arch == "vgg" else c["dln_ics_layers"]
    n_rows = 1 + 2 * len(layers)
    fig, axes = plt.subplots(n_rows, len(lrs), figsize=(5.2 * len(lrs), 2.3 * n_rows), squeeze=False,
                             sharex="col")
    for col, lr in enumerate(lrs):
        for norm in ICS_NETS:
            group, kw = S.group(arch, norm, lr), {"label": S.LABELS[norm], "color": S.COLORS[norm]}
            if arch == "vgg":
                S.plot_curve(axes[0, col], runs, group, "train_accuracy", "eval_step", **kw)
            else:
                S.plot_curve(axes[0, col], runs, group, "loss", "loss_step", **kw)
            for i, k in enumerate(layers):
                S.plot_curve(axes[1 + 2 * i, col], runs, group, f"ics_l2_L{k}", "measure_step", **kw)
                S.plot_curve(axes[2 + 2 * i, col], runs, group, f"ics_cos_L{k}", "measure_step", **kw)
        top = "training accuracy" if arch == "vgg" else "training loss (sum of squares)"
        plotting.label(axes[0, col], title=f"{arch.upper()}, LR {lr:g}", xlabel="", ylabel=top)
        if arch == "dln":
            axes[0, col].set_yscale("log")
        for i, k in enumerate(layers):
            plotting.label(axes[1 + 2 * i, col], title=f"Layer {k}: ‖G − G′‖₂", xlabel="",
                           ylabel="ℓ2 difference", legend=False)
            axes[1 + 2 * i, col].set_yscale("log")
            plotting.label(axes[2 + 2 * i, col], title=f"Layer {k}: cos(G, G′)",
                           xlabel="training step" if i == len(layers) - 1 else "",
                           ylabel="cosine", legend=False)
            axes[2 + 2 * i, col].set_ylim(-1.05, 1.05)
    what = _arch(record) if arch == "vgg" else (f"{c['dln_depth']}-layer linear network of width "
                                                f"{c['dln_width']}, full batch of {c['dln_examples']}")
    plotting.caption(fig, f"{what}; G, G′: gradient of the layer's weights before/after the earlier "
                          f"layers' SGD step. Source: {record.caption()}")
    fig.tight_layout()
    return fig


def ics_summary(record: results.Record, arch: str) -> dict:
    """Return ``{(lr, layer, norm): {"l2": median, "cos": median, "rel": median ||G-G'||/||G||}}``
    over training and seeds."""
    runs, c = S.unpack(record), record.config
    lrs = c["vgg_lrs"] if arch == "vgg" else c["dln_lrs"]
    layers = c["ics_layers"] if arch == "vgg" else c["dln_ics_layers"]
    out = {}
    for lr in lrs:
        for k in layers:
            for norm in ICS_NETS:
                members = S.seeds_of(runs, S.group(arch, norm, lr))
                if not members:
                    continue
                l2 = np.concatenate([np.asarray(m[f"ics_l2_L{k}"]) for m in members])
                cos = np.concatenate([np.asarray(m[f"ics_cos_L{k}"]) for m in members])
                norm_g = np.concatenate([np.asarray(m[f"grad_norm_L{k}"]) for m in members])
                with np.errstate(divide="ignore", invalid="ignore"):
                    rel = l2 / norm_g
                out[(lr, k, norm)] = {"l2": float(np.nanmedian(l2)), "cos": float(np.nanmedian(cos)),
                                      "rel": float(np.nanmedian(rel))}
    return out


def ics_table(record: results.Record, arch: str) -> book.Table:
    """Table: median over training (and seeds) of ‖G − G′‖, ‖G − G′‖/‖G‖ and cos(G, G′)."""
    rows = []
    for (lr, k, norm), v in ics_summary(record, arch).items():
        rows.append({"LR": f"{lr:g}", "layer": k, "network": S.LABELS[norm], "‖G−G′‖": v["l2"],
                     "‖G−G′‖/‖G‖": v["rel"], "cos(G, G′)": v["cos"]})
    return book.Table(rows, fmt={"‖G−G′‖": "{:.3g}", "‖G−G′‖/‖G‖": "{:.3g}", "cos(G, G′)": "{:.3f}"})
