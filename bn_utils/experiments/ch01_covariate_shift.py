"""Chapter 01: watch the input distribution of one hidden layer move during training.

The same MLP trains twice on MNIST, without and with BN; every ``eval_every`` steps we record the
mean and std of one hidden layer's pre-activations (over its units and a fixed probe batch of test
images) and the 15th/50th/85th percentiles of one of its units, plus the test accuracy.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from .. import data, runtime
from ..book import claims, plotting, results
from ..training import measure, train
from ..nn import models
from ..book.profiles import BATCH_MAX, EXAMPLES_MAX, SEED_MAX, STEPS_MAX, WIDTH_MAX, Config, param

CHAPTER = "01_covariate_shift"
NETS = {"no_bn": "none", "bn": "bn"}
LABELS = {"no_bn": "without BN", "bn": "with BN"}
EXTRA_SEEDS = 2  # pairs trained from further seeds, so the claim has a spread (run_seeds)


@dataclass(frozen=True)
class ShiftConfig(Config):
    """The covariate-shift demonstration (defaults: the ``full`` profile)."""

    steps: int = param(20_000, "SGD steps per network", min=1, max=STEPS_MAX)
    batch_size: int = param(60, "examples per minibatch (as in the paper's MNIST experiment)", min=2,
                            max=BATCH_MAX)
    lr: float = param(0.5, "SGD learning rate, the same for both networks", min=1e-6, max=100.0)
    hidden: tuple = param((100, 100, 100), "hidden layer widths", item_min=1, max=WIDTH_MAX)
    activation: str = param("sigmoid", "hidden nonlinearity", choices=tuple(models.ACTIVATIONS))
    layer: int = param(3, "hidden layer whose inputs we watch (1 = first)", min=1, max=1000)
    unit: int = param(0, "unit of that layer whose percentiles we plot", min=0, max=WIDTH_MAX)
    eval_every: int = param(200, "steps between measurements", min=1, max=STEPS_MAX)
    probe_size: int = param(2000, "test images the distributions are measured on", min=10,
                            max=EXAMPLES_MAX)
    n_train: int = param(60_000, "training images used", min=100, max=60_000)
    seed: int = param(0, "random seed (initialisation and minibatch order)", min=0, max=SEED_MAX)

    PROFILES: ClassVar[dict] = {
        "full": {},
        # the paper's protocol fits the 2-core CPU: the book shows the stored full record
        "reference": {},
        "quick": {"steps": 4000, "eval_every": 100},
        "smoke": {"steps": 60, "eval_every": 20, "n_train": 1000, "probe_size": 200},
    }

    def validate(self) -> None:
        """Check that the watched layer and unit exist."""
        if self.layer > len(self.hidden):
            raise ValueError(f"parameter layer={self.layer} must be <= the number of hidden "
                             f"layers ({len(self.hidden)})")
        if self.unit >= self.hidden[self.layer - 1]:
            raise ValueError(f"parameter unit={self.unit} must be < the layer's width "
                             f"{self.hidden[self.layer - 1]}")


def train_pair(cfg: ShiftConfig) -> dict:
    """Train the network without and with BN; return each one's History (as a dict) by name."""
    device = runtime.default_device()
    x_tr, y_tr, x_te, y_te = data.tensors("mnist", device, flatten=True, n_train=cfg.n_train,
                                          seed=cfg.seed)
    probe = x_te[: cfg.probe_size]
    out = {}
    for name, norm in NETS.items():
        runtime.seed_everything(cfg.seed)
        model = models.mlp((784, *cfg.hidden, 10), activation_name=cfg.activation, norm=norm).to(device)
        watched = models.activation_inputs(model)[cfg.layer - 1]

        def eval_fn(m: torch.nn.Module, watched: int = watched) -> dict:
            stats = measure.preactivation_stats(m, watched, probe, unit=cfg.unit)
            return {**stats, "test_accuracy": train.accuracy(m, x_te, y_te)}

        hist = train.fit(model, data.batches(x_tr, y_tr, cfg.batch_size, seed=cfg.seed),
                         steps=cfg.steps, optimizer=torch.optim.SGD(model.parameters(), lr=cfg.lr),
                         eval_fn=eval_fn, eval_every=cfg.eval_every, progress=LABELS[name])
        out[name] = hist.to_dict()
    return out


def run(cfg: ShiftConfig) -> results.Record:
    """Return the stored record of ``cfg`` (the full one when the quick profile is asked for and
    a full record exists), training and storing it if needed."""
    return results.load_or_run(CHAPTER, "shift", cfg, train_pair, prefer_stored=True)


def _summarise(pair: dict) -> dict:
    """Return, per network of one training of the pair (its histories by name), how far the
    watched layer's mean and std travelled (max − min after the first measurement) and the final
    test accuracy."""
    out = {}
    for name in NETS:
        ev = pair[name]["evals"]
        mean, std = np.array(ev["mean"][1:]), np.array(ev["std"][1:])
        out[name] = {"mean_range": float(np.ptp(mean)), "std_range": float(np.ptp(std)),
                     "final_accuracy": float(ev["test_accuracy"][-1])}
    return out


