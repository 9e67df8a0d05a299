"""Chapter 09's training run: SGD on shuffled minibatches of the MNIST subsets (``data.mnist``),
the test accuracy along training, and the accuracy of BN in training mode on test batches."""

from __future__ import annotations

import copy
import math
from typing import Callable

import torch
from torch import nn

from ... import data, runtime
from ...training import train


def sgd(model: nn.Module, lr: float, *, momentum: float = 0.9, weight_decay: float = 0.0):
    """Return SGD over the model's parameters."""
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, steps: int, batch_size: int, lr: float,
        seed: int, momentum: float = 0.9, weight_decay: float = 0.0,
        eval_fn: Callable | None = None, eval_every: int = 0, hooks=None) -> train.History:
    """Train ``model`` with SGD on shuffled minibatches of (x, y) and return its History."""
    return train.fit(model, data.batches(x, y, batch_size, seed=seed), steps=steps,
                     optimizer=sgd(model, lr, momentum=momentum, weight_decay=weight_decay),
                     eval_fn=eval_fn, eval_every=eval_every, log_every=max(1, min(50, steps // 5)),
                     hooks=hooks, progress=False)


def test_eval(x: torch.Tensor, y: torch.Tensor) -> Callable[[nn.Module], dict]:
    """Return an eval_fn giving the test accuracy (eval mode) of a model on (x, y)."""
    return lambda m: {"test_accuracy": train.accuracy(m, x, y)}


def final_accuracy(history: train.History) -> float:
    """Return a run's last test accuracy (``test_eval``'s), NaN for a diverged run."""
    return math.nan if history.diverged else history.evals["test_accuracy"][-1]


def seeded(seed: int, make: Callable[[], nn.Module]) -> nn.Module:
    """Return ``make()`` built after seeding torch (the same seed gives the same weights)."""
    runtime.seed_everything(seed)
    return make()


def train_mode_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    """Return the accuracy with every norm layer in training mode (batch statistics of test batches
    of ``batch_size``), on a copy, so the model's running statistics are left as they were."""
    net = copy.deepcopy(model).train()
    for m in net.modules():
        if isinstance(m, nn.Dropout):
            m.eval()
    n = len(x) // batch_size * batch_size   # whole batches only: BN's statistics of batch_size images
    with torch.no_grad():
        return train.batch_scores(net, x[:n], y[:n], batch_size)["accuracy"]
