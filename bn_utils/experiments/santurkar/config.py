"""Chapters 7 and 8's shared protocol: the fields both configs have (defaults: the paper's
protocol, as in its Appendix A) and one training run (architecture, norm, learning rate, seed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ...book.profiles import BATCH_MAX, EXAMPLES_MAX, SEED_MAX, STEPS_MAX, WIDTH_MAX, Config, param
from ...nn import models
from ...nn.variants import NORM_NAMES

LABELS = {"none": "standard", "bn": "BN", "noisy_bn": "noisy BN", "noise": "standard + noise",
          "l1": "ℓ1 norm", "l2": "ℓ2 norm", "linf": "ℓ∞ norm"}
ARCHS = ("vgg", "dln")


@dataclass(frozen=True)
class SanturkarConfig(Config):
    """Fields both chapters share (defaults: the paper's protocol, the ``full`` profile)."""

    vgg: str = param("vgg16", "VGG configuration (vgg16: 13 conv layers + a linear classifier)",
                     choices=tuple(models.VGG_CONFIGS))
    width: float = param(1.0, "VGG width multiplier (1: 64 to 512 channels)", min=0.01, max=4.0)
    batch_size: int = param(128, "VGG minibatch size", min=2, max=BATCH_MAX)
    vgg_steps: int = param(15_000, "VGG SGD steps", min=1, max=STEPS_MAX)
    n_train: int = param(50_000, "CIFAR-10 training images (a class-stratified subset if fewer)",
                         min=128, max=50_000)
    n_test: int = param(10_000, "CIFAR-10 test images", min=100, max=10_000)
    train_probe: int = param(10_000, "training images the training accuracy is measured on",
                             min=100, max=50_000)
    eval_every: int = param(500, "VGG steps between accuracy evaluations", min=1, max=STEPS_MAX)
    measure_every: int = param(100, "VGG steps between measurements", min=1, max=STEPS_MAX)
    dln_depth: int = param(25, "DLN layers", min=2, max=1000)
    dln_width: int = param(10, "DLN width (and input/output dimension)", min=1, max=WIDTH_MAX)
    dln_examples: int = param(1000, "DLN examples (full batch)", min=2, max=EXAMPLES_MAX)
    dln_steps: int = param(10_000, "DLN gradient-descent steps", min=1, max=STEPS_MAX)
    dln_measure_every: int = param(100, "DLN steps between measurements", min=1, max=STEPS_MAX)
    seeds: tuple = param((0, 1, 2), "seeds (initialisation and minibatch order)", item_min=0, max=SEED_MAX)
    checkpoint_every: int = param(1000, "steps between checkpoints of a long run", min=1,
                                  max=STEPS_MAX)
    cpu_threads: int = param(0, "torch threads on a CPU (0: torch's default, fastest on an idle "
                                "machine; 1 is faster on cores busy with other work)", min=0,
                             max=1024)

    PROFILES: ClassVar[dict] = {"full": {}, "quick": {}, "smoke": {}}
    # Seeds a profile adds beyond its own, each run stored as its own record under the config
    # with that seed alone (``extra_configs``), so that the profile's records keep their digests.
    EXTRA_SEEDS: ClassVar[dict] = {}

    def extra_configs(self) -> list["SanturkarConfig"]:
        """Return the configs the extra seeds' runs are stored under: this one with ``seeds`` set
        to each seed of ``EXTRA_SEEDS`` for its profile that it does not run itself."""
        return [self.replace(seeds=(s,)) for s in self.EXTRA_SEEDS.get(self.profile, ()) if s not in self.seeds]

    def validate(self) -> None:
        """Check the subsets fit in the data they are drawn from."""
        if self.train_probe > self.n_train:
            raise ValueError(f"parameter train_probe={self.train_probe} must be <= n_train={self.n_train}")
        if self.batch_size > self.n_train:
            raise ValueError(f"parameter batch_size={self.batch_size} must be <= n_train={self.n_train}")

    def norm_kwargs(self, norm: str) -> dict:
        """Return the constructor arguments of a norm layer (the chapters add theirs)."""
        return {}


@dataclass(frozen=True)
class Run:
    """One training run: architecture, normalisation, learning rate and seed."""

    arch: str
    norm: str
    lr: float
    seed: int

    def __post_init__(self) -> None:
        if self.arch not in ARCHS or self.norm not in NORM_NAMES or not self.lr > 0:
            raise ValueError(f"bad run {self}: arch in {ARCHS}, norm in {NORM_NAMES}, lr > 0")

    @property
    def name(self) -> str:
        """Return the run's record name, e.g. ``vgg_bn_lr0.1_s0``."""
        return f"{self.group}_s{self.seed}"

    @property
    def group(self) -> str:
        """Return the name without the seed (runs that differ only by seed are averaged)."""
        return group(self.arch, self.norm, self.lr)


def group(arch: str, norm: str, lr: float) -> str:
    """Return the name of the runs of one network and learning rate, e.g. ``vgg_bn_lr0.1``."""
    return f"{arch}_{norm}_lr{lr:g}"