def summary(record: results.Record) -> dict:
    """Return :func:`_summarise` of the record's pair (seed ``record.config["seed"]``)."""
    return _summarise({name: record[name] for name in NETS})


def _more_seeds(cfg: ShiftConfig) -> dict:
    """Train the pair from each of the ``EXTRA_SEEDS`` seeds after ``cfg.seed``; keep each one's
    summary (the figure shows the first seed's curves only)."""
    return {f"seed_{s}": _summarise(train_pair(dataclasses.replace(cfg, seed=s)))
            for s in range(cfg.seed + 1, cfg.seed + 1 + EXTRA_SEEDS)}


def run_seeds(cfg: ShiftConfig) -> results.Record:
    """Return the stored record of the pair trained from the ``EXTRA_SEEDS`` further seeds (the
    full one when the quick profile is asked for and one is stored), training it if needed: with
    :func:`run`'s seed, the seeds the claim is decided on."""
    return results.load_or_run(CHAPTER, "shift_seeds", cfg, _more_seeds, prefer_stored=True)


def seed_summaries(record: results.Record, seeds: results.Record | None) -> dict:
    """Return :func:`summary` per seed, ``{seed: summary}``: the record's seed, then those of
    ``seeds`` when it was made with the same config (a record of another protocol is left out)."""
    out = {record.config["seed"]: summary(record)}
    if seeds is not None and seeds.config == record.config:
        out.update({int(k.split("_")[1]): seeds[k] for k in seeds.metrics if k.startswith("seed_")})
    return out


def seed_means(per_seed: dict) -> dict:
    """Return, per network, each measure of :func:`seed_summaries`' ``{seed: summary}`` averaged
    over the seeds: ``{net: {measure: mean}}``."""
    return {name: {key: float(np.mean([s[name][key] for s in per_seed.values()]))
                   for key in next(iter(per_seed.values()))[name]} for name in NETS}


def plot(record: results.Record, cfg: ShiftConfig):
    """Figure: test accuracy, the layer's mean ± std, and one unit's percentiles (without and
    with BN, on one scale), over training; two panels per row."""
    fig, axes = plotting.panels(4, height=2.7)
    layer = record.config["layer"]
    for name in NETS:
        h = record[name]
        steps, ev = np.array(h["eval_step"]), h["evals"]
        color = plotting.PALETTE[name]
        axes[0].plot(steps, ev["test_accuracy"], color=color, label=LABELS[name])
        mean, std = np.array(ev["mean"]), np.array(ev["std"])
        axes[1].plot(steps, mean, color=color, label=LABELS[name])
        axes[1].fill_between(steps, mean - std, mean + std, color=color, alpha=0.15, linewidth=0)
    for ax, name in zip(axes[2:], NETS):
        ev = record[name]["evals"]
        plotting.percentile_bands(ax, record[name]["eval_step"], ev["p15"], ev["p50"], ev["p85"],
                                  color=plotting.PALETTE[name])
    plotting.label(axes[0], title="Test accuracy", xlabel="training step", ylabel="accuracy")
    plotting.label(axes[1], title=f"Layer {layer}: sigmoid inputs, mean ± std",
                   xlabel="training step", ylabel="pre-activation", legend=False)
    for ax, name in zip(axes[2:], NETS):
        plotting.label(ax, title=f"One unit, {LABELS[name]}", xlabel="training step",
                       ylabel="input to the sigmoid", legend=False)
    plotting.percentile_legend(fig)   # median and band, in grey: each panel has its colour
    lo = min(ax.get_ylim()[0] for ax in axes[2:])
    hi = max(ax.get_ylim()[1] for ax in axes[2:])
    for ax in axes[2:]:
        ax.set_ylim(lo, hi)  # one scale, so the two units' drift compares by eye
    hidden = "-".join(map(str, record.config["hidden"]))
    plotting.note(fig, f"MNIST, 784-{hidden}-10 {record.config['activation']} MLP, one seed; "
                       f"unit {record.config['unit']} of hidden layer {layer}, measured on "
                       f"{record.config['probe_size']:,} test images in eval mode.")
    return fig


def claim_rows(record: results.Record | None, seeds: results.Record | None = None) -> list[dict]:
    """Return the chapter's claim (Ioffe & Szegedy's Fig. 1(b, c)) in ``claims.row``'s shape, from
    ``record`` and the further seeds in ``seeds`` (:func:`seed_summaries`; None: not run); with
    one seed the rule says it is not decided."""
    text, source, theirs = ("a layer's input distribution drifts less with BN than without while the "
                            "layers below learn", "Ioffe & Szegedy 2015", "Fig. 1(b, c), qualitative")
    if record is None:
        return [claims.missing(text, source, theirs)]
    per_seed = seed_summaries(record, seeds)
    bn = [s["bn"]["mean_range"] for s in per_seed.values()]
    plain = [s["no_bn"]["mean_range"] for s in per_seed.values()]
    d = claims.paired(np.subtract(plain, bn))  # both networks start from each seed
    means = seed_means(per_seed)
    return [claims.row(text, source, theirs, f"range of the watched layer's mean: {means['bn']['mean_range']:.2f} "
                       f"with BN, {means['no_bn']['mean_range']:.2f} without (mean over seeds)", d,
                       d.spread(digits=2))]

