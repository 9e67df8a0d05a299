"""Chapter 07's experiment: its runs (four VGGs with and without BN and noise, standard and BN
VGGs and deep linear networks at other learning rates) and the hooks that measure internal
covariate shift and the layers' input distributions while they train."""

from __future__ import annotations

import numpy as np

from ...training import measure
from ...book import results
from ...nn import models
from .. import santurkar
from .config import CHAPTER, ICS_NETS, NOISE_NETS, PERCENTILES, NoiseConfig


def runs(cfg: NoiseConfig) -> list[santurkar.Run]:
    """Return the chapter's runs: four VGGs at the first LR, standard/BN at the other LRs, the DLNs."""
    out = []
    for seed in cfg.seeds:
        out += [santurkar.Run("vgg", norm, cfg.vgg_lrs[0], seed) for norm in NOISE_NETS]
        out += [santurkar.Run("vgg", norm, lr, seed) for lr in cfg.vgg_lrs[1:] for norm in ICS_NETS]
        out += [santurkar.Run("dln", norm, lr, seed) for lr in cfg.dln_lrs for norm in ICS_NETS]
    return out


def extra_runs(cfg: NoiseConfig) -> list[tuple[NoiseConfig, santurkar.Run]]:
    """Return the extra seeds' runs as (config they are stored under, run): the VGGs at the
    first LR and the DLNs (the VGGs at the other LRs keep the profile's seeds)."""
    return [(c, r) for c in cfg.extra_configs() for r in runs(c)
            if r.arch == "dln" or r.lr == c.vgg_lrs[0]]


def make_hooks(cfg: NoiseConfig, ctx: santurkar.Context) -> dict:
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
    return {step: todo for step in santurkar.measure_steps(ctx.steps, every)}


def run(cfg: NoiseConfig) -> results.Record:
    """Return the chapter's record (at the unmodified quick profile: the best stored one, full,
    else reference), training and storing every run that is missing, with the extra seeds' runs
    stored so far merged in (they are trained by tools/train_runs.py)."""
    return santurkar.run_chapter(CHAPTER, "noise", cfg, runs, make_hooks, extra_runs)


def with_extra_seeds(record: results.Record) -> results.Record:
    """Return a chapter record with the stored runs of its extra seeds merged in."""
    return santurkar.with_extra_seeds(record, extra_runs(NoiseConfig.from_record(record)))
