"""Chapter 02's configuration, and the data, model and statistics its sections share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ...nn import models
from ... import runtime
from ...book.profiles import BATCH_MAX, EXAMPLES_MAX, SEED_MAX, STEPS_MAX, WIDTH_MAX, Config, param

CHAPTER = "02_forward_pass"

# On a CPU the sections that train or sum float32 tensors run on one thread (a no-op on a GPU,
# see runtime.cpu_threads). Not for speed alone: the number of threads changes the order in which
# float32 sums add up, so without this the chapter's numbers would depend on the core count of
# the machine (measured at smoke: they change at round-off, up to 6e-5 in a logit). One thread
# gives the same numbers on every machine with the same kind of CPU, and small tensors gain
# nothing from a second thread.
one_thread = runtime.cpu_threads(1)


@dataclass(frozen=True)
class ForwardConfig(Config):
    """The forward-pass chapter's experiments (defaults: the ``full`` profile)."""

    seed: int = param(0, "random seed (data subsets, initialisation, minibatches)", min=0, max=SEED_MAX)
    hidden: tuple = param((100, 100, 100), "hidden widths of the BN MLP (the paper's MNIST net)",
                          item_min=1, max=WIDTH_MAX)
    activation: str = param("sigmoid", "hidden nonlinearity", choices=tuple(models.ACTIVATIONS))
    batch_size: int = param(60, "minibatch size of the MLP (the paper's MNIST experiment)", min=2,
                            max=BATCH_MAX)
    lr: float = param(0.5, "SGD learning rate of the MLP", min=1e-6, max=100.0)
    steps: int = param(5000, "SGD steps of each MLP the chapter trains (train and eval mode live; "
                       "the three bugs)", min=1, max=STEPS_MAX)
    eval_every: int = param(100, "steps between measurements in the momentum bug's run", min=1, max=STEPS_MAX)
    n_train: int = param(60_000, "MNIST training images used", min=100, max=60_000)
    n_test: int = param(10_000, "MNIST test images used", min=10, max=10_000)
    compare_steps: int = param(5, "training steps of the ours-vs-torch comparison", min=1,
                               max=STEPS_MAX)
    stream_steps: int = param(2000, "batches in the running-statistics stream", min=2,
                              max=STEPS_MAX)
    stream_batch_size: int = param(8, "batch size of that stream (small: the variance bias shows)",
                                   min=2, max=BATCH_MAX)
    momenta: tuple = param((0.1, 0.01), "PyTorch momenta compared with the cumulative average",
                           item_min=1e-6, max=1.0)
    bias_batch_sizes: tuple = param((2, 3, 4, 8, 16, 32, 64),
                                    "batch sizes of the variance-bias measurement", item_min=2,
                                    max=BATCH_MAX)
    bias_batches: int = param(20_000, "batches averaged per batch size for the variance bias",
                              min=10, max=STEPS_MAX)
    spread_batch_sizes: tuple = param((2, 4, 8, 16, 32, 64, 128, 256),
                                      "batch sizes of the train-vs-eval measurement", item_min=2,
                                      max=BATCH_MAX)
    spread_draws: int = param(1000, "random sets of batch mates per example and batch size",
                              min=2, max=STEPS_MAX)
    spread_examples: int = param(20, "test examples whose outputs we follow", min=1,
                                 max=EXAMPLES_MAX)
    bug_batch_size: int = param(16, "minibatch size of the momentum-bug runs (small: the "
                                    "symptoms grow as the batch shrinks)", min=2, max=BATCH_MAX)
    bug_lr: float = param(2.0, "the high learning rate of the eval-branch bug", min=1e-6,
                          max=100.0)
    timing_batch: int = param(256, "images per timed inference batch of the conv net", min=1,
                              max=BATCH_MAX)
    timing_repeats: int = param(100, "timed repetitions (the median is reported)", min=1,
                                max=10_000)

    PROFILES: ClassVar[dict] = {
        "full": {},
        # the paper's protocol fits the 2-core CPU: the book shows the stored full record
        "reference": {},
        "quick": {"steps": 1000, "eval_every": 50, "n_train": 10_000, "n_test": 2000,
                  "stream_steps": 1000, "bias_batches": 4000, "spread_draws": 200,
                  "spread_examples": 8, "timing_batch": 128, "timing_repeats": 15},
        "smoke": {"steps": 100, "eval_every": 25, "n_train": 1000, "n_test": 200,
                  "stream_steps": 200, "bias_batch_sizes": (2, 4, 16), "bias_batches": 2000,
                  "spread_batch_sizes": (2, 8, 32, 128), "spread_draws": 20,
                  "spread_examples": 3, "timing_batch": 16, "timing_repeats": 3},
    }

    def validate(self) -> None:
        """Check that every batch fits in the data it is drawn from."""
        for name in ("batch_size", "bug_batch_size"):
            if getattr(self, name) > self.n_train:
                raise ValueError(f"parameter {name}={getattr(self, name)} must be <= "
                                 f"n_train={self.n_train}")
        if max(self.spread_batch_sizes) > self.n_train:
            raise ValueError(f"parameter spread_batch_sizes={self.spread_batch_sizes} must not "
                             f"exceed n_train={self.n_train} (batch mates come from it)")
        if self.spread_examples > self.n_test:
            raise ValueError(f"parameter spread_examples={self.spread_examples} must be <= "
                             f"n_test={self.n_test}")
        if any(m > 1 for m in self.momenta):
            raise ValueError(f"parameter momenta={self.momenta} must lie in (0, 1]")


def bn_mlp(cfg: ForwardConfig, norm="bn", device=None) -> nn.Sequential:
    """Return the chapter's MLP (Linear → norm → activation per hidden layer), seeded."""
    runtime.seed_everything(cfg.seed)
    model = models.mlp((784, *cfg.hidden, 10), activation_name=cfg.activation, norm=norm)
    return model.to(device)


def channel_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the per-channel mean and biased std of x, over every dim but 1."""
    dims = [0, *range(2, x.dim())]
    return x.mean(dims), x.std(dims, correction=0)
