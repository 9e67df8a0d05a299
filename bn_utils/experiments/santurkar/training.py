"""How chapters 7 and 8 train a network, with a chapter's measurement hooks: a VGG on CIFAR-10
(SGD, batch 128, no augmentation) or the deep linear network (DLN) fitted by full-batch gradient
descent to ``y = A x`` with a summed squared loss. Records are stored by ``experiment``; only a long run's checkpoint
is written here."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ... import data, runtime
from ...book import results
from ...nn import models
from ...nn.registry import norm_factory
from ...training import train
from .config import Run, SanturkarConfig


def cifar(cfg: SanturkarConfig, device) -> tuple:
    """Return ``(x_train, y_train, x_test, y_test)`` CIFAR-10 tensors (``data.device_tensors``:
    built once per process, shared)."""
    return data.device_tensors("cifar10", str(device), n_train=cfg.n_train, n_test=cfg.n_test)


def dln_data(cfg: SanturkarConfig, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the DLN's data ``(x, A x)``: Gaussian inputs and a Gaussian 10x10 ``A`` (fixed seed,
    the same for every run)."""
    gen = torch.Generator().manual_seed(2018)
    x = torch.randn(cfg.dln_examples, cfg.dln_width, generator=gen)
    a = torch.randn(cfg.dln_width, cfg.dln_width, generator=gen)
    return x.to(device), (x @ a.T).to(device)


def squared_error(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Return ``||out - target||²`` summed over the batch (the DLN's loss, as in the paper)."""
    return (out.float() - target.float()).pow(2).sum()


def build_model(cfg: SanturkarConfig, run: Run) -> nn.Module:
    """Return the freshly initialised network of ``run`` (seed the RNG first)."""
    dims = 2 if run.arch == "vgg" else 1
    norm = norm_factory(run.norm, dims, **cfg.norm_kwargs(run.norm))
    if run.arch == "vgg":
        return models.vgg(cfg.vgg, width=cfg.width, norm=norm)
    return models.deep_linear(cfg.dln_depth, cfg.dln_width, norm=norm)


def measure_steps(steps: int, every: int) -> list[int]:
    """Return the steps at which a run measures: 0, every, 2·every, ... (< steps)."""
    return list(range(0, steps, every))


@dataclass
class Context:
    """What a chapter's hooks may use: the model, its loss and a fixed probe batch."""

    run: Run
    model: nn.Module
    loss_fn: Callable
    probe_x: torch.Tensor
    probe_y: torch.Tensor
    steps: int


HookMaker = Callable[[SanturkarConfig, Context], dict]


class CountingLoss:
    """A loss that also counts the examples its (training-mode) outputs classify right: the
    accuracy of the network as it trains, noise and batch statistics included, on the batches it
    trains on. ``take()`` returns the accuracy since its last call (NaN if no batch since)."""

    def __init__(self, loss_fn: Callable = F.cross_entropy):
        self.loss_fn, self.correct, self.seen = loss_fn, None, 0

    def __call__(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Return ``loss_fn(out, y)``, counting the rows of ``out`` whose argmax is ``y``."""
        with torch.no_grad():   # a device-side sum: no synchronisation at every step
            hits = train.correct(out, y).sum()
            self.correct = hits if self.correct is None else self.correct + hits
            self.seen += len(y)
        return self.loss_fn(out, y)

    def take(self) -> float:
        """Return the accuracy over the batches scored since the last call, and start afresh."""
        acc = float(self.correct) / self.seen if self.seen else float("nan")
        self.correct, self.seen = None, 0
        return acc


def train_run(chapter: str, cfg: SanturkarConfig, run: Run, make_hooks: HookMaker) -> dict:
    """Train one network with the chapter's hooks; return its curves and measurements as NumPy
    arrays (``loss_step``, ``loss``, ``eval_step``, eval metrics, ``measure_step``, measures)."""
    device = runtime.default_device()
    runtime.seed_everything(run.seed)
    model = build_model(cfg, run).to(device)
    if run.arch == "vgg":
        x_tr, y_tr, x_te, y_te = cifar(cfg, device)
        if device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        pick = torch.randperm(len(x_tr), generator=torch.Generator().manual_seed(1))
        px, py = x_tr[pick[: cfg.train_probe].to(device)], y_tr[pick[: cfg.train_probe].to(device)]
        probe_idx = pick[-cfg.batch_size:].to(device)   # a fixed batch for activation statistics
        batches = data.batches(x_tr, y_tr, cfg.batch_size, seed=run.seed)
        counting = CountingLoss()
        loss_fn, steps, log_every = counting, cfg.vgg_steps, 50

        def eval_fn(m: nn.Module) -> dict:
            # train_batch_accuracy: as the network trains (noise on), on the batches since the
            # last evaluation (the paper's training accuracy); train_accuracy: evaluation mode
            # (noise off, running statistics) on a fixed probe of training images
            test = train.evaluate(m, x_te, y_te)
            return {"train_batch_accuracy": counting.take(), "train_accuracy": train.accuracy(m, px, py),
                    "test_accuracy": test["accuracy"], "test_loss": test["loss"]}
        ctx = Context(run, model, F.cross_entropy, x_tr[probe_idx], y_tr[probe_idx], steps)
        eval_every = cfg.eval_every
    else:
        x, y = dln_data(cfg, device)
        batches = itertools.repeat((x, y))
        loss_fn, steps, log_every, eval_fn, eval_every = squared_error, cfg.dln_steps, 10, None, 0
        ctx = Context(run, model, loss_fn, x, y, steps)
    ckpt = results.checkpoint_path(chapter, run.name, cfg)
    hist = train.fit(model, batches, steps=steps, optimizer=torch.optim.SGD(model.parameters(), lr=run.lr),
                     loss_fn=loss_fn, eval_fn=eval_fn, eval_every=eval_every, log_every=log_every,
                     hooks=make_hooks(cfg, ctx), checkpoint=ckpt,
                     checkpoint_every=cfg.checkpoint_every, progress=run.name,
                     identity={"chapter": chapter, "name": run.name, "digest": cfg.digest()})
    ckpt.unlink(missing_ok=True)  # the record below holds everything the checkpoint did
    out = {"loss_step": np.array(hist.step), "loss": np.array(hist.loss, float),
           "eval_step": np.array(hist.eval_step), "measure_step": np.array(hist.measure_step),
           "diverged": hist.diverged, "seconds": hist.seconds}
    out.update({k: np.array(v, float) for k, v in hist.evals.items()})
    out.update({k: np.array(v, float) for k, v in hist.measures.items()})
    return out
