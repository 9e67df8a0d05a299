"""Chapter 04's runs: every activation without and with BN over seeds, the initialisations
compared, and the sigmoid net with BN at batch size 1; each stored as a record."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from ... import data, runtime
from ...book import results
from ...training import train
from ...nn import norms
from ...nn.stacked_mlp import StackedMLP
from .config import CHAPTER, PERCENTILES, MnistConfig, init_label
from .nets import build_nets, stack_of
from .rate_search import lr_search
from .training import eval_schedule, train_stack

# BN that also runs on a batch of one example, which torch refuses (``norms.BatchNorm1d`` with
# ``allow_single_value``): what a framework that allows it computes.
AnyBatchNorm1d = functools.partial(norms.BatchNorm1d, allow_single_value=True)


def search(cfg: MnistConfig) -> results.Record:
    """Return the stored learning-rate search of ``cfg`` (running it if needed)."""
    return results.load_or_run(CHAPTER, "lr_search", cfg, lr_search, prefer_stored=True)


def learning_rates(cfg: MnistConfig, init: str | None = None) -> dict:
    """Return the learning rate per activation for initialisation ``init`` (default: the main
    one): ``cfg.lr`` if set, else the search's choice."""
    init = init or init_label(cfg.init, cfg.init_std)
    if cfg.lr > 0:
        return {a: cfg.lr for a in cfg.activations}
    return dict(search(cfg)["chosen_lr"][init])


def evaluate_stack(stack: StackedMLP, x: torch.Tensor, y: torch.Tensor, units: int,
                   chunk: int = 1000) -> dict:
    """Return per model the test accuracy and loss and the 15th/50th/85th percentiles over the
    test images of the input to the first ``units`` nonlinearities of the last hidden layer.

    The images go through in chunks, so that every intermediate fits in the CPU's cache."""
    correct, loss, probe = 0.0, 0.0, []
    for start in range(0, len(x), chunk):
        logits, pre = stack.preactivations(x[start: start + chunk])
        target = y[start: start + chunk]
        correct = correct + train.correct(logits, target).float().sum(1)
        loss = loss + F.cross_entropy(logits, target.expand(len(logits), -1),
                                      reduction="none").sum(1)
        probe.append(pre[-1][:, :units])
    q = torch.tensor([p / 100 for p in PERCENTILES], device=x.device)
    pct = torch.quantile(torch.cat(probe, dim=2), q, dim=2)   # (3, S, units)
    out = {"test_accuracy": correct / len(x), "test_loss": loss / len(x)}
    out.update({f"p{p}": pct[i] for i, p in enumerate(PERCENTILES)})
    return out


def _train(cfg: MnistConfig, specs: list[dict], steps: int, name: str) -> dict:
    """Train the networks ``specs`` as one stack for ``steps`` steps on the training set; return
    the test metrics and percentiles over training, and ``specs`` as ``models``."""
    x_tr, y_tr, x_te, y_te = data.mnist(cfg, runtime.default_device())
    ckpt = results.checkpoint_path(CHAPTER, name, cfg) if cfg.checkpoint_every else None
    out = train_stack(stack_of(cfg, specs, x_tr.device), x_tr, y_tr, [m["seed"] for m in specs],
                      steps=steps, batch_size=cfg.batch_size, lr=[m["lr"] for m in specs],
                      eval_fn=lambda st: evaluate_stack(st, x_te, y_te, cfg.probe_units),
                      eval_steps=eval_schedule(steps, cfg.eval_every, cfg.evals_per_decade),
                      checkpoint=ckpt, checkpoint_every=cfg.checkpoint_every,
                      identity={"chapter": CHAPTER, "name": name, "digest": cfg.digest()},
                      progress=f"{len(specs)} networks")
    if ckpt is not None:
        ckpt.unlink(missing_ok=True)
    out["models"] = specs
    return out


