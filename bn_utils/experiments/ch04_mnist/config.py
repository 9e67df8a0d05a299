"""Chapter 04's configuration (the paper's protocol is the ``full`` profile) and the labels of
its initialisations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ...nn import models
from ...book.profiles import BATCH_MAX, EXAMPLES_MAX, SEED_MAX, STEPS_MAX, WIDTH_MAX, Config, param

CHAPTER = "04_mnist"
# The nonlinearities compared by default (any of ``models.ACTIVATIONS`` may be chosen)
COMPARED = ("sigmoid", "tanh", "relu")
PERCENTILES = (15, 50, 85)


@dataclass(frozen=True)
class MnistConfig(Config):
    """The MNIST experiment (defaults: the paper's protocol, the ``full`` profile)."""

    steps: int = param(50_000, "SGD steps per network (paper: 50,000)", min=1, max=STEPS_MAX)
    batch_size: int = param(60, "examples per minibatch (paper: 60)", min=1, max=BATCH_MAX)
    hidden: tuple = param((100, 100, 100), "hidden layer widths (paper: 3 x 100)", item_min=1,
                          max=WIDTH_MAX)
    activations: tuple = param(COMPARED, "hidden nonlinearities compared (paper: sigmoid)",
                               choices=tuple(models.ACTIVATIONS))
    seeds: tuple = param((0, 1, 2), "seeds: initial weights and minibatch order", item_min=0, max=SEED_MAX)
    init: str = param("gaussian", "initial weights: gaussian (paper) or lecun_uniform "
                      "(the student reproduction)", choices=models.INITS)
    init_std: float = param(0.01, "std of the Gaussian initial weights (paper: 'small')",
                            min=1e-6, max=10.0)
    lr: float = param(0.0, "SGD learning rate of both nets; 0: the search's choice per activation",
                      min=0.0, max=100.0)
    lr_grid: tuple = param((0.03, 0.1, 0.3, 1.0, 3.0, 10.0), "learning rates the search tries",
                           item_min=1e-6, max=100.0)
    search_steps: int = param(5000, "SGD steps of each search run (nets without BN)", min=1,
                              max=STEPS_MAX)
    search_seeds: tuple = param((0,), "seeds of the search runs", item_min=0, max=SEED_MAX)
    val_size: int = param(10_000, "training images held out to score the search", min=10,
                          max=EXAMPLES_MAX)
    eval_every: int = param(2500, "steps between evaluations on the test set", min=1, max=STEPS_MAX)
    evals_per_decade: int = param(20, "more evaluations, log-spaced: this many per factor of 10 "
                                  "in steps", min=0, max=1000)
    thresholds: tuple = param((0.95, 0.97, 0.98), "test accuracies whose first step we report",
                              item_min=0.0, max=1.0)
    unit: int = param(0, "unit of the last hidden layer drawn in Fig. 1(b, c)", min=0,
                      max=WIDTH_MAX)
    probe_units: int = param(10, "units of the last hidden layer whose percentiles are recorded",
                             min=1, max=WIDTH_MAX)
    compare_inits: tuple = param(("gaussian:0.1", "lecun_uniform"), "other initialisations "
                                 "tried on the sigmoid net ('gaussian:STD' or 'lecun_uniform'; "
                                 "the main one alone: none)")
    compare_steps: int = param(10_000, "SGD steps of the initialisation comparison", min=1,
                               max=STEPS_MAX)
    bs1_steps: int = param(3000, "SGD steps of the batch-size-1 demonstration", min=1,
                           max=STEPS_MAX)
    n_train: int = param(60_000, "training images used (stratified subset below 60,000)",
                         min=100, max=60_000)
    n_test: int = param(10_000, "test images used (stratified subset below 10,000)",
                        min=10, max=10_000)
    checkpoint_every: int = param(10_000, "steps between checkpoints of the long runs (0: none)",
                                  min=0, max=STEPS_MAX)

    PROFILES: ClassVar[dict] = {
        "full": {},
        # the paper's protocol fits the 2-core CPU: the book shows the stored full record
        "reference": {},
        "quick": {"steps": 5000, "search_steps": 2000, "compare_steps": 2000, "eval_every": 500,
                  "evals_per_decade": 10, "bs1_steps": 2000, "checkpoint_every": 0},
        "smoke": {"steps": 60, "activations": ("sigmoid", "relu"), "seeds": (0,),
                  "lr_grid": (0.3, 3.0), "search_steps": 30, "compare_inits": ("lecun_uniform",),
                  "compare_steps": 30, "val_size": 500, "eval_every": 30, "evals_per_decade": 4,
                  "bs1_steps": 20, "n_train": 3000, "n_test": 1000, "checkpoint_every": 0},
    }

    def validate(self) -> None:
        """Check the cross-field constraints (batch size, probed units, held-out split)."""
        if self.batch_size < 2:
            raise ValueError(f"parameter batch_size={self.batch_size} must be >= 2: BN in "
                             "training mode normalises over the minibatch, and over a batch of "
                             "one example every feature is 0 (see the chapter's batch-size-1 "
                             "section)")
        if "sigmoid" not in self.activations:
            raise ValueError(f"parameter activations={self.activations!r} must include 'sigmoid' "
                             "(the paper's network, which Fig. 1 shows)")
        if len(set(self.activations)) != len(self.activations) or \
                len(set(self.seeds)) != len(self.seeds):
            raise ValueError("parameters activations and seeds must not repeat a value")
        if self.probe_units > self.hidden[-1]:
            raise ValueError(f"parameter probe_units={self.probe_units} must be <= the last "
                             f"hidden layer's width {self.hidden[-1]}")
        if self.unit >= self.probe_units:
            raise ValueError(f"parameter unit={self.unit} must be < probe_units="
                             f"{self.probe_units} (only those units are recorded)")
        if self.val_size + self.batch_size > self.n_train:
            raise ValueError(f"parameter val_size={self.val_size} leaves fewer than batch_size="
                             f"{self.batch_size} of the n_train={self.n_train} images to train on")
        for label in self.compare_inits:
            parse_init(label)


def init_label(init: str, std: float) -> str:
    """Return the label of an initialisation: ``gaussian:0.01`` or ``lecun_uniform``."""
    return f"gaussian:{std:g}" if init == "gaussian" else init


def parse_init(label: str) -> tuple[str, float]:
    """Return ``(scheme, std)`` of an initialisation label (the inverse of ``init_label``):
    ``gaussian:STD`` or another scheme of ``models.INITS``."""
    if label in models.INITS and label != "gaussian":
        return label, 0.0
    scheme, _, std = label.partition(":")
    try:
        value = float(std)
    except ValueError:
        value = float("nan")
    if scheme != "gaussian" or not 0 < value <= 10:
        others = ", ".join(repr(i) for i in models.INITS if i != "gaussian")
        raise ValueError(f"initialisation {label!r} must be 'gaussian:STD' with 0 < STD <= 10 "
                         f"or one of {others}")
    return scheme, value
