"""Chapter 08's experiment: its runs (VGG and DLN, one per normalisation and learning rate) and the
hooks that measure the loss landscape while they train."""

from __future__ import annotations

from ...training import measure
from ...book import results
from .. import santurkar
from .config import CHAPTER, PAPER_NETS, SmoothnessConfig


def runs(cfg: SmoothnessConfig) -> list[santurkar.Run]:
    """Return the chapter's runs: every VGG norm at ``lr``, standard and BN at ``large_lr``, every
    DLN norm at ``dln_lr``."""
    out = []
    for seed in cfg.seeds:
        out += [santurkar.Run("vgg", norm, cfg.lr, seed) for norm in cfg.vgg_norms]
        out += [
            santurkar.Run("vgg", norm, cfg.large_lr, seed)
            for norm in PAPER_NETS
            if cfg.large_lr != cfg.lr
        ]
        out += [santurkar.Run("dln", norm, cfg.dln_lr, seed) for norm in cfg.dln_norms]
    return out


def extra_runs(cfg: SmoothnessConfig) -> list[tuple[SmoothnessConfig, santurkar.Run]]:
    """Return the extra seeds' runs as (config they are stored under, run): every network."""
    return [(c, r) for c in cfg.extra_configs() for r in runs(c)]


def make_hooks(cfg: SmoothnessConfig, ctx: santurkar.Context) -> dict:
    """Return the landscape hooks of one run, step sizes relative to the run's own learning rate
    (the large-LR runs are measured too: β across learning rates is what can tell a smoother
    landscape from one whose curvature the learning rate sets)."""
    vgg = ctx.run.arch == "vgg"
    steps = cfg.step_sizes(ctx.run.arch, ctx.run.lr)

    def landscape(step, model, x, y):
        out = measure.gradient_landscape(model, lambda m: ctx.loss_fn(m(x), y), steps, seed=step)
        return {"ls_loss": out["loss"], "ls_grad_norm": out["grad_norm"], "ls_losses": out["losses"],
                "ls_grad_diffs": out["grad_diffs"], "ls_beta": out["smoothness"]}
    every = cfg.measure_every if vgg else cfg.dln_measure_every
    return {step: [landscape] for step in santurkar.measure_steps(ctx.steps, every)}


def run(cfg: SmoothnessConfig) -> results.Record:
    """Return the chapter's record (at the unmodified quick profile: the best stored one, full,
    else reference), training and storing every run that is missing, with the extra seeds' runs
    stored so far merged in (they are trained by tools/train_runs.py)."""
    return santurkar.run_chapter(CHAPTER, "smoothness", cfg, runs, make_hooks, extra_runs)


def with_extra_seeds(record: results.Record) -> results.Record:
    """Return a chapter record with the stored runs of its extra seeds merged in."""
    return santurkar.with_extra_seeds(record, extra_runs(SmoothnessConfig.from_record(record)))


def record_lr(record: results.Record, arch: str) -> float:
    """Return the learning rate at which a record measured the landscape of ``arch``."""
    return record.config["lr"] if arch == "vgg" else record.config["dln_lr"]


def record_norms(record: results.Record, arch: str) -> tuple:
    """Return the normalisations a record trained ``arch`` with."""
    return tuple(record.config["vgg_norms"] if arch == "vgg" else record.config["dln_norms"])