def train_all(cfg: MnistConfig) -> dict:
    """Train every activation × (without BN, with BN) × seed for ``cfg.steps`` steps, with the
    main initialisation and the learning rate the search chose for the activation."""
    init = init_label(cfg.init, cfg.init_std)
    lrs = learning_rates(cfg, init)
    specs = [{"activation": a, "init": init, "bn": bn, "seed": s, "lr": lrs[a]}
             for a in cfg.activations for bn in (False, True) for s in cfg.seeds]
    return _train(cfg, specs, cfg.steps, "runs")


def train_inits(cfg: MnistConfig) -> dict:
    """Train the sigmoid net without and with BN for each of ``compare_inits`` (other than the
    main one) and seed, for ``compare_steps`` steps, at the rate the search chose for it."""
    main = init_label(cfg.init, cfg.init_std)
    specs = [{"activation": "sigmoid", "init": i, "bn": bn, "seed": s,
              "lr": learning_rates(cfg, i)["sigmoid"]}
             for i in cfg.compare_inits if i != main for bn in (False, True) for s in cfg.seeds]
    if not specs:
        return {"models": []}
    return _train(cfg, specs, min(cfg.compare_steps, cfg.steps), "inits")


def batch_size_one(cfg: MnistConfig) -> dict:
    """Train the sigmoid net with BN (``AnyBatchNorm1d``, which allows it) of the first seed at
    batch size 1 for ``bs1_steps`` steps at the main runs' learning rate; return its history,
    how far each layer's weights moved, and how much its training-mode output varies across
    single test images."""
    lr = learning_rates(cfg)["sigmoid"]
    x_tr, y_tr, x_te, y_te = data.mnist(cfg, runtime.default_device())
    seed = cfg.seeds[0]
    net = build_nets(cfg, "sigmoid", seed, norm=AnyBatchNorm1d)[1].to(x_tr.device)
    before = [m.weight.detach().clone() for m in net if isinstance(m, nn.Linear)]
    hist = train.fit(net, data.batches(x_tr, y_tr, 1, seed=seed), steps=cfg.bs1_steps,
                     optimizer=torch.optim.SGD(net.parameters(), lr=lr),
                     eval_fn=lambda m: {"test_accuracy": train.accuracy(m, x_te, y_te)},
                     eval_every=max(1, cfg.bs1_steps // 10), log_every=max(1, cfg.bs1_steps // 60),
                     progress="batch size 1, with BN")
    after = [m.weight.detach() for m in net if isinstance(m, nn.Linear)]
    out = {**hist.to_dict(), "learning_rate": lr, "seed": seed}
    out["weight_change"] = [float((a - b).abs().max()) for a, b in zip(after, before)]
    with torch.no_grad():   # each test image alone, in training mode, as SGD saw them
        single = torch.stack([net(x_te[i: i + 1])[0] for i in range(min(100, len(x_te)))])
    out["train_mode_output_spread"] = float((single - single[0]).abs().max())
    return out


def runs(cfg: MnistConfig) -> results.Record:
    """Return the stored main runs of ``cfg`` (training them if needed)."""
    return results.load_or_run(CHAPTER, "runs", cfg, train_all, prefer_stored=True)


def inits(cfg: MnistConfig) -> results.Record:
    """Return the stored initialisation comparison of ``cfg`` (training it if needed)."""
    return results.load_or_run(CHAPTER, "inits", cfg, train_inits, prefer_stored=True)


def batch_one(cfg: MnistConfig) -> results.Record:
    """Return the stored batch-size-1 run of ``cfg`` (training it if needed)."""
    return results.load_or_run(CHAPTER, "batch_size_one", cfg, batch_size_one, prefer_stored=True)


def config_of(record: results.Record) -> MnistConfig:
    """Return the configuration a stored record was made with (the ``full`` one, when a chapter
    at the ``quick`` profile shows the stored full runs)."""
    return MnistConfig.from_record(record)
