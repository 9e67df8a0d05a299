"""Chapter 08's configuration (the paper's protocol is the ``full`` profile) and the networks it
compares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ...nn.variants import NORM_NAMES
from ...book.profiles import param
from .. import santurkar

CHAPTER = "08_santurkar_smoothness"
PAPER_NETS = ("none", "bn")
LP_NETS = ("l1", "l2", "linf")


@dataclass(frozen=True)
class SmoothnessConfig(santurkar.SanturkarConfig):
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
