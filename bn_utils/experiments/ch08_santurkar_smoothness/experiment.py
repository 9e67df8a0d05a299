"""Chapter 08's experiment: its configuration, its runs (VGG and DLN, one per normalisation and
learning rate) and the hooks that measure the loss landscape while they train."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ...training import measure
from ...book import results
from ...nn.variants import NORM_NAMES
from ...book.profiles import param
from .. import santurkar as S

CHAPTER = "08_santurkar_smoothness"
PAPER_NETS = ("none", "bn")
LP_NETS = ("l1", "l2", "linf")


@dataclass(frozen=True)
class SmoothnessConfig(S.SanturkarConfig):
    """Chapter 8's experiments (defaults: the paper's protocol, the ``full`` profile)."""

    lr: float = param(0.1, "VGG learning rate (the landscape is measured at this one)", min=1e-6,
                      max=100.0)
    large_lr: float = param(0.5, "the larger VGG learning rate (standard and BN only)", min=1e-6,
                            max=100.0)
    vgg_norms: tuple = param(("none", "bn", "l1", "l2", "linf"), "VGG normalisations",
                             choices=NORM_NAMES)
    step_range: tuple = param((0.5, 4.0), "VGG landscape: step sizes from/to, × LR", item_min=1e-6,
                              max=1000.0)
    dln_lr: float = param(1e-6, "DLN learning rate", min=1e-12, max=100.0)
    dln_norms: tuple = param(("none", "bn", "l1", "l2", "linf"), "DLN normalisations", choices=NORM_NAMES)
    dln_step_range: tuple = param((0.01, 30.0), "DLN landscape: step sizes from/to, × LR", item_min=1e-6,
                                  max=1000.0)
    n_step_sizes: int = param(8, "step sizes per landscape measurement (log-spaced)", min=2,
                              max=1000)
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
    # reference: seeds 1 and 2 of every network (the VGGs need a spread for every claim; the
    # DLNs are cheap), each run stored as its own record (santurkar.SanturkarConfig.extra_configs;
    # tools/train_runs.py trains them)
    EXTRA_SEEDS: ClassVar[dict] = {"reference": (1, 2)}

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


def extra_runs(cfg: SmoothnessConfig) -> list[tuple[SmoothnessConfig, S.Run]]:
    """Return the extra seeds' runs as (config they are stored under, run): every network."""
    return [(c, r) for c in cfg.extra_configs() for r in runs(c)]


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
    else reference), training and storing every run that is missing, with the extra seeds' runs
    stored so far merged in (they are trained by tools/train_runs.py)."""
    return S.run_chapter(CHAPTER, "smoothness", cfg, runs, make_hooks, extra_runs)


def with_extra_seeds(record: results.Record) -> results.Record:
    """Return a chapter record with the stored runs of its extra seeds merged in."""
    return S.with_extra_seeds(record, extra_runs(SmoothnessConfig.from_record(record)))


def record_lr(record: results.Record, arch: str) -> float:
    """Return the learning rate at which a record measured the landscape of ``arch``."""
    return record.config["lr"] if arch == "vgg" else record.config["dln_lr"]


def record_norms(record: results.Record, arch: str) -> tuple:
    """Return the normalisations a record trained ``arch`` with."""
    return tuple(record.config["vgg_norms"] if arch == "vgg" else record.config["dln_norms"])

